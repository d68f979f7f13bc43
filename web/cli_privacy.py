"""Commands for privacy, audit evidence and recovery (registered on `traject` by web/cli.py).

  traject privacy retention [--now T] [--dry-run] [--case ID]
  traject privacy hold --case ID --reason R --by EMAIL      traject privacy lift HOLD --reason R --by EMAIL
  traject privacy holds [--case ID] [--all]
  traject privacy export --user ID [--out DIR]
  traject audit access-log --out FILE [--since T] [--until T] [--case ID] [--user ID]
  traject audit check                                       (the worker's daily check, once)
  traject backup --out FILE                                 traject restore FILE [--yes]
"""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from engine import audit, privacy
from engine.errors import TrajectError
from engine.models import User

from .extensions import db
from .services import engine, now


def _moment(text: str | None, option: str) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"not an ISO-8601 moment: {text!r}", param_hint=option) from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


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
    from .privacy_jobs import run_retention

    result = run_retention(current_app._get_current_object(), _moment(now_text, "--now"), dry_run=dry_run,
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
    from .privacy_jobs import pseudonym_key
    from .subject_export import write

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


@click.command("access-log")
@click.option("--out", "out", required=True, help="CSV file, or - for stdout")
@click.option("--since", default=None, help="ISO-8601, inclusive")
@click.option("--until", default=None, help="ISO-8601, exclusive")
@click.option("--case", "case_id", type=int, default=None)
@click.option("--user", "user_id", type=int, default=None)
@with_appcontext
def access_log_command(out, since, until, case_id, user_id):
    """The access log as CSV: who read which personal case, when and what."""
    from .access_log import csv_text, export_rows

    rows = export_rows(_moment(since, "--since"), _moment(until, "--until"), case_id, user_id)
    n = -1
    target = sys.stdout if out == "-" else open(out, "w", encoding="utf-8", newline="")
    try:
        for chunk in csv_text(rows):
            target.write(chunk)
            n += chunk.count("\n")
    finally:
        if target is not sys.stdout:
            target.close()
    db.session.rollback()
    if out != "-":
        click.echo(json.dumps({"out": out, "rows": max(n, 0)}))


@click.command("check")
@with_appcontext
def audit_check_command():
    """Verify every chain and alert the admins (outbox) of each break not reported before."""
    from .privacy_jobs import check_audit

    summary = check_audit(current_app._get_current_object())
    click.echo(json.dumps(summary))
    if summary["breaks"]:
        sys.exit(1)


@click.command("backup")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False))
@with_appcontext
def backup_command(out):
    """Write the whole database to FILE (SQLite online backup; pg_dump custom format)."""
    from .backup import BackupError, backup

    try:
        click.echo(json.dumps(backup(current_app.config["SQLALCHEMY_DATABASE_URI"], out)))
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None


@click.command("restore")
@click.argument("backup_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="do not ask: the database's contents are replaced")
@with_appcontext
def restore_command(backup_file, yes):
    """Replace the database with a backup (stop the web and the worker first); then verify the audit chains."""
    from .backup import BackupError, restore

    if not yes:
        click.confirm("This replaces everything in the database with the backup. Continue?", abort=True)
    db.session.remove()
    db.engine.dispose()  # no pooled connection may hold the old tables
    try:
        result = restore(current_app.config["SQLALCHEMY_DATABASE_URI"], backup_file)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    cases, events, problem = audit.verify(db.session)
    db.session.rollback()
    result["audit"] = {"ok": problem is None, "cases": cases, "events": events,
                       **({"problem": str(problem)} if problem else {})}
    click.echo(json.dumps(result))
    if problem:
        click.echo(f"restored, but the audit trail is BROKEN: {problem}", err=True)
        sys.exit(1)


def register(main: click.Group, audit_group: click.Group) -> None:
    main.add_command(privacy_group)
    main.add_command(backup_command)
    main.add_command(restore_command)
    audit_group.add_command(access_log_command)
    audit_group.add_command(audit_check_command)
