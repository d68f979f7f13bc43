"""The daily digest (docs/digest.md): informational mail for a user who chose it leaves once a day, as one mail.

No queue of its own, the outbox's columns:

    pending ──claim──▶ sending ──informational, reader wants a digest──▶ held (next_attempt_at = digest moment)
    held, digest moment passed ──collect──▶ sent   + one new `digest` row (pending), in one transaction

`waits` is asked by the drain before it composes a row; `collect` runs in every worker pass and finds
work only once the digest moment (TRAJECT_DIGEST_HOUR, local time) has passed. Marking the collected
rows sent and writing the digest row commit together: a worker that dies before the commit leaves
the rows held for the next pass, one that dies after it leaves a digest row that the drain delivers;
nothing is lost and nothing is collected twice (the update is conditional on `held`, and the digest's
idempotency key names its last row).
"""
from __future__ import annotations

import logging
from datetime import datetime
from itertools import groupby
from zoneinfo import ZoneInfo

from sqlalchemy import literal_column, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import outbox as rows
from engine.models import Case, Notification, OutboxStatus, User

from .render import MailSettings

log = logging.getLogger(__name__)


def moment(now: datetime, settings: MailSettings) -> datetime:
    return rows.digest_moment(now, settings.digest_hour, ZoneInfo(settings.timezone))


def waits(session: Session, n: Notification, engine) -> bool:
    """Should this claimed row wait for its reader's digest rather than leave now?"""
    if n.case_id is None or not n.recipient_user_id or n.attachments or n.kind == rows.DIGEST_KIND:
        return False  # the cheap refusals first: most rows leave at once
    if not session.scalar(select(User.mail_digest).where(User.id == n.recipient_user_id)):
        return False
    case = session.get(Case, n.case_id)
    definition = engine.definition(case.definition) if engine is not None and case is not None else None
    return rows.informational(n, definition)


# A literal, so that the partial index ix_notification_held serves the query (as CLAIMABLE in outbox.py).
HELD = literal_column(f"'{OutboxStatus.HELD.value}'")


def due(session: Session, now: datetime):
    return (select(Notification.recipient_user_id, Notification.id)
            .where(Notification.status == HELD, Notification.next_attempt_at <= now,
                   Notification.recipient_user_id.is_not(None))
            .order_by(Notification.recipient_user_id, Notification.id))


def collect(session: Session, now: datetime) -> int:
    """One digest row for every user with collected rows whose digest moment has passed; returns how many.

    Owns its transactions (the worker's unit of work): one commit per user."""
    waiting = session.execute(due(session, now)).all()
    session.rollback()
    made = 0
    for uid, group in groupby(waiting, key=lambda r: r.recipient_user_id):
        ids = [r.id for r in group]
        try:
            taken = session.execute(
                update(Notification).where(Notification.id.in_(ids), Notification.status == OutboxStatus.HELD,
                                           Notification.next_attempt_at <= now)
                .values(status=OutboxStatus.SENT, sent_at=now, next_attempt_at=None, last_error=None)
                .execution_options(synchronize_session=False)).rowcount
            if taken != len(ids):  # another worker collects them: its digest will carry them
                session.rollback()
                continue
            count = len(ids)
            rows.add(session, key=f"digest:{uid}:{ids[-1]}", case_id=None, seq=None, uid=uid, address=None,
                     role="reader", kind=rows.DIGEST_KIND, now=now,
                     subject=f"Dagoverzicht: {count} {'bericht' if count == 1 else 'berichten'} ter informatie",
                     data={"items": ids, "subject_en": f"Daily digest: {count} "
                                                       f"{'message' if count == 1 else 'messages'} for your information"})
            session.commit()
            made += 1
        except IntegrityError:
            session.rollback()
            log.info("digest for user %s: written by another worker", uid)
        except BaseException:
            session.rollback()
            raise
    return made


def release(session: Session, uid: int, now: datetime) -> int:
    """A user who stops the digest: what waits for it is due now, one by one. No commit."""
    return session.execute(
        update(Notification).where(Notification.recipient_user_id == uid, Notification.status == OutboxStatus.HELD,
                                   Notification.next_attempt_at.is_not(None))
        .values(status=OutboxStatus.PENDING, next_attempt_at=now)
        .execution_options(synchronize_session=False)).rowcount
