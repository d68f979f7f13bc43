"""The `traject` command (CONTRACT.md section 1)."""
from __future__ import annotations

import json
import logging
import sys

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext
from flask_migrate.cli import db as db_group
from sqlalchemy import select

from engine import audit
from engine.models import Institution, Region, RoleAssignment, User

from .extensions import db
from .services import now

INSTITUTION_ROLES = ("aios", "opleider", "coc_chair", "rvb", "hr")
REGIONAL_ROLES = ("rso_board", "r_coc_chair", "regio_bestuur", "vertrouwenspersoon", "admin")


def _create_app():
    from .app import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False, add_version_option=False)
def main():
    """Traject: workflows, deadlines and escalation for specialist training."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")


main.add_command(db_group, "db")


@db_group.command("sync-definitions")
@with_appcontext
def sync_definitions_command():
    """Store new versions of the workflow definitions."""
    from .app import sync_definitions

    for row in sync_definitions(current_app):
        click.echo(f"{row.key} v{row.version} {row.sha256}")


def default_region() -> Region:
    region = db.session.scalar(select(Region).order_by(Region.id).limit(1))
    if region is None:
        raise click.ClickException("no region yet: run `traject demo` or create an institution with --region")
    return region


@main.group()
def institution():
    """Institutions (hospitals)."""


@institution.command("create")
@click.option("--code", required=True)
@click.option("--name", required=True)
@click.option("--city", default=None)
@click.option("--region", "region_code", default=None, help="region code (created if new)")
@with_appcontext
def institution_create(code, name, city, region_code):
    """Create an institution."""
    if region_code:
        region = db.session.scalar(select(Region).where(Region.code == region_code))
        if region is None:
            region = Region(code=region_code, name=region_code)
            db.session.add(region)
    else:
        region = db.session.scalar(select(Region).order_by(Region.id).limit(1))
        if region is None:
            region = Region(code="default", name="Regio")
            db.session.add(region)
    if db.session.scalar(select(Institution).where(Institution.code == code)):
        raise click.ClickException(f"institution {code!r} exists already")
    inst = Institution(code=code, name=name, city=city, region=region)
    db.session.add(inst)
    db.session.commit()
    click.echo(inst.id)


@main.group()
def user():
    """Users and their roles."""


@user.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", required=True, type=click.Choice(INSTITUTION_ROLES + REGIONAL_ROLES))
@click.option("--institution", "institution_code", default=None)
@click.option("--password-stdin", is_flag=True, help="read the password from stdin")
@click.option("--language", default="nl", type=click.Choice(["nl", "en"]))
@with_appcontext
def user_create(email, name, role, institution_code, password_stdin, language):
    """Create a user; prints the new user's id on the last line."""
    from .auth import hash_password

    email = email.strip().lower()
    if role in INSTITUTION_ROLES and not institution_code:
        raise click.ClickException(f"role {role} needs --institution")
    inst = None
    if institution_code:
        inst = db.session.scalar(select(Institution).where(Institution.code == institution_code))
        if inst is None:
            raise click.ClickException(f"unknown institution {institution_code!r}")
    region = inst.region if inst else default_region()
    if db.session.scalar(select(User).where(User.email == email)):
        raise click.ClickException(f"a user with e-mail {email} exists already")
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if len(password) < 12:
            raise click.ClickException("the password must have at least 12 characters")
    account = User(email=email, name=name, language=language, active=True, created_at=now(),
                   password_hash=hash_password(password) if password else None)
    account.roles.append(RoleAssignment(role=role, institution_id=inst.id if inst else None, region_id=region.id))
    db.session.add(account)
    db.session.commit()
    click.echo(account.id)


@main.group("audit")
def audit_group():
    """The tamper-evident audit trail."""


@audit_group.command("verify")
@click.option("--case", "case_id", type=int, default=None)
@with_appcontext
def audit_verify(case_id):
    """Exit 0 when every audit chain is intact; otherwise name the first broken event."""
    cases, events, problem = audit.verify(db.session, case_id)
    if problem:
        click.echo(f"BROKEN: {problem}", err=False)
        click.echo(json.dumps({"ok": False, "cases": cases, "events": events, "case_id": problem.case_id,
                               "seq": problem.seq, "problem": problem.problem}))
        sys.exit(1)
    if case_id is not None and cases == 0:
        click.echo(f"no case {case_id}", err=True)
        sys.exit(2)
    click.echo(json.dumps({"ok": True, "cases": cases, "events": events}))


@main.command("demo")
@click.option("--scale", type=int, default=0, help="add N synthetic cases with realistic histories")
@with_appcontext
def demo_command(scale):
    """Load the demo region (idempotent)."""
    from . import demo

    demo.load(current_app, scale=scale, echo=click.echo)


@main.command("web")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@with_appcontext
def web_command(host, port):
    """Serve the web UI and the API."""
    serve(host, port)


@main.command("run")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@with_appcontext
def run_command(host, port):
    """Web (and, once available, the worker) for one machine."""
    serve(host, port)


def serve(host: str, port: int) -> None:
    from werkzeug.serving import run_simple

    click.echo(f"Traject on http://{host}:{port}/  (API: http://{host}:{port}/api/v1/docs)", err=True)
    run_simple(host, port, current_app._get_current_object(), threaded=True, use_reloader=False)
