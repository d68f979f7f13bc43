"""The tamper-evident audit trail: verify the chains (against a checkpoint), the daily check and checkpoint
once, the access log as CSV."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from engine import audit

from ..access_log import csv_text, export_rows
from ..extensions import db
from ..jobs.daily import CheckpointRefused, audit_key, check_audit, newest_checkpoint, verified_checkpoint, \
    write_checkpoint
from .common import moment


@click.group("audit")
def audit_group():
    """The tamper-evident audit trail."""


@audit_group.command("verify")
@click.option("--case", "case_id", type=int, default=None)
@click.option("--checkpoint", "checkpoint_file", type=click.Path(dir_okay=False), default=None,
              help="a checkpoint (JSON) to verify against; default: the newest in <instance>/checkpoints")
@with_appcontext
def audit_verify(case_id, checkpoint_file):
    """Exit 0 when every audit chain is intact (and matches the checkpoint); otherwise name the first break."""
    app = current_app._get_current_object()
    if checkpoint_file is not None:
        if not Path(checkpoint_file).is_file():
            click.echo(f"no checkpoint file {checkpoint_file}", err=True)
            sys.exit(2)
        if audit_key(app) is None:
            click.echo("cannot check the checkpoint: TRAJECT_AUDIT_KEY is not set", err=True)
            sys.exit(2)
    path, checkpoint, refused = verified_checkpoint(app, Path(checkpoint_file) if checkpoint_file
                                                    else newest_checkpoint(app))
    if path is None and newest_checkpoint(app) is not None:
        click.echo("the newest checkpoint was not compared: TRAJECT_AUDIT_KEY is not set", err=True)
    if refused is not None:
        cases, events, problem = 0, 0, refused
    else:
        cases, events, problem = audit.verify(db.session, case_id, checkpoint=checkpoint)
    used = {"checkpoint": str(path) if path is not None else None}
    if problem:
        click.echo(f"BROKEN: {problem}", err=False)
        click.echo(json.dumps({"ok": False, "cases": cases, "events": events, "case_id": problem.case_id,
                               "seq": problem.seq, "problem": problem.problem, **problem.detail, **used}))
        sys.exit(1)
    if case_id is not None and cases == 0:
        click.echo(f"no case {case_id}", err=True)
        sys.exit(2)
    click.echo(json.dumps({"ok": True, "cases": cases, "events": events, **used}))


@audit_group.command("checkpoint")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="also write the checkpoint to this file (e.g. on other storage)")
@click.option("--force", is_flag=True,
              help="write it although the database no longer matches the previous checkpoint (after a restore)")
@with_appcontext
def audit_checkpoint_command(out, force):
    """Sign every chain's head (HMAC, TRAJECT_AUDIT_KEY), store it in <instance>/checkpoints and mail the admins."""
    try:
        summary = write_checkpoint(current_app._get_current_object(), out=out, force=force)
    except CheckpointRefused as exc:
        click.echo(f"checkpoint refused: {exc}", err=True)
        sys.exit(1)
    click.echo(json.dumps(summary))


@audit_group.command("access-log")
@click.option("--out", "out", required=True, help="CSV file, or - for stdout")
@click.option("--since", default=None, help="ISO-8601, inclusive")
@click.option("--until", default=None, help="ISO-8601, exclusive")
@click.option("--case", "case_id", type=int, default=None)
@click.option("--user", "user_id", type=int, default=None)
@with_appcontext
def access_log_command(out, since, until, case_id, user_id):
    """The access log as CSV: who read which personal case, when and what."""
    rows = export_rows(moment(since, "--since"), moment(until, "--until"), case_id, user_id)
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


@audit_group.command("check")
@with_appcontext
def audit_check_command():
    """Verify every chain and alert the admins (outbox) of each break not reported before."""
    summary = check_audit(current_app._get_current_object())
    click.echo(json.dumps(summary))
    if summary["breaks"]:
        sys.exit(1)
