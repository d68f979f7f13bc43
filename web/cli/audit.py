"""The tamper-evident audit trail: verify the chains, the daily check once, the access log as CSV."""
from __future__ import annotations

import json
import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from engine import audit

from ..access_log import csv_text, export_rows
from ..extensions import db
from ..jobs.daily import check_audit
from .common import moment


@click.group("audit")
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
