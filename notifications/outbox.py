"""The outbox's drain: how an e-mail leaves, retries and dead letters.

Outbox rows are written in the transaction of whatever caused them (a transition, a
sweep); this module delivers them afterwards. A row's life:

    pending ──claim──▶ sending ──send ok──▶ sent
       ▲                  │ ├──retryable──▶ pending (next_attempt_at = now + backoff or Retry-After)
       │                  │ └──permanent──▶ dead (last_error says why; requeue() puts it back)
       └── lease ran out ─┘   (the worker died mid-call: another worker claims it again)

Delivery is at-least-once. The one window in which a message can go out twice is
between the backend accepting it and our commit of `sent` — a worker killed in that
instant, or a timeout after SendGrid accepted the request. (SendGrid has no idempotency
key; the `file` backend is idempotent by file name, and mail clients collapse the
stable Message-ID.) To keep the window narrow:
- the row is marked `sending` and committed *before* the call, with a lease
  (next_attempt_at = now + lease) instead of a lock, so no transaction is open during
  the call and a dead worker's rows come back by themselves;
- `sent` is committed right after the call, before anything else happens;
- a retry or reclaim only ever happens for a row whose outcome we did not see.

`drain` owns its transactions (it is the worker's unit of work): one commit for each
claimed batch, one for each delivered message. Nothing else here commits.
"""
from __future__ import annotations

import logging
import random
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import bindparam, literal_column, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from engine import outbox as rows
from engine.fields import control_characters
from engine.models import OUTBOX_CLAIMABLE, AuditEvent, Notification, OutboxStatus

from . import digest
from .backends import DeliveryError
from .render import MailSettings, compose

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 10
BASE_DELAY = 60.0  # seconds before the first retry (then doubling)
MAX_DELAY = 6 * 3600.0
BATCH = 50
UNBUILDABLE_KIND = "notification_unbuildable"  # to the sender and the admins when a message cannot be built
# Literals, so the partial index ix_notification_due serves the claim (see engine/deadlines.py).
CLAIMABLE = tuple(literal_column(f"'{status}'") for status in OUTBOX_CLAIMABLE)


@dataclass
class DrainResult:
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    claimed: int = 0
    lost: int = 0  # outcomes we could not record: our lease had run out and another worker took the row
    collected: int = 0  # held for their reader's daily digest (notifications/digest.py)

    def __iadd__(self, other: "DrainResult") -> "DrainResult":
        for key, value in asdict(other).items():
            setattr(self, key, getattr(self, key) + value)
        return self

    def summary(self) -> dict:
        return {"delivered": self.delivered, "retried": self.retried, "dead": self.dead}


def backoff(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): exponential, capped, with jitter
    (uniform between half and all of it) so that many failed rows do not come back in one burst."""
    ceiling = min(MAX_DELAY, BASE_DELAY * 2 ** max(0, attempt - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)


def due_query(now: datetime, limit: int):
    return (select(Notification.id, Notification.status, Notification.attempts)
            .where(Notification.status.in_(CLAIMABLE), Notification.next_attempt_at <= now)
            .order_by(Notification.next_attempt_at)
            .limit(limit))


def claim(session: Session, now: datetime, limit: int = BATCH, lease: timedelta = LEASE) -> list[tuple[int, int]]:
    """Mark up to `limit` due rows `sending` with a lease and commit; returns (id, attempt) pairs.

    PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: a compare-and-set on (status, attempts)
    per row. `attempts` is the fencing token: whoever finishes a row must still hold the
    attempt number it claimed.
    """
    if lease <= timedelta(0):
        raise ValueError("the lease must be positive")
    until = now + lease
    claimed = []
    try:
        if session.get_bind().dialect.name == "postgresql":
            ids = due_query(now, limit).with_for_update(skip_locked=True).with_only_columns(Notification.id)
            rows = session.execute(
                update(Notification).where(Notification.id.in_(ids.scalar_subquery()))
                .values(status=OutboxStatus.SENDING, attempts=Notification.attempts + 1, next_attempt_at=until)
                .returning(Notification.id, Notification.attempts)
                .execution_options(synchronize_session=False)).all()
            claimed = sorted((r.id, r.attempts) for r in rows)
        else:
            for row in session.execute(due_query(now, limit)).all():
                result = session.connection().execute(_CLAIM, {
                    "_id": row.id, "_old_status": row.status, "_old_attempts": row.attempts,
                    "_attempts": row.attempts + 1, "_until": until})
                if result.rowcount == 1:
                    claimed.append((row.id, row.attempts + 1))
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return claimed


def drain(session: Session, backend, clock: Callable[[], datetime], *, settings: MailSettings | None = None,
          engine=None, limit: int = BATCH, lease: timedelta = LEASE, max_attempts: int = MAX_ATTEMPTS,
          rng: random.Random | None = None) -> DrainResult:
    """Deliver every row due at clock(): claim a batch, send each, record each outcome; repeat.

    Ends: a claimed row's next_attempt_at lies after the moment it was claimed, so no row is
    taken twice in one drain.
    """
    settings = settings or MailSettings()
    total = DrainResult()
    while True:
        batch = claim(session, clock(), limit, lease)
        total.claimed += len(batch)
        for notification_id, attempt in batch:
            outcome = deliver(session, backend, notification_id, attempt, clock, settings=settings, engine=engine,
                              max_attempts=max_attempts, rng=rng)
            if outcome == "lost":
                total.lost += 1
            else:
                setattr(total, outcome, getattr(total, outcome) + 1)
        if len(batch) < limit:
            return total


def deliver(session: Session, backend, notification_id: int, attempt: int, clock: Callable[[], datetime], *,
            settings: MailSettings, engine=None, max_attempts: int = MAX_ATTEMPTS,
            rng: random.Random | None = None) -> str:
    """Send one claimed row; returns "delivered", "retried", "dead", "lost" or "collected" (it waits for the
    reader's daily digest: held until the digest moment, the claim not counted as an attempt)."""
    n = session.get(Notification, notification_id, populate_existing=True)
    if n is None:
        session.rollback()
        return "lost"
    if attempt > 1 and n.last_error is None:
        # Claimed before, no outcome recorded: that worker died mid-call. This is the at-least-once window.
        log.warning("notification %s: an earlier attempt ended without an outcome; sending again", n.id)
    if attempt > max_attempts:
        session.rollback()
        return _finish(session, notification_id, attempt, "dead", status=OutboxStatus.DEAD, next_attempt_at=None,
                       last_error=f"gave up after {max_attempts} attempts: {n.last_error or 'no outcome recorded'}")
    try:
        if digest.waits(session, n, engine):
            session.rollback()
            return _finish(session, notification_id, attempt, "collected", status=OutboxStatus.HELD,
                           attempts=attempt - 1, next_attempt_at=digest.moment(clock(), settings))
        message = compose(session, n, settings, engine)
        _check_headers(message)
    except OperationalError as exc:  # the database went away while composing: the message waits
        session.rollback()
        return _failed(session, notification_id, attempt, DeliveryError(f"database: {exc}", retry=True), clock(),
                       max_attempts, rng)
    except DeliveryError as exc:
        session.rollback()
        if exc.retry:
            return _failed(session, notification_id, attempt, exc, clock(), max_attempts, rng)
        return _unbuildable(session, notification_id, attempt, exc.reason, clock())
    except Exception as exc:  # a message that cannot be built (a broken header, a bad template) stays broken
        session.rollback()
        log.exception("notification %s: cannot be built", notification_id)
        return _unbuildable(session, notification_id, attempt, f"{type(exc).__name__}: {exc}", clock())
    try:
        session.rollback()  # no transaction stays open during the call
        backend.send(message)
    except DeliveryError as exc:
        session.rollback()
        return _failed(session, notification_id, attempt, exc, clock(), max_attempts, rng)
    except Exception as exc:  # a bug or an outage while composing: keep the message, try again later
        session.rollback()
        log.exception("notification %s: unexpected error", notification_id)
        return _failed(session, notification_id, attempt,
                       DeliveryError(f"{type(exc).__name__}: {exc}", retry=True), clock(), max_attempts, rng)
    # Right after the call, before anything else: the at-least-once window closes here.
    return _finish(session, notification_id, attempt, "delivered", status=OutboxStatus.SENT, sent_at=clock(),
                   next_attempt_at=None, last_error=None)


def _check_headers(message) -> None:
    """Sender, recipient and subject become mail headers: a line break there is no message at all."""
    for name in ("sender", "to", "subject"):
        if control_characters(getattr(message, name) or ""):
            raise DeliveryError(f"the {name} holds a line break or another control character", retry=False)


def _unbuildable(session: Session, notification_id: int, attempt: int, reason: str, now: datetime) -> str:
    """A dead letter at once (retrying builds the same broken message for hours); its sender and the admins are told."""
    outcome = _finish(session, notification_id, attempt, "dead", status=OutboxStatus.DEAD, next_attempt_at=None,
                      last_error=f"cannot be built: {reason}"[:2000])
    n = session.get(Notification, notification_id)
    if outcome == "dead" and n is not None and n.kind != UNBUILDABLE_KIND:
        _tell_unbuildable(session, n, reason, now)
    session.commit()
    return outcome


def _tell_unbuildable(session: Session, n: Notification, reason: str, now: datetime) -> None:
    sender = session.scalar(select(AuditEvent.actor_id).where(AuditEvent.case_id == n.case_id,
                                                              AuditEvent.seq == n.event_seq)) if n.event_seq else None
    admins = set(rows.active_holders(session, ("admin",)))
    where = f"zaak {n.case_id}" if n.case_id else "Traject"
    body = (f"Een bericht over {where} kon niet worden opgemaakt en is niet verstuurd "
            f"(bericht {n.id}, aan {'een gebruiker' if n.recipient_user_id else n.recipient_address}).\n"
            f"Oorzaak: {reason[:500]}\n\nPas de gegevens van de zaak aan en zet het bericht opnieuw klaar met "
            f"`traject outbox requeue {n.id}`. / A message could not be built and was not sent.")
    for uid, role in sorted({(uid, "admin") for uid in admins} | ({(sender, "sender")} if sender else set())):
        rows.add(session, key=f"unbuildable:{n.id}:{rows.recipient_key(uid, None)}", case_id=n.case_id, seq=None,
                 uid=uid, address=None, role=role, kind=UNBUILDABLE_KIND,
                 subject=f"Bericht niet verstuurd: {where}", body_text=body, now=now,
                 data={"notification_id": n.id, "reason": reason[:500]})


def _failed(session, notification_id, attempt, exc: DeliveryError, now, max_attempts, rng) -> str:
    if not exc.retry:
        log.warning("notification %s: dead letter: %s", notification_id, exc.reason)
        return _finish(session, notification_id, attempt, "dead", status=OutboxStatus.DEAD, next_attempt_at=None,
                       last_error=exc.reason[:2000])
    if attempt >= max_attempts:
        log.warning("notification %s: giving up after %s attempts: %s", notification_id, attempt, exc.reason)
        return _finish(session, notification_id, attempt, "dead", status=OutboxStatus.DEAD, next_attempt_at=None,
                       last_error=f"gave up after {attempt} attempts: {exc.reason}"[:2000])
    # Retry-After is honoured as given (up to a day: a typo on their side must not park a message for a year).
    delay = min(exc.retry_after, 86400.0) if exc.retry_after is not None else backoff(attempt, rng)
    log.info("notification %s: attempt %s failed (%s); again in %.0f s", notification_id, attempt, exc.reason, delay)
    return _finish(session, notification_id, attempt, "retried", status=OutboxStatus.PENDING,
                   next_attempt_at=now + timedelta(seconds=delay), last_error=exc.reason[:2000])


_N = Notification.__table__
# Statements run once per message are built once (with bound parameters), not per message.
_CLAIM = (update(_N)
          .where(_N.c.id == bindparam("_id"), _N.c.status == bindparam("_old_status"),
                 _N.c.attempts == bindparam("_old_attempts"))
          .values(status=OutboxStatus.SENDING, attempts=bindparam("_attempts"), next_attempt_at=bindparam("_until")))
_FINISH: dict[tuple, object] = {}


def _finish_statement(keys: tuple):
    if keys not in _FINISH:
        _FINISH[keys] = (update(_N)
                         .where(_N.c.id == bindparam("_id"), _N.c.status == OutboxStatus.SENDING,
                                _N.c.attempts == bindparam("_attempt"))
                         .values({key: bindparam(f"v_{key}") for key in keys}))
    return _FINISH[keys]


def _finish(session: Session, notification_id: int, attempt: int, outcome: str, **values) -> str:
    """Record an outcome, but only while we still hold the claim (status sending, our attempt)."""
    try:
        statement = _finish_statement(tuple(sorted(values)))
        result = session.connection().execute(statement, {"_id": notification_id, "_attempt": attempt,
                                                          **{f"v_{k}": v for k, v in values.items()}})
        session.commit()
    except BaseException:
        session.rollback()
        raise
    if result.rowcount != 1:
        log.warning("notification %s: lease lost before its outcome (%s) was recorded", notification_id, outcome)
        return "lost"
    return outcome


# -- dead letters (the admin page calls these; the caller commits) -------------------------

def dead_letters(session: Session, limit: int = 100, after_id: int | None = None) -> list[Notification]:
    """Dead letters, oldest first: each with its kind, recipient, attempts and last_error (the reason)."""
    q = select(Notification).where(Notification.status == OutboxStatus.DEAD).order_by(Notification.id).limit(limit)
    if after_id is not None:
        q = q.where(Notification.id > after_id)
    return list(session.scalars(q))


def requeue(session: Session, ids: list[int] | None, now: datetime) -> int:
    """Put dead letters back in the queue (all of them when `ids` is None); returns how many. No commit."""
    q = update(Notification).where(Notification.status == OutboxStatus.DEAD)
    if ids is not None:
        q = q.where(Notification.id.in_(list(ids)))
    result = session.execute(q.values(status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now)
                             .execution_options(synchronize_session=False))
    return result.rowcount
