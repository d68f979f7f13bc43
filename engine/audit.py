"""The append-only, hash-chained audit trail: one chain per case.

hash(n) = sha256(hash(n-1) + canonical JSON of event n); the chain's head (seq and hash)
is kept on the case, so a truncated tail is detected as surely as an edited row.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from .canonical import canonical_json, isoformat_utc, sha256_hex
from .errors import VersionConflict
from .models import AuditEvent, Case

GENESIS = "0" * 64


def event_hash(prev_hash: str, case_id: int, seq: int, at: datetime, actor_id, type_: str, trigger, from_state,
               to_state, data: dict) -> str:
    body = {
        "case_id": case_id,
        "seq": seq,
        "at": isoformat_utc(at),
        "actor_id": actor_id,
        "type": type_,
        "trigger": trigger,
        "from_state": from_state,
        "to_state": to_state,
        "data": data,
    }
    return sha256_hex(prev_hash + canonical_json(body))


def _recompute(ev: AuditEvent) -> str:
    return event_hash(ev.prev_hash, ev.case_id, ev.seq, ev.at, ev.actor_id, ev.type, ev.trigger, ev.from_state,
                      ev.to_state, ev.data or {})


def new_event(case: Case, at: datetime, actor_id, type_: str, *, trigger=None, from_state=None, to_state=None,
              data=None) -> AuditEvent:
    """Build the next event of the case's chain (not yet added to the session)."""
    seq = case.audit_seq + 1
    prev = case.audit_head or GENESIS
    data = data or {}
    h = event_hash(prev, case.id, seq, at, actor_id, type_, trigger, from_state, to_state, data)
    return AuditEvent(case_id=case.id, seq=seq, at=at, actor_id=actor_id, type=type_, trigger=trigger,
                      from_state=from_state, to_state=to_state, data=data, prev_hash=prev, hash=h)


def append_only_event(session: Session, case: Case, event: AuditEvent, now: datetime) -> None:
    """Append an event that is not a transition: advance the head with a compare-and-set."""
    result = session.execute(
        update(Case)
        .where(Case.id == case.id, Case.audit_seq == case.audit_seq)
        .values(audit_seq=event.seq, audit_head=event.hash, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise VersionConflict("the case changed meanwhile; reload and try again", {"case_id": case.id})
    set_committed_value(case, "audit_seq", event.seq)
    set_committed_value(case, "audit_head", event.hash)
    set_committed_value(case, "updated_at", now)
    session.add(event)


@dataclass
class Break:
    case_id: int
    seq: int | None
    problem: str

    def __str__(self) -> str:
        where = f"case {self.case_id}" + (f", event {self.seq}" if self.seq is not None else "")
        return f"{where}: {self.problem}"


def _verify_chain(case_id: int, head_seq: int, head_hash: str, events) -> Break | None:
    expected_prev, expected_seq = GENESIS, 1
    for ev in events:
        if ev.seq != expected_seq:
            problem = "an event is missing" if ev.seq > expected_seq else "events are out of order or duplicated"
            return Break(case_id, ev.seq, f"{problem} (expected seq {expected_seq})")
        if ev.prev_hash != expected_prev:
            return Break(case_id, ev.seq, "prev_hash does not match the previous event's hash (inserted or reordered)")
        if _recompute(ev) != ev.hash:
            return Break(case_id, ev.seq, "content does not match its hash (changed)")
        expected_prev, expected_seq = ev.hash, expected_seq + 1
    if expected_seq - 1 != head_seq or (head_seq and expected_prev != head_hash):
        return Break(case_id, None if expected_seq == 1 else expected_seq - 1,
                     f"the chain ends at seq {expected_seq - 1} but the case records head seq {head_seq}"
                     " (events deleted or appended)")
    return None


def verify(session: Session, case_id: int | None = None, batch: int = 500) -> tuple[int, int, Break | None]:
    """Verify one case or every case; returns (cases checked, events checked, first break or None)."""
    cases_q = select(Case.id, Case.audit_seq, Case.audit_head).order_by(Case.id)
    if case_id is not None:
        cases_q = cases_q.where(Case.id == case_id)
    n_cases = n_events = 0
    last_id = None
    while True:
        q = cases_q.limit(batch)
        if last_id is not None:
            q = q.where(Case.id > last_id)
        heads = session.execute(q).all()
        if not heads:
            break
        ids = [h.id for h in heads]
        events_by_case: dict[int, list] = {i: [] for i in ids}
        for ev in session.scalars(
            select(AuditEvent).where(AuditEvent.case_id.in_(ids)).order_by(AuditEvent.case_id, AuditEvent.seq)
        ):
            events_by_case[ev.case_id].append(ev)
        for h in heads:
            events = events_by_case[h.id]
            n_cases += 1
            n_events += len(events)
            problem = _verify_chain(h.id, h.audit_seq, h.audit_head, events)
            if problem:
                return n_cases, n_events, problem
        session.expunge_all()
        last_id = ids[-1]
    # Events whose case row is gone or never existed are a break too.
    orphan = session.execute(
        select(AuditEvent.case_id, AuditEvent.seq).outerjoin(Case, Case.id == AuditEvent.case_id)
        .where(Case.id.is_(None)).limit(1)
    ).first()
    if orphan and case_id is None:
        return n_cases, n_events, Break(orphan.case_id, orphan.seq, "event of a case that does not exist")
    return n_cases, n_events, None
