"""Backup and restore of the whole database; a restore verifies the audit chains."""
from __future__ import annotations

import json
import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from engine import audit

from ..exports.backup import BackupError, backup, restore
from ..extensions import db


@click.command("backup")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False))
@with_appcontext
def backup_command(out):
    """Write the whole database to FILE (SQLite online backup; pg_dump custom format)."""
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
