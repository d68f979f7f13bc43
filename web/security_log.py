"""The security log (NEN 7510, ASVS V7.2): every login, failure, logout and change to an account.

One writer (`record`); the rows are added to the caller's session, so an account change and its
log row commit together. A failed login has nothing else to commit: `record_failure` commits it.
Never a password, a code or a token in the row: only who, when, from where, how, and the outcome.
"""
from __future__ import annotations

import csv
import io

from flask import has_request_context, request
from sqlalchemy import select

from engine.models import SecurityEvent, User

from .extensions import db
from .runtime import now

# The columns of the export, in order (docs/identity.md describes them).
FIELDS = ("id", "at", "kind", "outcome", "method", "user_id", "email", "actor_id", "ip", "user_agent", "detail")


def record(kind: str, outcome: str = "ok", *, user: User | None = None, email: str = "", method: str = "",
           actor: User | int | None = None, detail: str = "") -> SecurityEvent:
    ip = ua = ""
    if has_request_context():
        ip = (request.remote_addr or "")[:64]
        ua = (request.user_agent.string or "")[:300]
    actor_id = actor.id if isinstance(actor, User) else actor
    row = SecurityEvent(at=now(), kind=kind, outcome=outcome, method=method, user_id=user.id if user else None,
                        email=(email or (user.email if user else ""))[:254], actor_id=actor_id, ip=ip,
                        user_agent=ua, detail=detail[:500])
    db.session.add(row)
    return row


def record_failure(kind: str, **kwargs) -> None:
    """A refused attempt: logged and committed on its own (the request has nothing else to keep)."""
    db.session.rollback()
    record(kind, "failed", **kwargs)
    db.session.commit()


def events(*, user_id: int | None = None, limit: int | None = 200):
    query = select(SecurityEvent).order_by(SecurityEvent.id.desc())
    if user_id is not None:
        query = query.where((SecurityEvent.user_id == user_id) | (SecurityEvent.actor_id == user_id))
    if limit:
        query = query.limit(limit)
    return db.session.scalars(query)


def as_csv() -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(FIELDS)
    for row in events(limit=None):
        values = [getattr(row, f) for f in FIELDS]
        values[1] = row.at.isoformat()
        # A cell starting with = + - @ is a formula to a spreadsheet: quote it as text (CSV injection).
        writer.writerow(["'" + v if isinstance(v, str) and v[:1] in "=+-@" else v for v in values])
    return out.getvalue()
