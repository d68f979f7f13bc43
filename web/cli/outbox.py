"""Notifications that could not be delivered: list and requeue dead letters."""
from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from notifications.outbox import dead_letters, requeue

from ..extensions import db
from ..runtime import now


@click.group("outbox")
def outbox_group():
    """Notifications that could not be delivered."""


@outbox_group.command("dead")
@click.option("--limit", type=int, default=100)
@with_appcontext
def outbox_dead(limit):
    """List dead letters as JSON lines: id, kind, recipient, attempts, reason."""
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
    if not ids and not everything:
        raise click.UsageError("name the ids to requeue, or --all")
    count = requeue(db.session, None if everything else list(ids), now())
    db.session.commit()
    click.echo(json.dumps({"requeued": count}))
