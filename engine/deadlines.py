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

Also here: the arithmetic of a deadline (`due_date`, `next_look`) and what "late" means
(`is_late`, `late`), each written once.

Nothing here commits. The caller commits (then the effects become durable together) or
rolls back (then every claimed row is due again, untouched): a worker killed at any
instant loses nothing. web/worker.py runs batches of this in a loop, one transaction
per batch.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, literal_column, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from . import audit, fields, outbox
from .calendar import WEEKENDS_ONLY, Rolled, WorkingCalendar, add_term, end_of_day, local_date, midpoint
from .canonical import isoformat_utc
from .errors import VersionConflict
from .models import DEADLINE_WAITING, AuditEvent, Case, Deadline, DeadlineStatus
from .scope import system_actor

log = logging.getLogger(__name__)

BATCH = 500
# Literals, not bound parameters: SQLite (and PostgreSQL's generic plans) can only use the
# partial index ix_deadline_open_due when the query repeats its predicate with constants.
OPEN_FOR_SWEEP = tuple(literal_column(f"'{status}'") for status in DEADLINE_WAITING)


# -- arithmetic -----------------------------------------------------------------------------


def due_date(ctx, due: dict, tz_name: str, calendar: WorkingCalendar = WEEKENDS_ONLY) -> date | None:
    """The day a deadline falls due, from its definition's `due` (one of date, midpoint, after, after_date),
    before any roll to a working day; working days are those of `calendar`."""
    if "date" in due:
        return fields.parse_date(ctx.value(due["date"]))
    if "midpoint" in due:
        a, b = (fields.parse_date(ctx.value(p)) for p in due["midpoint"])
        return midpoint(a, b) if a and b else None  # the second date is the period's last day
    base = local_date(ctx.now, tz_name)
    if "after_date" in due:
        base = fields.parse_date(ctx.value(due["after_date"]))
        if base is None:
            return None
    term = due.get("after") or {}
    return add_term(base, calendar=calendar, **{k: term.get(k, 0) for k in ("months", "weeks", "days", "working_days")})


def new_deadline(case_id: int, kind: str, label: str, day: Rolled, owner_role: str, reminder_days, now: datetime,
                 config) -> Deadline:
    """A pending deadline row that ends on `day` (23:59 local time), with its first look and reminders."""
    due_at = end_of_day(day.day, config.timezone)
    return Deadline(case_id=case_id, kind=kind, label=label, due_at=due_at, owner_role=owner_role,
                    remind_at=next_look(due_at, reminder_days, now, config.timezone, config.reminder_hour),
                    status=DeadlineStatus.PENDING.value, rolled_from=day.rolled_from,
                    reminder_days=sorted(reminder_days, reverse=True), created_at=now)


def reminder_moments(due_at: datetime, days_before, tz_name: str, hour: int) -> dict[int, datetime]:
    """Offset in days → the moment of that reminder: `hour` o'clock local time, n calendar days before the
    due day (DST-safe: 09:00 is 09:00 in winter and in summer)."""
    tz = ZoneInfo(tz_name)
    due_day: date = due_at.astimezone(tz).date()
    return {int(n): datetime.combine(due_day - timedelta(days=int(n)), time(hour), tzinfo=tz) for n in days_before}


def next_look(due_at: datetime, days_before, now: datetime, tz_name: str, hour: int) -> datetime:
    """The next moment the worker looks at a deadline (its `remind_at`): the earliest reminder still
    ahead of `now`, else the due moment itself."""
    ahead = sorted(m for m in reminder_moments(due_at, days_before, tz_name, hour).values() if m > now)
    return ahead[0].astimezone(due_at.tzinfo) if ahead else due_at


def is_late(deadline, now: datetime) -> bool:
    """Marked overdue by the sweep, or still waiting although its due moment has passed."""
    return deadline.status == DeadlineStatus.OVERDUE or (
        deadline.status in DEADLINE_WAITING and deadline.due_at < now)


def late(now: datetime):
    """`is_late` as a SQL condition on Deadline."""
    return or_(Deadline.status == DeadlineStatus.OVERDUE,
               and_(Deadline.status.in_(DEADLINE_WAITING), Deadline.due_at < now))


# -- the sweep ------------------------------------------------------------------------------


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


@dataclass
class _Plan:
    action: str  # "remind" | "overdue" | "move"
    status: str
    remind_at: datetime | None
    days_before: int | None = None
    skipped: tuple[int, ...] = ()


def _plan(row, engine, now: datetime) -> _Plan:
    if row.due_at <= now:
        return _Plan("overdue", DeadlineStatus.OVERDUE, None)
    tz, hour = engine.config.timezone, engine.config.reminder_hour
    moments = reminder_moments(row.due_at, row.reminder_days or [], tz, hour)
    passed = sorted((n for n, moment in moments.items() if moment <= now), reverse=True)
    following = next_look(row.due_at, row.reminder_days or [], now, tz, hour)
    if not passed:
        # remind_at pointed at no reminder that has come (e.g. the offsets changed): just move on.
        return _Plan("move", row.status, following)
    # A worker that was down for a while sends only the latest reminder that has come, not every one missed.
    return _Plan("remind", DeadlineStatus.REMINDED, following, days_before=passed[-1], skipped=tuple(passed[:-1]))


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


def _load_cases(session: Session, ids, *, lock: bool) -> dict[int, Case]:
    q = (select(Case).where(Case.id.in_(sorted(ids))).order_by(Case.id)
         .execution_options(populate_existing=True))
    if lock:
        q = q.with_for_update(of=Case, skip_locked=True)
    return {c.id: c for c in session.scalars(q).unique()}


# The database seam: how due rows are claimed, and their cases loaded, without two sweepers
# acting on one row. Everything after the claim is the same on both.

class _PostgresClaim:
    """Due rows FOR UPDATE SKIP LOCKED, then their cases FOR UPDATE SKIP LOCKED: a row whose case
    is busy waits for the next pass, so no sweeper waits for a lock while it holds one."""

    def claim(self, session: Session, engine, now: datetime, limit: int, result: SweepResult):
        rows = session.execute(due_query(now, limit).with_for_update(of=Deadline, skip_locked=True)).all()
        result.candidates = len(rows)
        if not rows:
            return [], {}
        cases = _load_cases(session, {r.case_id for r in rows}, lock=True)
        result.deferred += sum(r.case_id not in cases for r in rows)
        claimed = [(row, _plan(row, engine, now)) for row in rows if row.case_id in cases]
        if claimed:
            # The rows are locked: one round trip moves them all (the compare-and-set only confirms it).
            done = session.connection().execute(_CLAIM, [_claim_params(row, plan) for row, plan in claimed])
            if done.rowcount != len(claimed):
                raise VersionConflict("locked deadlines changed during the sweep", {})
        return claimed, cases


class _SQLiteClaim:
    """No row locks: each row is claimed with a compare-and-set on (status, remind_at). The first
    such UPDATE takes SQLite's single write lock, so the cases read after it stay current."""

    def claim(self, session: Session, engine, now: datetime, limit: int, result: SweepResult):
        rows = session.execute(due_query(now, limit)).all()
        result.candidates = len(rows)
        claimed = []
        for row in rows:
            plan = _plan(row, engine, now)
            if _claim(session, row, plan):
                claimed.append((row, plan))
            else:
                result.deferred += 1
        cases = _load_cases(session, {r.case_id for r, _ in claimed}, lock=False) if claimed else {}
        return claimed, cases


def _claimer(session: Session):
    return _PostgresClaim() if session.get_bind().dialect.name == "postgresql" else _SQLiteClaim()


@dataclass
class _Batch:
    """What one sweep writes, gathered while acting on the claimed rows and written together."""

    now: datetime
    result: SweepResult
    cases: dict[int, Case]
    heads: dict[int, int] = field(default_factory=dict)  # case id → audit_seq before this batch
    events: list = field(default_factory=list)
    outbox: list = field(default_factory=list)
    fires: list = field(default_factory=list)  # (case, definition, trigger, label, already counted)
    specs: dict = field(default_factory=dict)


def sweep(session: Session, engine, now: datetime, *, limit: int = BATCH) -> SweepResult:
    """Claim up to `limit` due deadlines and act on them in the caller's transaction (no commit).

    1. `claim` (the database seam, `_PostgresClaim` / `_SQLiteClaim`): the due rows, each moved on
       to its next status and `remind_at`, and their cases;
    2. `_remind` or `_overdue` for each claimed row: its audit event and outbox rows (a row
       that only moves on writes nothing);
    3. `_write`: each case's chain head by compare-and-set, the events, the outbox rows;
    4. `_escalate`: the automatic escalations an `on_overdue.fire` asks for, each in a savepoint.
    """
    result = SweepResult()
    claimed, cases = _claimer(session).claim(session, engine, now, limit, result)
    batch = _Batch(now=now, result=result, cases=cases)
    for row, plan in claimed:
        if plan.action == "move":
            result.moved += 1
        elif plan.action == "remind":
            _remind(session, engine, batch, row, plan)
        else:
            _overdue(session, engine, batch, row)
    _write(session, batch)
    _escalate(session, engine, batch)
    return result


def _spec(engine, case: Case, kind: str, cache: dict) -> tuple:
    key = (case.definition_id, kind, case.state)
    if key not in cache:
        definition = engine.definition(case.definition)
        cache[key] = (definition, definition.deadline_spec(kind, case.state))
    return cache[key]


def _recipients(session: Session, engine, definition, case: Case, to: str):
    """engine.recipients, plus `owner`: the owner role of the case's current level (ladders)."""
    if to == "owner":
        to = (definition.state(case.state).get("owner") if case.state in definition.state_names else None) or ""
        if not to:
            return []
    return engine.recipients(session, case, to)


@dataclass
class _Row:
    """A claimed deadline with what acting on it needs: its case, definition, spec and owners."""

    deadline: object
    case: Case
    definition: object
    spec: dict
    label: str
    label_en: str
    owners: list
    owner_keys: list

    def event_data(self) -> dict:
        d = self.deadline
        return {"deadline_id": d.id, "kind": d.kind, "label": self.label, "due_at": isoformat_utc(d.due_at),
                "owner_role": d.owner_role, "recipients": self.owner_keys}

    def mail(self, **extra) -> outbox.DeadlineMail:
        d = self.deadline
        return outbox.DeadlineMail(deadline_id=d.id, deadline_kind=d.kind, label=self.label, label_en=self.label_en,
                                   due_at=isoformat_utc(d.due_at), **extra)


def _prepare(session: Session, engine, batch: _Batch, row) -> _Row:
    case = batch.cases[row.case_id]
    definition, spec = _spec(engine, case, row.kind, batch.specs)
    label = row.label or spec.get("label") or row.kind
    owners = _recipients(session, engine, definition, case, row.owner_role)
    batch.heads.setdefault(case.id, case.audit_seq)
    return _Row(row, case, definition, spec, label, spec.get("label_en") or label, owners,
                [outbox.recipient_key(uid, address) for uid, address in owners])


def _message(key: str, r: _Row, seq: int, uid, address, role: str, kind: str, subject: str, now: datetime,
             mail: outbox.DeadlineMail, attachments=()) -> dict:
    return outbox.values(key=key[:outbox.KEY_MAX], case_id=r.case.id, seq=seq, uid=uid, address=address, role=role,
                         kind=kind, subject=subject, now=now, data=mail.as_data(), attachments=attachments)


def _remind(session: Session, engine, batch: _Batch, row, plan: _Plan) -> None:
    """A reminder to the owner, with the deadline as a calendar entry."""
    r = _prepare(session, engine, batch, row)
    data = {**r.event_data(), "days_before": plan.days_before}
    if plan.skipped:
        data["skipped_days_before"] = list(plan.skipped)
    event = _append(r.case, batch.now, "deadline_reminder", data)
    subject = engine.text("subject.deadline_reminder", label=r.label, due=_local(engine, row.due_at))
    mail = r.mail(days_before=plan.days_before)
    for (uid, address), who in zip(r.owners, r.owner_keys):
        batch.outbox.append(_message(
            f"deadline:{row.id}:reminder:{plan.days_before}:{who}:deadline_reminder", r, event.seq, uid, address,
            row.owner_role, "deadline_reminder", subject, batch.now, mail,
            [{"type": "ics", "deadline_id": row.id}]))
    batch.events.append(event)
    batch.result.reminded += 1


def _overdue(session: Session, engine, batch: _Batch, row) -> None:
    """The owner is told, and whoever the definition's `on_overdue` names; perhaps an escalation follows."""
    r = _prepare(session, engine, batch, row)
    on_overdue = r.spec.get("on_overdue") or {}
    told = [(entry, uid, address) for entry in on_overdue.get("notify") or []
            for uid, address in _recipients(session, engine, r.definition, r.case, entry["to"])]
    data = r.event_data()
    data["escalated_to"] = [f"{entry['to']}:{outbox.recipient_key(uid, address)}" for entry, uid, address in told]
    if on_overdue.get("fire"):
        data["fire"] = on_overdue["fire"]
    event = _append(r.case, batch.now, "deadline_overdue", data)
    subject = engine.text("subject.deadline_overdue", label=r.label, due=_local(engine, row.due_at))
    for (uid, address), who in zip(r.owners, r.owner_keys):
        batch.outbox.append(_message(
            f"deadline:{row.id}:overdue:{who}:deadline_overdue", r, event.seq, uid, address, row.owner_role,
            "deadline_overdue", subject, batch.now, r.mail()))
    for entry, uid, address in told:
        batch.outbox.append(_told(r, entry, uid, address, event.seq, batch.now))
    if not r.owners:
        log.warning("deadline %s of case %s is overdue and its owner (%s) has nobody to tell",
                    row.id, r.case.id, row.owner_role)
    batch.events.append(event)
    batch.result.overdue += 1
    batch.result.escalated += bool(told)
    if on_overdue.get("fire"):
        batch.fires.append((r.case, r.definition, on_overdue["fire"], r.label, bool(told)))


def _told(r: _Row, entry: dict, uid, address, seq: int, now: datetime) -> dict:
    """The message to someone `on_overdue.notify` names (e.g. the next level), in its own words."""
    case, definition = r.case, r.definition
    values = dict(title=case.title or definition.title, workflow=definition.title, case_id=case.id, deadline=r.label)
    values_en = {**values, "workflow": definition.title_en, "title": case.title or definition.title_en,
                 "deadline": r.label_en}
    mail = r.mail(subject_en=outbox.safe_format(entry.get("subject_en") or "", **values_en))
    key = f"deadline:{r.deadline.id}:overdue:{outbox.recipient_key(uid, address)}:{entry['kind']}"
    return _message(key, r, seq, uid, address, entry["to"], entry["kind"],
                    outbox.safe_format(entry["subject"], **values), now, mail)


def _local(engine, moment: datetime) -> datetime:
    return moment.astimezone(ZoneInfo(engine.config.timezone))


_C = Case.__table__
_HEAD = (update(_C).where(_C.c.id == bindparam("_id"), _C.c.audit_seq == bindparam("_old_seq"))
         .values(audit_seq=bindparam("_seq"), audit_head=bindparam("_head")))
_EVENT_COLUMNS = ("case_id", "seq", "at", "actor_id", "type", "trigger", "from_state", "to_state", "data",
                  "prev_hash", "hash")


def _append(case: Case, now: datetime, type_: str, data: dict):
    """The next event of the case's chain; the head is written once per case at the end of the batch."""
    event = audit.new_event(case, now, None, type_, data=data)
    set_committed_value(case, "audit_seq", event.seq)
    set_committed_value(case, "audit_head", event.hash)
    return event


def _write(session: Session, batch: _Batch) -> None:
    # One compare-and-set per case on its chain head: we hold its lock (PostgreSQL) or the
    # write lock (SQLite), so a failure here means a bug; raising rolls the whole batch back.
    conn = session.connection()
    cases = batch.cases
    if batch.heads:
        done = conn.execute(_HEAD, [{"_id": case_id, "_old_seq": seq_before, "_seq": cases[case_id].audit_seq,
                                     "_head": cases[case_id].audit_head}
                                    for case_id, seq_before in batch.heads.items()])
        if done.rowcount != len(batch.heads):
            raise VersionConflict("a case's audit chain moved during the sweep", {"case_ids": sorted(batch.heads)})
    if batch.events:
        conn.execute(AuditEvent.__table__.insert(),
                     [{c: getattr(e, c) for c in _EVENT_COLUMNS} for e in batch.events])
    outbox.insert_many(session, batch.outbox)


def _escalate(session: Session, engine, batch: _Batch) -> None:
    for case, definition, trigger, label, counted in batch.fires:
        if _fire(session, engine, definition, case, trigger, label, batch.now) and not counted:
            batch.result.escalated += 1


def _fire(session: Session, engine, definition, case: Case, trigger: str, label: str, now: datetime) -> int:
    """Automatic escalation (only where the definition or the region's override names `on_overdue.fire`).

    The transition runs as the system in a savepoint: when it is not possible now (the case
    moved on, a guard is unmet), it is skipped and logged; the overdue event stays.
    """
    actor = system_actor(definition, case, trigger, engine.text("escalation.actor"))
    try:
        with session.begin_nested():
            # At the sweep's moment (`traject sweep --now T` included), not the wall clock's.
            engine.at(now).fire(session, actor, case.id, trigger, case.version,
                                {"reason": engine.text("escalation.reason", label=label)})
    except Exception as exc:  # a domain refusal or a failed effect: the escalation waits for a person
        log.warning("automatic %s on case %s not possible: %s", trigger, case.id, exc)
        return 0
    return 1
