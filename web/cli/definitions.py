"""Workflow definitions and their stored versions: sync, list, show, diff."""
from __future__ import annotations

import difflib

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate.cli import db as db_group
from sqlalchemy import func, select

from engine.models import Case, WorkflowDefinition

from ..extensions import db
from ..runtime import sync_definitions


@db_group.command("sync-definitions")
@with_appcontext
def sync_definitions_command():
    """Store new versions of the workflow definitions."""
    for row in sync_definitions(current_app):
        click.echo(f"{row.key} v{row.version} {row.sha256}")


@click.group("definitions")
def definitions_group():
    """Workflow definitions and their stored versions."""


@definitions_group.command("list")
@with_appcontext
def definitions_list():
    """Every stored version: key, version, sha256, cases pinned to it."""
    pinned = dict(db.session.execute(select(Case.definition_id, func.count()).group_by(Case.definition_id)).all())
    rows = db.session.scalars(select(WorkflowDefinition).order_by(WorkflowDefinition.key, WorkflowDefinition.version))
    click.echo(f"{'key':24} {'version':>7}  {'sha256':12}  {'cases':>5}  loaded")
    for row in rows:
        click.echo(f"{row.key:24} {row.version:>7}  {row.sha256[:12]}  {pinned.get(row.id, 0):>5}  "
                   f"{row.loaded_at:%Y-%m-%d %H:%M}")


def _definition_row(key: str, version: int | None):
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
    a, b = _definition_row(key, old), _definition_row(key, new)
    diff = difflib.unified_diff(a.source.splitlines(keepends=True), b.source.splitlines(keepends=True),
                                fromfile=f"{key} v{a.version} ({a.sha256[:12]})",
                                tofile=f"{key} v{b.version} ({b.sha256[:12]})")
    click.echo("".join(diff) or "(no differences)")
