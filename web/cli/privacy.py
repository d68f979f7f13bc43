"""Retention, legal holds and subject access (AVG/GDPR).

  traject privacy retention [--now T] [--dry-run] [--case ID]
  traject privacy hold --case ID --reason R --by EMAIL      traject privacy lift HOLD --reason R --by EMAIL
  traject privacy holds [--case ID] [--all]
  traject privacy export --user ID [--out DIR]
"""
from __future__ import annotations

import json
import sys

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from engine import privacy
from engine.errors import TrajectError
from engine.models import User

from ..exports.subject_access import write
from ..extensions import db
from ..jobs.daily import pseudonym_key, run_retention
from ..runtime import engine, now
from .common import moment


def _admin_actor(email: str):
    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not any(r.role == "admin" for r in user.roles):
        raise click.ClickException(f"{email} is not an administrator")
    return engine().actor_for(user)


@click.group("privacy")
def privacy_group():
    """Retention, legal holds and subject access (AVG/GDPR)."""


@privacy_group.command("retention")
@click.option("--now", "now_text", default=None, help="ISO-8601 moment to apply retention as of (default: now)")
@click.option("--dry-run", is_flag=True, help="say what would happen, change nothing")
@click.option("--case", "case_ids", type=int, multiple=True, help="only these cases")
@with_appcontext
def retention_command(now_text, dry_run, case_ids):
    """Pseudonymise or erase the closed cases whose retention term has passed (JSON summary)."""
    result = run_retention(current_app._get_current_object(), moment(now_text, "--now"), dry_run=dry_run,
                           case_ids=list(case_ids) or None)
    click.echo(json.dumps({"dry_run": dry_run, **result.summary()}))
    if result.failed:
        sys.exit(1)


@privacy_group.command("hold")
@click.option("--case", "case_id", type=int, required=True)
@click.option("--reason", required=True)
@click.option("--by", "by", required=True, help="e-mail of the administrator placing the hold")
@with_appcontext
def hold_command(case_id, reason, by):
    """Place a legal hold on a case: retention waits for it and its linked cases."""
    _change_hold(privacy.place_hold, by, case_id, reason)


@privacy_group.command("lift")
@click.argument("hold_id", type=int)
@click.option("--reason", required=True)
@click.option("--by", "by", required=True, help="e-mail of the administrator lifting the hold")
@with_appcontext
def lift_command(hold_id, reason, by):
    """Lift a legal hold."""
    _change_hold(privacy.lift_hold, by, hold_id, reason)


def _change_hold(action, by: str, target_id: int, reason: str) -> None:
    """Place or lift a hold as the named administrator, commit, and print the hold as JSON."""
    try:
        hold = action(db.session, engine(), _admin_actor(by), target_id, reason, now())
        db.session.commit()
    except TrajectError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from None
    click.echo(json.dumps(privacy.hold_out(hold), default=str))


@privacy_group.command("holds")
@click.option("--case", "case_id", type=int, default=None)
@click.option("--all", "everything", is_flag=True, help="lifted holds too")
@with_appcontext
def holds_command(case_id, everything):
    """Legal holds as JSON lines (in force only, unless --all)."""
    for hold in privacy.holds(db.session, case_id, active_only=not everything):
        click.echo(json.dumps(privacy.hold_out(hold), default=str))


@privacy_group.command("export")
@click.option("--user", "user_id", type=int, required=True)
@click.option("--out", "out_dir", default=".", type=click.Path(file_okay=False), help="directory (default: here)")
@with_appcontext
def export_command(user_id, out_dir):
    """Everything held about a person (subject access, AVG art 15): JSON and a PDF summary."""
    try:
        json_path, pdf_path, withheld = write(engine(), user_id, pseudonym_key(current_app), now(), out_dir)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        db.session.rollback()
    if withheld:
        click.echo(f"note for the privacy officer: user {user_id} is the person concerned in confidential case(s) "
                   f"{', '.join(map(str, withheld))}; these are not in the export (AVG art. 15(4)): decide what "
                   "can be disclosed without harming the signaller.", err=True)
    click.echo(json.dumps({"json": str(json_path), "pdf": str(pdf_path)}))
