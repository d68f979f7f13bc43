"""The append-only, hash-chained audit trail: one chain per case.

hash(n) = sha256(hash(n-1) + canonical JSON of event n); the chain's head (seq and hash)
is kept on the case, so a truncated tail is detected as surely as an edited row.

The chain also vouches for what it describes. Verification replays the events: the case's
`state` is the last transition's `to_state`, its `version` is 1 + the number of transitions,
and its `data` hashes to the `case_data_sha256` the last opening or transition recorded (an
erasure event means `{}`); every signature row has its `document_signed` event and every
such event its row.

What the database alone cannot show — a tail cut off with the head rewound, a chain
recomputed after an edit, a whole case deleted — a **checkpoint** shows: the heads of every
chain, signed with HMAC-SHA256 under a key kept apart from the database, stored outside it
(docs/evidence.md). `compare_checkpoint` names what changed since.
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import datetime
from hashlib import sha256

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from .canonical import canonical_json, isoformat_utc, sha256_hex
from .errors import VersionConflict
from .models import AuditEvent, Case, Document, Signature

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
    case_id: int | None
    seq: int | None
    problem: str
    # What the break concerns beyond the chain ("case", "signature", "checkpoint") and its particulars,
    # e.g. {"signature_id": 7} or {"checkpoint_seq": 9}; added to the JSON of `traject audit verify`.
    detail: dict = field(default_factory=dict)

    def __str__(self) -> str:
        if self.case_id is None:
            return self.problem
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


# -- the case row and the signatures, replayed from the chain ------------------------------------

# The events that move a case (and only they): the opening and the transitions (engine/commands.py).
STATE_TYPES = ("opened", "transition")
SIGNED_TYPE = "document_signed"
# In an opening's or a transition's data: sha256 of the canonical JSON of the case's data after it.
CASE_DATA_KEY = "case_data_sha256"


def case_data_hash(data) -> str:
    return sha256_hex(canonical_json(data or {}))


def _check_case_row(case_id: int, state: str, version: int, data, events) -> Break | None:
    """Does the case row say what its (intact) chain says? Events written before the data hash was
    recorded leave the data unchecked until the next transition records it."""
    expected_state = state_seq = None
    transitions = 0
    data_hash = data_seq = None
    for ev in events:
        if ev.type in STATE_TYPES:
            expected_state, state_seq = ev.to_state, ev.seq
            transitions += ev.type == "transition"
            data_hash, data_seq = (ev.data or {}).get(CASE_DATA_KEY), ev.seq
        elif ev.type in ERASURE_TYPES:
            # Retention empties the data in the transaction that appends this event (engine/privacy.py).
            data_hash, data_seq = case_data_hash({}), ev.seq
    if state_seq is None:
        return None  # no opening: the chain check has said what is wrong
    if state != expected_state:
        return Break(case_id, state_seq, f"the case is in state {state!r} but its events leave it in "
                     f"{expected_state!r} (case row edited)", {"item": "case", "state": state,
                                                             "expected_state": expected_state})
    if version != 1 + transitions:
        return Break(case_id, state_seq, f"the case is at version {version} but its events make it "
                     f"{1 + transitions} (case row edited)", {"item": "case", "version": version,
                                                            "expected_version": 1 + transitions})
    if data_hash is not None and case_data_hash(data) != data_hash:
        return Break(case_id, data_seq, f"the case's data is not what event {data_seq} recorded (case row edited)",
                     {"item": "case", "data_sha256": case_data_hash(data), "expected_data_sha256": data_hash})
    return None


def _check_signatures(case_id: int, events, signatures) -> Break | None:
    """Every signature row of the case's documents against the `document_signed` events, one to one.

    `signatures`: (id, document_id, signer_id, verdict, document_sha256, signed_at) rows. Retention
    clears the subject from both sides alike and keeps the references (KEPT_KEYS)."""
    def key(document_id, signer_id, verdict, sha, at):
        return (document_id, signer_id, verdict, sha, isoformat_utc(at))

    rows: dict[tuple, list[int]] = {}
    for sig in signatures:
        rows.setdefault(key(*sig[1:]), []).append(sig[0])
    for ev in events:
        if ev.type != SIGNED_TYPE:
            continue
        d = ev.data or {}
        k = key(d.get("document_id"), ev.actor_id, d.get("verdict"), d.get("sha256"), ev.at)
        if rows.get(k):
            rows[k].pop(0)
        else:
            return Break(case_id, ev.seq, f"event {ev.seq} records a signature of document {d.get('document_id')} "
                         "that has no signature row (deleted or changed)",
                         {"item": "signature", "document_id": d.get("document_id")})
    extra = sorted(i for ids in rows.values() for i in ids)
    if extra:
        sig = next(s for s in signatures if s[0] == extra[0])
        return Break(case_id, None, f"signature {sig[0]} of document {sig[1]} has no document_signed event "
                     "(inserted or changed)", {"item": "signature", "signature_id": sig[0], "document_id": sig[1]})
    return None


def check_case(case: Case, events) -> Break | None:
    """One case's chain and row, from its events in seq order (loaded by the caller, e.g. under a lock)."""
    return (_verify_chain(case.id, case.audit_seq, case.audit_head, events)
            or _check_case_row(case.id, case.state, case.version, case.data, events))


def consistent_reads(session: Session) -> None:
    """A scan reads cases, events and signatures in separate statements: in one snapshot, so that a
    transition committed meanwhile is not taken for a break. The caller ends the transaction before
    it writes. On PostgreSQL only a transaction that has not begun can still choose its isolation."""
    plain = session() if callable(session) else session  # a scoped_session hands out the real one
    began = plain.in_transaction()
    conn = session.connection()
    if conn.dialect.name == "postgresql" and not began:
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    elif conn.dialect.name == "sqlite" and not conn.connection.dbapi_connection.in_transaction:
        # pysqlite opens no transaction for a SELECT: without BEGIN each statement sees the newest commit.
        conn.exec_driver_sql("BEGIN")


def _scan(session: Session, case_id: int | None, batch: int, first_only: bool):
    """Walk the chains: yields (cases checked so far, events checked so far, a break or None)."""
    consistent_reads(session)
    cases_q = (select(Case.id, Case.audit_seq, Case.audit_head, Case.state, Case.version, Case.data)
               .order_by(Case.id))
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
        signatures_by_case: dict[int, list] = {i: [] for i in ids}
        for row in session.execute(
            select(Document.case_id, Signature.id, Signature.document_id, Signature.signer_id, Signature.verdict,
                   Signature.document_sha256, Signature.signed_at)
            .join(Document, Document.id == Signature.document_id)
            .where(Document.case_id.in_(ids)).order_by(Signature.id)
        ):
            signatures_by_case[row[0]].append(tuple(row[1:]))
        for h in heads:
            events = events_by_case[h.id]
            n_cases += 1
            n_events += len(events)
            problem = (_verify_chain(h.id, h.audit_seq, h.audit_head, events)
                       or _check_case_row(h.id, h.state, h.version, h.data, events)
                       or _check_signatures(h.id, events, signatures_by_case[h.id]))
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


def _first(breaks: list[Break]) -> Break | None:
    # By case; within a case the checkpoint's finding first: it explains what the database alone shows.
    return min(breaks, key=lambda b: (b.case_id is not None, b.case_id or 0,
                                      b.detail.get("item") != "checkpoint")) if breaks else None


def verify(session: Session, case_id: int | None = None, batch: int = 500,
           checkpoint: dict | None = None) -> tuple[int, int, Break | None]:
    """Verify one case or every case (and, given a checkpoint whose HMAC was checked, against it);
    returns (cases checked, events checked, first break or None)."""
    found = []
    n_cases = n_events = 0
    for n_cases, n_events, problem in _scan(session, case_id, batch, first_only=True):
        if problem is not None:
            found.append(problem)
            break
    if checkpoint is not None:
        found += compare_checkpoint(session, checkpoint, case_id, batch, first_only=True)
    return n_cases, n_events, _first(found)


def find_breaks(session: Session, batch: int = 500, checkpoint: dict | None = None) -> tuple[int, int, list[Break]]:
    """Every broken chain (the first break of each), for the worker's daily check."""
    found: list[Break] = []
    n_cases = n_events = 0
    for n_cases, n_events, problem in _scan(session, None, batch, first_only=False):
        if problem is not None:
            found.append(problem)
    if checkpoint is not None:
        known = {b.case_id for b in found}
        found += [b for b in compare_checkpoint(session, checkpoint, None, batch, first_only=False)
                  if b.case_id not in known or b.case_id is None]
        found.sort(key=lambda b: (b.case_id is not None, b.case_id or 0))
    return n_cases, n_events, found


# -- checkpoints: the heads of every chain, signed, kept outside the database ---------------------------

CHECKPOINT_FORMAT = "traject-audit-checkpoint/1"


def key_id(key: bytes) -> str:
    """Names the key a checkpoint was signed with, without giving it away."""
    return hmac.new(key, b"traject-audit-key-id", sha256).hexdigest()[:16]


def checkpoint_payload(session: Session, now: datetime) -> dict:
    """(case_id, audit_seq, head hash) of every case, and their number: one statement, one snapshot."""
    heads = [[cid, seq, head] for cid, seq, head in
             session.execute(select(Case.id, Case.audit_seq, Case.audit_head).order_by(Case.id))]
    return {"format": CHECKPOINT_FORMAT, "created_at": isoformat_utc(now), "cases": len(heads), "heads": heads}


def _mac(body: dict, key: bytes) -> str:
    unsigned = {k: v for k, v in body.items() if k != "hmac"}
    return hmac.new(key, canonical_json(unsigned).encode("utf-8"), sha256).hexdigest()


def sign_checkpoint(payload: dict, key: bytes) -> dict:
    body = {**payload, "key_id": key_id(key)}
    return {**body, "hmac": _mac(body, key)}


def checkpoint_problem(checkpoint, key: bytes) -> str | None:
    """None when the checkpoint is well formed and its HMAC is right under `key`; else what is wrong."""
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        return "not a Traject audit checkpoint"
    if not hmac.compare_digest(str(checkpoint.get("hmac", "")), _mac(checkpoint, key)):
        if checkpoint.get("key_id") != key_id(key):
            return "its HMAC does not match: signed with another key (or its key_id was altered)"
        return "its HMAC does not match: the checkpoint was altered"
    heads = checkpoint.get("heads")
    if not isinstance(heads, list) or checkpoint.get("cases") != len(heads) or not all(
            isinstance(h, list) and len(h) == 3 and isinstance(h[0], int) and isinstance(h[1], int) for h in heads):
        return "its list of heads is malformed"
    return None


def compare_checkpoint(session: Session, checkpoint: dict, case_id: int | None = None, batch: int = 500,
                       first_only: bool = False) -> list[Break]:
    """What changed, since a (verified) checkpoint, in a way an intact-looking chain cannot show: a case
    deleted, a tail cut off with the head rewound, a chain rewritten up to or beyond the recorded head.
    Growth since the checkpoint is normal: only the event at the recorded seq is compared."""
    at = checkpoint["created_at"]
    entries = [h for h in checkpoint["heads"] if case_id is None or h[0] == case_id]
    found: list[Break] = []
    for i in range(0, len(entries), batch):
        chunk = entries[i:i + batch]
        now = {cid: (seq, head) for cid, seq, head in session.execute(
            select(Case.id, Case.audit_seq, Case.audit_head).where(Case.id.in_([h[0] for h in chunk])))}
        pairs = [(cid, seq) for cid, seq, _ in chunk if cid in now and now[cid][0] > seq > 0]
        hashes = {}
        if pairs:
            hashes = {(c, q): h for c, q, h in session.execute(
                select(AuditEvent.case_id, AuditEvent.seq, AuditEvent.hash)
                .where(tuple_(AuditEvent.case_id, AuditEvent.seq).in_(pairs)))}
        for cid, seq, head in chunk:
            detail = {"item": "checkpoint", "checkpoint": at, "checkpoint_seq": seq, "checkpoint_hash": head}
            if cid not in now:
                found.append(Break(cid, seq, f"the case is missing: the checkpoint of {at} recorded it with "
                                   f"head seq {seq} (case deleted)", detail))
            elif now[cid][0] < seq:
                found.append(Break(cid, now[cid][0] + 1, f"the chain ends at seq {now[cid][0]} but the checkpoint "
                                   f"of {at} recorded head seq {seq} (tail cut off, head rewound)", detail))
            elif seq > 0 and (now[cid][1] if now[cid][0] == seq else hashes.get((cid, seq))) != head:
                found.append(Break(cid, seq, f"event {seq} does not have the hash the checkpoint of {at} recorded: "
                                   f"the chain was rewritten at or before it (recomputed)", detail))
            else:
                continue
            if first_only:
                return found
    return found
