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
from workflows.roles import INSTITUTION_ROLES, ROLES

from .extensions import db
from .services import now


def _create_app():
    from flask.cli import NoAppException

    from .app import create_app
    from .config import ConfigError

    try:
        return create_app()
    except ConfigError as exc:  # a configuration mistake: say what, without a traceback
        raise NoAppException(str(exc)) from None


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False, add_version_option=False)
def main():
    """Traject: workflows, deadlines and escalation for specialist training."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # fpdf2's font subsetting chatters at INFO


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
@click.option("--role", required=True, type=click.Choice(ROLES))
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
    """Web and worker together, for one machine (the worker runs in a background scheduler)."""
    import signal

    from .worker import Worker

    worker = Worker(current_app._get_current_object(), background=True)
    worker.start_background()
    # SIGTERM stops the web server like Ctrl-C does; then the worker finishes its pass.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        serve(host, port)
    except KeyboardInterrupt:
        pass
    finally:
        worker.stop()


@main.command("worker")
@click.option("--interval", type=float, default=None, help="seconds between passes (TRAJECT_WORKER_INTERVAL)")
@with_appcontext
def worker_command(interval):
    """Sweep due deadlines and deliver the outbox until stopped (SIGTERM or SIGINT)."""
    from .worker import Worker

    Worker(current_app._get_current_object(), interval).run_forever()


@main.command("sweep")
@click.option("--now", "now_text", default=None, help="ISO-8601 moment to sweep as of (default: now)")
@with_appcontext
def sweep_command(now_text):
    """One pass of due deadlines and pending notifications; prints a JSON summary."""
    from datetime import datetime, timezone

    from .worker import one_pass

    when = None
    if now_text:
        try:
            when = datetime.fromisoformat(now_text.replace("Z", "+00:00"))
        except ValueError:
            raise click.BadParameter(f"not an ISO-8601 moment: {now_text!r}", param_hint="--now") from None
        if when.tzinfo is None:  # a moment without a zone is read as UTC, like everything stored
            when = when.replace(tzinfo=timezone.utc)
    click.echo(json.dumps(one_pass(current_app._get_current_object(), when)))


@main.group("outbox")
def outbox_group():
    """Notifications that could not be delivered."""


@outbox_group.command("dead")
@click.option("--limit", type=int, default=100)
@with_appcontext
def outbox_dead(limit):
    """List dead letters as JSON lines: id, kind, recipient, attempts, reason."""
    from notifications.outbox import dead_letters

    for n in dead_letters(db.session, limit):
        click.echo(json.dumps({"id": n.id, "case_id": n.case_id, "kind": n.kind,
                               "recipient": n.recipient_address or f"user:{n.recipient_user_id}",
                               "attempts": n.attempts, "reason": n.last_error}))


@outbox_group.command("requeue")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "everything", is_flag=True, help="requeue every dead letter")
@with_appcontext
def outbox_requeue(ids, everything):
    """Put dead letters back in the queue."""
    from notifications.outbox import requeue

    if not ids and not everything:
        raise click.UsageError("name the ids to requeue, or --all")
    count = requeue(db.session, None if everything else list(ids), now())
    db.session.commit()
    click.echo(json.dumps({"requeued": count}))


def serve(host: str, port: int) -> None:
    from werkzeug.serving import run_simple

    click.echo(f"Traject on http://{host}:{port}/  (API: http://{host}:{port}/api/v1/docs)", err=True)
    run_simple(host, port, current_app._get_current_object(), threaded=True, use_reloader=False)


@main.group("definitions")
def definitions_group():
    """Workflow definitions and their stored versions."""


@definitions_group.command("list")
@with_appcontext
def definitions_list():
    """Every stored version: key, version, sha256, cases pinned to it."""
    from sqlalchemy import func

    from engine.models import Case, WorkflowDefinition

    pinned = dict(db.session.execute(select(Case.definition_id, func.count()).group_by(Case.definition_id)).all())
    rows = db.session.scalars(select(WorkflowDefinition).order_by(WorkflowDefinition.key, WorkflowDefinition.version))
    click.echo(f"{'key':24} {'version':>7}  {'sha256':12}  {'cases':>5}  loaded")
    for row in rows:
        click.echo(f"{row.key:24} {row.version:>7}  {row.sha256[:12]}  {pinned.get(row.id, 0):>5}  "
                   f"{row.loaded_at:%Y-%m-%d %H:%M}")


def _definition_row(key: str, version: int | None):
    from engine.models import WorkflowDefinition

    q = select(WorkflowDefinition).where(WorkflowDefinition.key == key)
    q = q.where(WorkflowDefinition.version == version) if version else q.order_by(WorkflowDefinition.version.desc())
    row = db.session.scalars(q.limit(1)).first()
    if row is None:
        raise click.ClickException(f"no stored definition {key}" + (f" version {version}" if version else ""))
    return row


@definitions_group.command("show")
@click.argument("key")
@click.option("--version", type=int, default=None, help="default: the newest")
@with_appcontext
def definitions_show(key, version):
    """Print a stored version's source (with the region's overrides it was stored with)."""
    row = _definition_row(key, version)
    click.echo(f"# {row.key} version {row.version}, sha256 {row.sha256}")
    click.echo(row.source)


@definitions_group.command("diff")
@click.argument("key")
@click.argument("old", type=int)
@click.argument("new", type=int, required=False)
@with_appcontext
def definitions_diff(key, old, new):
    """Unified diff between two stored versions (default: OLD against the newest)."""
    import difflib

    a, b = _definition_row(key, old), _definition_row(key, new)
    diff = difflib.unified_diff(a.source.splitlines(keepends=True), b.source.splitlines(keepends=True),
                                fromfile=f"{key} v{a.version} ({a.sha256[:12]})",
                                tofile=f"{key} v{b.version} ({b.sha256[:12]})")
    click.echo("".join(diff) or "(no differences)")


# Privacy (retention, legal holds, subject access), the access log export, backup and restore.
from .cli_privacy import register as _register_privacy  # noqa: E402

_register_privacy(main, audit_group)
