"""The append-only, hash-chained audit trail: one chain per case.

hash(n) = sha256(hash(n-1) + canonical JSON of event n); the chain's head (seq and hash)
is kept on the case, so a truncated tail is detected as surely as an edited row.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
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


# -- redaction: erasure keeps the chain verifiable -------------------------------------------
#
# Retention (engine/privacy.py) may replace an event's `data` by a marker and clear its
# `actor_id`. The row keeps its `hash` and `prev_hash`, so the chain still links. The
# erasure event appended in the same transaction commits, for every redacted event, to
# (seq, the original hash, the hash of the redacted form); verify accepts a redacted event
# exactly when its stored hash is the committed original and its present content hashes to
# the committed redacted form. Forging a redaction means changing the erasure event, which
# breaks the chain there. The marker keeps sha256(canonical JSON of the original data), so a
# copy made before the erasure (a dossier) can still be matched against the trail.

ERASURE_TYPES = ("pseudonymised", "erased")
# The outbox kind of the daily check's alert to the admins (web/privacy_jobs.py); retention keeps these.
BREAK_ALERT_KIND = "audit_chain_broken"
# What a redacted event keeps of its data: references and hashes, never free text.
KEPT_KEYS = ("document_id", "kind", "version", "sha256", "verdict", "deadline_id", "hold_id")


def redacted_data(data: dict) -> dict:
    data = data or {}
    if data.get("redacted"):
        return dict(data)  # already redacted (a second stage): the original's hash is kept as it was
    kept = {k: data[k] for k in KEPT_KEYS if k in data and not isinstance(data[k], (dict, list))}
    return {**kept, "redacted": True, "data_sha256": sha256_hex(canonical_json(data))}


def content_hash(ev: AuditEvent) -> str:
    """The hash the event's present content gives (equal to `hash` unless it was redacted)."""
    return _recompute(ev)


def _commitments(events) -> dict[int, tuple[int, str, str]]:
    """seq -> (erasure seq, original hash, redacted hash), the latest erasure winning."""
    out: dict[int, tuple[int, str, str]] = {}
    for ev in events:
        if ev.type in ERASURE_TYPES:
            for entry in (ev.data or {}).get("redactions") or []:
                try:
                    seq, original, redacted = int(entry[0]), str(entry[1]), str(entry[2])
                except (TypeError, ValueError, IndexError):
                    continue
                if seq < ev.seq:
                    out[seq] = (ev.seq, original, redacted)
    return out


def _verify_chain(case_id: int, head_seq: int, head_hash: str, events) -> Break | None:
    expected_prev, expected_seq = GENESIS, 1
    commitments = None
    for ev in events:
        if ev.seq != expected_seq:
            problem = "an event is missing" if ev.seq > expected_seq else "events are out of order or duplicated"
            return Break(case_id, ev.seq, f"{problem} (expected seq {expected_seq})")
        if ev.prev_hash != expected_prev:
            return Break(case_id, ev.seq, "prev_hash does not match the previous event's hash (inserted or reordered)")
        present = _recompute(ev)
        if present != ev.hash:
            if commitments is None:
                commitments = _commitments(events)
            committed = commitments.get(ev.seq)
            if not (committed and committed[1] == ev.hash and committed[2] == present):
                return Break(case_id, ev.seq, "content does not match its hash (changed)")
        expected_prev, expected_seq = ev.hash, expected_seq + 1
    if expected_seq - 1 != head_seq or (head_seq and expected_prev != head_hash):
        return Break(case_id, None if expected_seq == 1 else expected_seq - 1,
                     f"the chain ends at seq {expected_seq - 1} but the case records head seq {head_seq}"
                     " (events deleted or appended)")
    return None


def check_case(case: Case, events) -> Break | None:
    """One case's chain, from its events in seq order (loaded by the caller, e.g. under a lock)."""
    return _verify_chain(case.id, case.audit_seq, case.audit_head, events)


def _scan(session: Session, case_id: int | None, batch: int, first_only: bool):
    """Walk the chains: yields (cases checked so far, events checked so far, a break or None)."""
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
                yield n_cases, n_events, problem
                if first_only:
                    return
        session.expunge_all()
        last_id = ids[-1]
    # Events whose case row is gone or never existed are a break too.
    if case_id is None:
        q = (select(AuditEvent.case_id, func.min(AuditEvent.seq)).outerjoin(Case, Case.id == AuditEvent.case_id)
             .where(Case.id.is_(None)).group_by(AuditEvent.case_id).order_by(AuditEvent.case_id))
        for orphan_case, orphan_seq in session.execute(q.limit(1) if first_only else q):
            yield n_cases, n_events, Break(orphan_case, orphan_seq, "event of a case that does not exist")
            if first_only:
                return
    yield n_cases, n_events, None


def verify(session: Session, case_id: int | None = None, batch: int = 500) -> tuple[int, int, Break | None]:
    """Verify one case or every case; returns (cases checked, events checked, first break or None)."""
    for n_cases, n_events, problem in _scan(session, case_id, batch, first_only=True):
        if problem is not None:
            return n_cases, n_events, problem
    return n_cases, n_events, None


def find_breaks(session: Session, batch: int = 500) -> tuple[int, int, list[Break]]:
    """Every broken chain (the first break of each), for the worker's daily check."""
    found: list[Break] = []
    n_cases = n_events = 0
    for n_cases, n_events, problem in _scan(session, None, batch, first_only=False):
        if problem is not None:
            found.append(problem)
    return n_cases, n_events, found
