"""`traject records import`: the training records of every aios at go-live, from one CSV file."""
from __future__ import annotations

import csv

import click
from flask import g
from flask.cli import with_appcontext
from sqlalchemy import select

from engine.errors import TrajectError
from engine.models import User

from .. import records
from ..extensions import db
from ..runtime import engine

COLUMNS = ("email", "programme", "start_date", "expected_end_date", "employer", "placement",
           "responsible_opleider_email")


@click.group("records")
def records_group():
    """Training records of the aios."""


@records_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--as", "admin_email", required=True, help="the administrator the changes are recorded for")
@with_appcontext
def records_import(path, admin_email):
    """Import records (columns: email, programme, start_date, expected_end_date, employer, placement,
    responsible_opleider_email). All or nothing: any bad line and nothing is imported."""
    admin = db.session.scalar(select(User).where(User.email == admin_email.strip().lower()))
    if admin is None:
        raise click.ClickException(f"no user {admin_email}")
    g.actor = engine().actor_for(admin)
    if not g.actor.superuser:
        raise click.ClickException("the import is recorded for an administrator (--as)")
    errors, done = [], 0
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise click.ClickException("missing columns: " + ", ".join(missing))
        for line, row in enumerate(reader, start=2):
            try:
                with db.session.begin_nested():
                    records.update(_aios_id(row), _values(row), actor=g.actor, reason="import")
                done += 1
            except (TrajectError, click.ClickException) as exc:
                errors.append(f"line {line}: {_message(exc)}")
    if errors:
        db.session.rollback()
        raise click.ClickException("nothing imported:\n" + "\n".join(errors))
    db.session.commit()
    click.echo(f"{done} records imported")


def _aios_id(row: dict) -> int:
    uid = db.session.scalar(select(User.id).where(User.email == (row.get("email") or "").strip().lower()))
    if uid is None:
        raise click.ClickException(f"no user {row.get('email')!r}")
    return uid


def _values(row: dict) -> dict:
    values = {k: (row.get(k) or "").strip() or None for k in COLUMNS[1:6]}
    opleider = (row.get("responsible_opleider_email") or "").strip().lower()
    if opleider:
        values["responsible_opleider_id"] = db.session.scalar(select(User.id).where(User.email == opleider)) or -1
    return {k: v for k, v in values.items() if v is not None}


def _message(exc) -> str:
    details = getattr(exc, "details", None)
    if isinstance(details, dict) and details:
        return "; ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in details.items())
    return str(getattr(exc, "message", exc))
