"""Durable deadlines: the sweep that sends reminders and marks deadlines overdue.

A deadline is a row (engine/models.py): `due_at`, and `remind_at`, the next moment the
worker must look at it — the next reminder, or the due time itself. `sweep` claims the
rows whose moment has come and, in the caller's transaction, moves each one on and
writes what that means:

- a reminder: status `reminded`, remind_at → the next reminder or due_at; an outbox
  row to the owner (idempotency key with the reminder's offset) with the deadline as a
  calendar entry; a `deadline_reminder` event in the case's audit chain;
- due_at passed: status `overdue`, remind_at → NULL (the row leaves the partial index);
  the owner is told; the definition's `on_overdue` recipients (e.g. the next level) are
  told; a `deadline_overdue` event. Nothing changes state by itself (CONTRACT.md §4).

Exactly once, with any number of workers:
- PostgreSQL: the due rows are claimed `FOR UPDATE SKIP LOCKED`, then their cases
  `FOR UPDATE SKIP LOCKED` (a deadline whose case is busy — a user's transition, another
  sweeper — is left for the next pass: no sweeper ever waits for a lock while holding
  one, so sweepers and transitions cannot deadlock).
- SQLite: no row locks; each row is claimed with a compare-and-set on (status,
  remind_at). The first such UPDATE takes SQLite's single write lock, so everything
  read after it (the cases) is current until the commit.
- Either way the outbox rows carry unique idempotency keys and are inserted with ON
  CONFLICT DO NOTHING: a second line of defence.

Nothing here commits. The caller commits (then the effects become durable together) or
rolls back (then every claimed row is due again, untouched): a worker killed at any
instant loses nothing. web/worker.py runs batches of this in a loop, one transaction
per batch.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from . import audit
from .canonical import isoformat_utc
from .clock import FixedClock
from .errors import VersionConflict
from .models import AuditEvent, Case, Deadline, Notification
from .scope import Actor

log = logging.getLogger(__name__)

BATCH = 500
# Literals, not bound parameters: SQLite (and PostgreSQL's generic plans) can only use the
# partial index ix_deadline_open_due when the query repeats its predicate with constants.
OPEN_FOR_SWEEP = (literal_column("'pending'"), literal_column("'reminded'"))


@dataclass
class SweepResult:
    reminded: int = 0  # deadlines for which a reminder went out
    overdue: int = 0  # deadlines that turned overdue
    escalated: int = 0  # overdue deadlines whose `on_overdue` told someone beyond the owner, or fired
    candidates: int = 0  # due rows seen
    deferred: int = 0  # due rows left for the next pass (claimed elsewhere, or their case was busy)
    moved: int = 0  # rows moved on without a message (a reminder moment that no longer applies)

    def __iadd__(self, other: "SweepResult") -> "SweepResult":
        for key, value in asdict(other).items():
            setattr(self, key, getattr(self, key) + value)
        return self

    @property
    def processed(self) -> int:
        return self.reminded + self.overdue + self.moved

    def summary(self) -> dict:
        return {"reminded": self.reminded, "overdue": self.overdue, "escalated": self.escalated}


def due_query(now: datetime, limit: int = BATCH):
    """The claim query: served by the partial index ix_deadline_open_due."""
    return (
        select(Deadline.id, Deadline.case_id, Deadline.kind, Deadline.label, Deadline.due_at, Deadline.remind_at,
               Deadline.status, Deadline.owner_role, Deadline.reminder_days)
        .where(Deadline.status.in_(OPEN_FOR_SWEEP), Deadline.remind_at <= now)
        .order_by(Deadline.remind_at)
        .limit(limit)
    )


def reminder_moments(due_at: datetime, days_before, tz_name: str, hour: int) -> dict[int, datetime]:
    """Offset in days → the moment of that reminder: `hour` o'clock local time, n calendar days before the
    due day (DST-safe: 09:00 is 09:00 in winter and in summer). Mirrors Engine.reminder_at."""
    tz = ZoneInfo(tz_name)
    due_day: date = due_at.astimezone(tz).date()
    return {int(n): datetime.combine(due_day - timedelta(days=int(n)), time(hour), tzinfo=tz) for n in days_before}


@dataclass
class _Plan:
    action: str  # "remind" | "overdue" | "move"
    status: str
    remind_at: datetime | None
    days_before: int | None = None
    skipped: tuple[int, ...] = ()


def _plan(row, engine, now: datetime) -> _Plan:
    if row.due_at <= now:
        return _Plan("overdue", "overdue", None)
    moments = reminder_moments(row.due_at, row.reminder_days or [], engine.config.timezone,
                               engine.config.reminder_hour)
    passed = sorted((n for n, moment in moments.items() if moment <= now), reverse=True)
    following = engine.reminder_at(row.due_at, row.reminder_days or [], now)
    if not passed:
        # remind_at pointed at no reminder that has come (e.g. the offsets changed): just move on.
        return _Plan("move", row.status, following)
    # A worker that was down for a while sends only the latest reminder that has come, not every one missed.
    return _Plan("remind", "reminded", following, days_before=passed[-1], skipped=tuple(passed[:-1]))


_T = Deadline.__table__
# Built once with bound parameters: a sweep runs it for every row, so it must not be rebuilt each time.
_CLAIM = (update(_T)
          .where(_T.c.id == bindparam("_id"), _T.c.status == bindparam("_old_status"),
                 _T.c.remind_at == bindparam("_old_remind_at"))
          .values(status=bindparam("_status"), remind_at=bindparam("_remind_at")))


def _claim(session: Session, row, plan: _Plan) -> bool:
    """Compare-and-set: the row moves on only if nobody moved it since we read it."""
    return session.connection().execute(_CLAIM, _claim_params(row, plan)).rowcount == 1


def _claim_params(row, plan: _Plan) -> dict:
    return {"_id": row.id, "_old_status": row.status, "_old_remind_at": row.remind_at, "_status": plan.status,
            "_remind_at": plan.remind_at}


def _spec(engine, case: Case, kind: str, cache: dict) -> tuple:
    key = (case.definition_id, kind)
    if key not in cache:
        definition = engine.definition(case.definition)
        found = {}
        for step in [definition.open, *definition.transitions]:
            for spec in step.deadlines:
                if spec["kind"] == kind:
                    found = spec
                    break
            if found:
                break
        cache[key] = (definition, found)
    return cache[key]


def _recipients(session: Session, engine, definition, case: Case, to: str):
    """engine.recipients, plus `owner`: the owner role of the case's current level (ladders)."""
    if to == "owner":
        to = (definition.state(case.state).get("owner") if case.state in definition.state_names else None) or ""
        if not to:
            return []
    return engine.recipients(session, case, to)


def system_actor(definition, case: Case, trigger: str) -> Actor:
    """Who fires an automatic escalation: the system, holding exactly the roles the step allows here."""
    step = definition.step(trigger, case.state)
    allowed = set(step.roles) if step else set()
    if "owner" in allowed:
        allowed.discard("owner")
        owner = definition.state(case.state).get("owner")
        if owner:
            allowed.add(owner)
    allowed -= {"*", "subject", "opener", "responsible"}
    return Actor(id=None, assignments=tuple((role, case.institution_id, case.region_id) for role in sorted(allowed)),
                 superuser=True, name="Traject (automatisch)")


def _label(spec: dict, row) -> tuple[str, str]:
    nl = row.label or spec.get("label") or row.kind
    return nl, spec.get("label_en") or nl


def _format(template: str, **values) -> str:
    class Safe(dict):
        def __missing__(self, key):
            return "{" + key + "}"

    return template.format_map(Safe(values))


def sweep(session: Session, engine, now: datetime, *, limit: int = BATCH) -> SweepResult:
    """Claim up to `limit` due deadlines and act on them in the caller's transaction (no commit)."""
    result = SweepResult()
    postgres = session.get_bind().dialect.name == "postgresql"
    query = due_query(now, limit)
    if postgres:
        query = query.with_for_update(of=Deadline, skip_locked=True)
    rows = session.execute(query).all()
    result.candidates = len(rows)
    if not rows:
        return result

    def load_cases(ids):
        q = (select(Case).where(Case.id.in_(sorted(ids))).order_by(Case.id)
             .execution_options(populate_existing=True))
        if postgres:
            q = q.with_for_update(of=Case, skip_locked=True)
        return {c.id: c for c in session.scalars(q).unique()}

    cases: dict[int, Case] = {}
    if postgres:
        # Lock the cases before touching anything; a busy case's deadlines wait for the next pass.
        cases = load_cases({r.case_id for r in rows})
        busy = [r for r in rows if r.case_id not in cases]
        result.deferred += len(busy)
        rows = [r for r in rows if r.case_id in cases]

    claimed = []
    if postgres:
        # The rows are locked: one round trip moves them all (the compare-and-set only confirms it).
        claimed = [(row, _plan(row, engine, now)) for row in rows]
        if claimed:
            done = session.connection().execute(_CLAIM, [_claim_params(row, plan) for row, plan in claimed])
            if done.rowcount != len(claimed):
                raise VersionConflict("locked deadlines changed during the sweep", {})
    else:
        for row in rows:
            plan = _plan(row, engine, now)
            if _claim(session, row, plan):
                claimed.append((row, plan))
            else:
                result.deferred += 1
    if not claimed:
        return result
    if not postgres:
        cases = load_cases({r.case_id for r, _ in claimed})

    specs: dict = {}
    heads: dict[int, int] = {}  # case id → audit_seq before this batch (for the compare-and-set)
    events, outbox, fires = [], [], []
    for row, plan in claimed:
        if plan.action == "move":
            result.moved += 1
            continue
        case = cases[row.case_id]
        definition, spec = _spec(engine, case, row.kind, specs)
        label, label_en = _label(spec, row)
        owners = _recipients(session, engine, definition, case, row.owner_role)
        owner_keys = [_who(uid, address) for uid, address in owners]
        data = {"deadline_id": row.id, "kind": row.kind, "label": label, "due_at": isoformat_utc(row.due_at),
                "owner_role": row.owner_role, "recipients": owner_keys}
        common = {"deadline_id": row.id, "deadline_kind": row.kind, "label": label, "label_en": label_en,
                  "due_at": isoformat_utc(row.due_at)}
        local_due = row.due_at.astimezone(ZoneInfo(engine.config.timezone))
        heads.setdefault(case.id, case.audit_seq)
        if plan.action == "remind":
            data["days_before"] = plan.days_before
            if plan.skipped:
                data["skipped_days_before"] = list(plan.skipped)
            event = _append(case, now, "deadline_reminder", data)
            subject = f"Herinnering: {label} uiterlijk {local_due:%d-%m-%Y}"
            for (uid, address), who in zip(owners, owner_keys):
                outbox.append(_row(
                    key=f"deadline:{row.id}:reminder:{plan.days_before}:{who}:deadline_reminder", case=case,
                    seq=event.seq, uid=uid, address=address, role=row.owner_role, kind="deadline_reminder",
                    subject=subject, now=now, data={**common, "days_before": plan.days_before},
                    attachments=[{"type": "ics", "deadline_id": row.id}]))
            result.reminded += 1
        else:
            on_overdue = spec.get("on_overdue") or {}
            told = [(entry, uid, address) for entry in on_overdue.get("notify") or []
                    for uid, address in _recipients(session, engine, definition, case, entry["to"])]
            data["escalated_to"] = [f"{entry['to']}:{_who(uid, address)}" for entry, uid, address in told]
            if on_overdue.get("fire"):
                data["fire"] = on_overdue["fire"]
            event = _append(case, now, "deadline_overdue", data)
            subject = f"Termijn verstreken: {label} ({local_due:%d-%m-%Y})"
            for (uid, address), who in zip(owners, owner_keys):
                outbox.append(_row(
                    key=f"deadline:{row.id}:overdue:{who}:deadline_overdue", case=case, seq=event.seq, uid=uid,
                    address=address, role=row.owner_role, kind="deadline_overdue", subject=subject, now=now,
                    data=common))
            for entry, uid, address in told:
                values = dict(title=case.title or definition.title, workflow=definition.title, case_id=case.id,
                              deadline=label)
                outbox.append(_row(
                    key=f"deadline:{row.id}:overdue:{_who(uid, address)}:{entry['kind']}", case=case, seq=event.seq,
                    uid=uid, address=address, role=entry["to"], kind=entry["kind"],
                    subject=_format(entry["subject"], **values), now=now,
                    data={**common, "subject_en": _format(entry.get("subject_en") or "",
                                                          **{**values, "workflow": definition.title_en,
                                                             "title": case.title or definition.title_en,
                                                             "deadline": label_en})}))
            if not owners:
                log.warning("deadline %s of case %s is overdue and its owner (%s) has nobody to tell",
                            row.id, case.id, row.owner_role)
            result.overdue += 1
            result.escalated += bool(told)
            if on_overdue.get("fire"):
                fires.append((case, definition, on_overdue["fire"], label, bool(told)))
        events.append(event)

    # One compare-and-set per case on its chain head: we hold its lock (PostgreSQL) or the
    # write lock (SQLite), so a failure here means a bug; raising rolls the whole batch back.
    conn = session.connection()
    if heads:
        done = conn.execute(_HEAD, [{"_id": case_id, "_old_seq": seq_before, "_seq": cases[case_id].audit_seq,
                                     "_head": cases[case_id].audit_head} for case_id, seq_before in heads.items()])
        if done.rowcount != len(heads):
            raise VersionConflict("a case's audit chain moved during the sweep", {"case_ids": sorted(heads)})
    if events:
        conn.execute(AuditEvent.__table__.insert(), [
            {c: getattr(e, c) for c in ("case_id", "seq", "at", "actor_id", "type", "trigger", "from_state",
                                        "to_state", "data", "prev_hash", "hash")} for e in events])
    if outbox:
        insert = pg_insert if postgres else sqlite_insert
        conn.execute(insert(Notification.__table__).on_conflict_do_nothing(index_elements=["idempotency_key"]),
                     outbox)
    for case, definition, trigger, label, counted in fires:
        if _fire(session, engine, definition, case, trigger, label, now) and not counted:
            result.escalated += 1
    return result


def _fire(session: Session, engine, definition, case: Case, trigger: str, label: str, now: datetime) -> int:
    """Automatic escalation (only where the definition or the region's override names `on_overdue.fire`).

    The transition runs as the system in a savepoint: when it is not possible now (the case
    moved on, a guard is unmet), it is skipped and logged; the overdue event stays.
    """
    actor = system_actor(definition, case, trigger)
    # The transition happens at the sweep's moment (`traject sweep --now T` included), not the wall clock's.
    at_now = copy.copy(engine)
    at_now.clock = FixedClock(now)
    try:
        with session.begin_nested():
            at_now.fire(session, actor, case.id, trigger, case.version,
                        {"reason": f"Termijn verstreken: {label} (automatisch)"})
    except Exception as exc:  # a domain refusal or a failed effect: the escalation waits for a person
        log.warning("automatic %s on case %s not possible: %s", trigger, case.id, exc)
        return 0
    return 1


def _who(uid, address) -> str:
    return f"user:{uid}" if uid else f"address:{address}"


_C = Case.__table__
_HEAD = (update(_C).where(_C.c.id == bindparam("_id"), _C.c.audit_seq == bindparam("_old_seq"))
         .values(audit_seq=bindparam("_seq"), audit_head=bindparam("_head")))


def _append(case: Case, now: datetime, type_: str, data: dict):
    """The next event of the case's chain; the head is written once per case at the end of the batch."""
    event = audit.new_event(case, now, None, type_, data=data)
    set_committed_value(case, "audit_seq", event.seq)
    set_committed_value(case, "audit_head", event.hash)
    return event


def _row(*, key, case, seq, uid, address, role, kind, subject, now, data, attachments=()) -> dict:
    return dict(idempotency_key=key[:200], case_id=case.id, event_seq=seq, recipient_user_id=uid,
                recipient_address=address, recipient_role=role, kind=kind, subject=subject[:300], body_text="",
                attachments=list(attachments), status="pending", attempts=0, next_attempt_at=now, last_error=None,
                created_at=now, sent_at=None, data=data)
