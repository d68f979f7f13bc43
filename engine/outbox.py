"""The one writer of outbox rows (`notification`): every message the system will send starts here.

A row is written in the transaction of whatever caused it (a transition, a document, a
sweep, the daily audit check) and delivered by the worker after the commit
(notifications/outbox.py). Two ways in, the same columns:

- `add`: one row through the ORM session, flushed with the rest of the caller's unit of
  work (a transition adds its rows this way: no extra statement on the hot path);
- `insert_many`: a batch in one INSERT that skips rows whose idempotency key exists
  (the sweep: its keys are its second line of defence against sending twice).

The idempotency key names the recipient with `recipient_key`: `user:<id>` or `address:<email>`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, time, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from .models import Notification, OutboxStatus, RoleAssignment, User

SUBJECT_MAX = 300
KEY_MAX = 200


def active_holders(session: Session, roles) -> list[int]:
    """Active users holding any of `roles` anywhere: whom an operational alert goes to (the admins)."""
    return list(session.scalars(
        select(User.id).join(RoleAssignment, RoleAssignment.user_id == User.id)
        .where(RoleAssignment.role.in_(tuple(roles)), User.active.is_(True)).distinct().order_by(User.id)))


def recipient_key(uid: int | None, address: str | None) -> str:
    """How an idempotency key (and the audit trail) names a recipient."""
    return f"user:{uid}" if uid else f"address:{address}"


class _KeepMissing(dict):
    def __missing__(self, key):
        return "{" + key + "}"


def safe_format(template: str, **values) -> str:
    """`template.format(**values)`, leaving unknown {names} as they are: a definition's subject
    may name a value this message does not have, and that must not stop the message."""
    return template.format_map(_KeepMissing(values))


@dataclass(frozen=True)
class DeadlineMail:
    """What a reminder or overdue message carries beyond its case (the row's `data`, read by
    notifications/render.py)."""

    deadline_id: int
    deadline_kind: str
    label: str
    label_en: str
    due_at: str  # ISO 8601, UTC
    days_before: int | None = None  # reminders only
    subject_en: str | None = None  # an on_overdue recipient's English subject

    def as_data(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def values(*, key: str, case_id: int | None, seq: int | None, uid: int | None, address: str | None, role: str,
           kind: str, subject: str, now: datetime, data: dict | None = None, attachments=(),
           body_text: str = "", held_for: int | None = None) -> dict:
    """Every column of a new outbox row: due now, no attempt yet; or held until every signer of
    document `held_for` has signed it (`release_held`)."""
    data = dict(data) if data else {}
    if held_for is not None:
        data[HELD_FOR] = held_for
    return dict(idempotency_key=key, case_id=case_id, event_seq=seq, recipient_user_id=uid,
                recipient_address=address, recipient_role=role, kind=kind, subject=subject[:SUBJECT_MAX],
                body_text=body_text, attachments=list(attachments),
                status=(OutboxStatus.HELD if held_for is not None else OutboxStatus.PENDING).value, attempts=0,
                next_attempt_at=None if held_for is not None else now, last_error=None, created_at=now,
                sent_at=None, data=data)


HELD_FOR = "held_for_document"

# The daily digest (docs/digest.md). A row waiting for it is `held` with next_attempt_at at the digest
# moment; a row held for a document has none, so the two never meet.
DIGEST_KIND = "digest"
# Kinds the engine writes itself that ask nothing of their reader: a signer signed the author's document.
INFORMATIONAL_KINDS = frozenset({"document_signed"})


def informational(n: Notification, definition) -> bool:
    """May this row wait for its reader's digest? News about a case without a letter, a deadline or a
    request in it: the definition's informational notices (`Definition.informational_notices`) and
    INFORMATIONAL_KINDS. Everything else (reminders, overdue notices, requests to act, letters) leaves at once."""
    if n.case_id is None or not n.recipient_user_id or n.attachments or (n.data or {}).get("deadline_id"):
        return False
    if n.kind in INFORMATIONAL_KINDS:
        return True
    return definition is not None and (n.kind, n.recipient_role or "") in definition.informational_notices


def digest_moment(now: datetime, hour: int, tz) -> datetime:
    """The first digest moment after `now`: `hour`:00 local time (`tz`), today or tomorrow."""
    local = now.astimezone(tz)
    moment = datetime.combine(local.date(), time(hour), tzinfo=tz)
    if moment <= local:
        moment = datetime.combine(local.date() + timedelta(days=1), time(hour), tzinfo=tz)
    return moment.astimezone(timezone.utc)


def release_held(session: Session, case_id: int, document_id: int, now: datetime) -> int:
    """The rows of a case held for a document, now that it is signed by all: due from now on."""
    rows = session.scalars(select(Notification).where(Notification.case_id == case_id,
                                                      Notification.status == OutboxStatus.HELD.value)).all()
    released = [n for n in rows if (n.data or {}).get(HELD_FOR) == document_id]
    for n in released:
        n.status, n.next_attempt_at = OutboxStatus.PENDING.value, now
    session.flush()
    return len(released)


def add(session: Session, **row) -> Notification:
    """One row through the session (see `values` for the arguments)."""
    notification = Notification(**values(**row))
    session.add(notification)
    return notification


def insert_many(session: Session, rows: list[dict]) -> None:
    """Rows built with `values`, in one INSERT; a row whose idempotency key exists is skipped."""
    if not rows:
        return
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.connection().execute(
        insert(Notification.__table__).on_conflict_do_nothing(index_elements=["idempotency_key"]), rows)
