"""Institutions, users and their roles (the CLI keeps working beside the pages)."""
from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from engine.models import Institution, Programme, Region, RoleAssignment, User
from workflows import default_programme
from workflows.roles import INSTITUTION_ROLES, PROGRAMME_ROLES, ROLES

from .. import mfa, passwords, security_log
from ..auth import hash_password
from ..extensions import db
from ..runtime import now


def default_region() -> Region:
    region = db.session.scalar(select(Region).order_by(Region.id).limit(1))
    if region is None:
        raise click.ClickException("no region yet: run `traject demo` or create an institution with --region")
    return region


def known_programme(region: Region, code: str) -> Programme:
    """A programme of the region; the region's default one is created when first named."""
    found = db.session.scalar(select(Programme).where(Programme.code == code))
    if found is not None:
        return found
    config = current_app.config.get("TRAJECT_REGION") or {}
    if code != default_programme(config):
        raise click.ClickException(f"unknown programme {code!r}: add it with `traject programme add`")
    names = (config.get("programmes") or {}).get("names") or {}
    programme = Programme(region_id=region.id, code=code, name=names.get(code, code.capitalize()))
    db.session.add(programme)
    return programme


@click.group()
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


@click.group()
def user():
    """Users and their roles."""


@user.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--institution", "institution_code", default=None)
@click.option("--password-stdin", is_flag=True, help="read the password from stdin")
@click.option("--language", default="nl", type=click.Choice(["nl", "en"]))
@click.option("--programme", "programme_code", default=None,
              help="the training programme of an opleider, plv. opleider or RSO role (default: the region's)")
@with_appcontext
def user_create(email, name, role, institution_code, password_stdin, language, programme_code):
    """Create a user; prints the new user's id on the last line."""
    email = email.strip().lower()
    if role in INSTITUTION_ROLES and not institution_code:
        raise click.ClickException(f"role {role} needs --institution")
    inst = None
    if institution_code:
        inst = db.session.scalar(select(Institution).where(Institution.code == institution_code))
        if inst is None:
            raise click.ClickException(f"unknown institution {institution_code!r}")
    region = inst.region if inst else default_region()
    if programme_code and role not in PROGRAMME_ROLES:
        raise click.ClickException(f"role {role} covers every programme: leave out --programme")
    if programme_code:
        known_programme(region, programme_code)
    if db.session.scalar(select(User).where(User.email == email)):
        raise click.ClickException(f"a user with e-mail {email} exists already")
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        problem = passwords.problem(password, email)
        if problem:
            raise click.ClickException(problem[0] % problem[1])
    account = User(email=email, name=name, language=language, active=True, created_at=now(),
                   password_hash=hash_password(password) if password else None)
    account.roles.append(RoleAssignment(role=role, institution_id=inst.id if inst else None, region_id=region.id,
                                        programme=programme_code))
    db.session.add(account)
    db.session.flush()
    security_log.record("user.created", user=account, method="cli", detail=f"role={role}")
    db.session.commit()
    click.echo(account.id)


def _account(email: str) -> User:
    account = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if account is None:
        raise click.ClickException(f"no user with e-mail {email}")
    return account


@user.group("mfa")
def user_mfa():
    """Two-step verification (TOTP) of local accounts."""


@user_mfa.command("enable")
@click.option("--email", required=True)
@with_appcontext
def user_mfa_enable(email):
    """Enrol TOTP; prints the otpauth:// URI on stdout (the recovery codes go to stderr)."""
    account = _account(email)
    secret = mfa.new_secret()
    codes = mfa.enrol(account, secret)
    security_log.record("mfa.enrolled", user=account, method="cli")
    db.session.commit()
    click.echo("recovery codes (each valid once): " + " ".join(codes), err=True)
    click.echo(mfa.uri(account, secret))


@user_mfa.command("reset")
@click.option("--email", required=True)
@with_appcontext
def user_mfa_reset(email):
    """Remove the account's TOTP and recovery codes (it enrols again at the next login)."""
    account = _account(email)
    mfa.reset(account)
    security_log.record("mfa.reset", user=account, method="cli")
    db.session.commit()


@click.group()
def programme():
    """Training programmes (specialties) of the region."""


@programme.command("add")
@click.option("--code", required=True, help="e.g. kindergeneeskunde")
@click.option("--name", required=True, help="e.g. Kindergeneeskunde")
@with_appcontext
def programme_add(code, name):
    """Add a programme; opleiders and RSO roles are bound to one (--programme)."""
    if db.session.scalar(select(Programme).where(Programme.code == code)):
        raise click.ClickException(f"programme {code!r} exists already")
    db.session.add(Programme(region_id=default_region().id, code=code, name=name))
    db.session.commit()
    click.echo(code)
