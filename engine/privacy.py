"""Privacy (AVG/GDPR): retention per workflow, legal holds, and redaction that keeps the evidence.

Retention (configured per workflow in the region configuration, `retention:`; docs/privacy.md
explains the proposal) turns a closed case, a configured time after closing, into

- **pseudonymised**: the subject is unlinked everywhere (case, audit events, signatures,
  documents' signers, notifications, their own reads) and replaced by a keyed pseudonym kept
  on `case_retention`; free text is removed (title, data, document content, signature comments,
  the events' input, deadline labels, message texts); the skeleton stays: workflow,
  institution, states and moments, who acted in their role, and every hash.
- **erased**: as pseudonymised, without the pseudonym, and the case's messages and access log
  are deleted. Nothing of the case then points to a person.

Both keep the audit chain verifiable: each redacted event keeps its hash and links, and the
`pseudonymised` / `erased` event appended to the chain commits to the hash of every redacted
event's original and redacted form (engine/audit.py). Documents keep their sha256,
signatures their document_sha256. On PostgreSQL the guard triggers admit exactly these
changes, and only in a transaction that declared them (SET LOCAL traject.redaction = 'on').

A case waits (legal hold) while an admin's hold is in force on it or on a linked case, while
a linked case (parent, child: a dispute about a GBT decision) is still open, or until every
linked case is due as well: a family of cases is pseudonymised or erased together.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from datetime import datetime

from dateutil.relativedelta import relativedelta
from sqlalchemy import and_, delete, or_, select, text, update
from sqlalchemy.orm import Session

from . import audit
from .canonical import isoformat_utc
from .errors import Forbidden, NotFound, ValidationError
from .models import (
    AccessLog,
    CaseNote,
    AuditEvent,
    Case,
    CaseExclusion,
    CaseRetention,
    Deadline,
    Document,
    LegalHold,
    Notification,
    RetentionAction,
    Signature,
)
from .scope import Actor

log = logging.getLogger(__name__)

STAGES = {"pseudonymise": RetentionAction.PSEUDONYMISED, "erase": RetentionAction.ERASED}
RANK = {None: 0, RetentionAction.PSEUDONYMISED: 1, RetentionAction.ERASED: 2}
TERM_UNITS = ("years", "months", "days")
REDACTED_TEXT = ""
MAX_REASON = 2000


# -- configuration --------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """Retention of one workflow: after how long (from closing) to pseudonymise and/or erase."""

    workflow: str
    terms: tuple[tuple[str, tuple[tuple[str, int], ...]], ...]  # ((stage, ((unit, n), ...)), ...)

    def term(self, stage: str) -> relativedelta | None:
        for name, parts in self.terms:
            if name == stage:
                return relativedelta(**dict(parts))
        return None

    def due_at(self, stage: str, closed_at: datetime) -> datetime | None:
        term = self.term(stage)
        return closed_at + term if term is not None else None

    def stage_due(self, closed_at: datetime, now: datetime) -> str | None:
        """The furthest stage due at `now` for a case closed at `closed_at`."""
        best = None
        for name, _ in self.terms:
            due = self.due_at(name, closed_at)
            if due is not None and due <= now and RANK[name] > RANK[best]:
                best = name
        return best

    def shortest(self, now: datetime) -> datetime:
        """Cases closed after this moment are due for nothing yet."""
        return max(now - self.term(name) for name, _ in self.terms)

    def describe(self) -> dict:
        return {"workflow": self.workflow,
                **{{stage: verb for verb, stage in STAGES.items()}[name]: dict(parts)
                   for name, parts in self.terms}}


def load_policies(region: dict | None, workflows: set[str] | None = None) -> dict[str, Policy]:
    """The `retention:` section of the region configuration, validated (a mistake stops the start)."""
    section = (region or {}).get("retention") or {}
    if not isinstance(section, dict):
        raise ValueError("retention: must map a workflow to {pseudonymise: {years: n}, erase: {...}}")
    policies = {}
    for key, spec in section.items():
        where = f"retention.{key}"
        if workflows is not None and key not in workflows:
            raise ValueError(f"{where}: no workflow {key!r}")
        if not isinstance(spec, dict) or not spec or set(spec) - set(STAGES):
            raise ValueError(f"{where}: expected pseudonymise and/or erase, each a term like {{years: 2}}")
        terms = []
        for verb, term in spec.items():
            if not isinstance(term, dict) or not term or set(term) - set(TERM_UNITS) or not all(
                    isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in term.values()):
                raise ValueError(f"{where}.{verb}: a term of years, months and/or days (whole numbers >= 0)")
            terms.append((STAGES[verb], tuple(sorted(term.items()))))
        policy = Policy(key, tuple(sorted(terms, key=lambda t: RANK[t[0]])))
        reference = datetime(2000, 1, 1)
        pseudo, erase = policy.term(RetentionAction.PSEUDONYMISED), policy.term(RetentionAction.ERASED)
        if pseudo is not None and erase is not None and reference + erase < reference + pseudo:
            raise ValueError(f"{where}: erase must not come before pseudonymise")
        policies[key] = policy
    return policies


def pseudonym(key: bytes, user_id: int) -> str:
    """A keyed hash of a user id: the same person gets the same pseudonym; without the key, no way back."""
    return hmac.new(key, f"traject-subject:{user_id}".encode(), hashlib.sha256).hexdigest()[:32]


# -- legal holds ------------------------------------------------------------------------------


def _admin(actor: Actor) -> None:
    if not actor.has_role("admin"):
        raise Forbidden("only an administrator places or lifts a legal hold", {"allowed_roles": ["admin"]})


def _reason(reason) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError("a reason is required", {"reason": ["required"]})
    if len(reason) > MAX_REASON:
        raise ValidationError("the reason is too long", {"reason": [f"at most {MAX_REASON} characters"]})
    return reason.strip()


def place_hold(session: Session, engine, actor: Actor, case_id: int, reason, now: datetime) -> LegalHold:
    """An admin's legal hold: retention leaves the case (and its linked cases) alone until it is lifted."""
    _admin(actor)
    reason = _reason(reason)
    case = engine.get_case(session, actor, case_id)
    hold = LegalHold(case_id=case.id, reason=reason, placed_by_id=actor.id, placed_at=now)
    session.add(hold)
    session.flush()
    event = audit.new_event(case, now, actor.id, "legal_hold_placed", data={"hold_id": hold.id, "reason": reason})
    audit.append_only_event(session, case, event, now)
    return hold


def lift_hold(session: Session, engine, actor: Actor, hold_id: int, reason, now: datetime) -> LegalHold:
    _admin(actor)
    reason = _reason(reason)
    hold = session.get(LegalHold, hold_id)
    if hold is None:
        raise NotFound("legal hold not found", {"hold_id": hold_id})
    case = engine.get_case(session, actor, hold.case_id)
    if hold.lifted_at is not None:
        raise ValidationError("this legal hold was lifted already", {"hold_id": [f"lifted at {hold.lifted_at}"]})
    hold.lifted_at, hold.lifted_by_id, hold.lift_reason = now, actor.id, reason
    event = audit.new_event(case, now, actor.id, "legal_hold_lifted", data={"hold_id": hold.id, "reason": reason})
    audit.append_only_event(session, case, event, now)
    return hold


def holds(session: Session, case_id: int | None = None, active_only: bool = False) -> list[LegalHold]:
    q = select(LegalHold).order_by(LegalHold.id)
    if case_id is not None:
        q = q.where(LegalHold.case_id == case_id)
    if active_only:
        q = q.where(LegalHold.lifted_at.is_(None))
    return list(session.scalars(q))


def hold_out(hold: LegalHold) -> dict:
    return {"id": hold.id, "case_id": hold.case_id, "reason": hold.reason, "placed_by": hold.placed_by_id,
            "placed_at": hold.placed_at, "lifted_at": hold.lifted_at, "lifted_by": hold.lifted_by_id,
            "lift_reason": hold.lift_reason, "active": hold.lifted_at is None}


# -- retention --------------------------------------------------------------------------------


class RetentionRefused(RuntimeError):
    pass


@dataclass
class Decision:
    case_id: int
    workflow: str
    stage: str | None  # what is due now (None: nothing)
    done: str | None  # what was done before
    held: list[str] = field(default_factory=list)  # why it waits


@dataclass
class RetentionResult:
    pseudonymised: list[int] = field(default_factory=list)
    erased: list[int] = field(default_factory=list)
    held: dict[int, list[str]] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)

    def summary(self) -> dict:
        return {"pseudonymised": self.pseudonymised, "erased": self.erased,
                "held": {str(k): v for k, v in sorted(self.held.items())},
                "failed": {str(k): v for k, v in sorted(self.failed.items())}}


def _family(session: Session, case_ids: set[int]) -> tuple[dict[int, int], dict[int, tuple]]:
    """Connected components over parent links: case id -> component root, and each member's row."""
    rows: dict[int, tuple] = {}
    queried: set[int] = set()
    frontier = set(case_ids)
    while frontier:
        queried |= frontier
        found = session.execute(
            select(Case.id, Case.parent_id, Case.workflow_key, Case.closed_at)
            .where(or_(Case.id.in_(frontier), Case.parent_id.in_(frontier)))).all()
        for row in found:
            rows.setdefault(row.id, (row.parent_id, row.workflow_key, row.closed_at))
        frontier = ({row.id for row in found} | {row.parent_id for row in found if row.parent_id}) - queried
    parent = {i: i for i in rows}

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, (p, _, _) in rows.items():
        if p in rows:
            parent[root(i)] = root(p)
    return {i: root(i) for i in rows}, rows


def plan(session: Session, policies: dict[str, Policy], now: datetime, case_ids=None) -> list[Decision]:
    """What retention would do now, case by case, with the reasons a case waits."""
    if not policies:
        return []
    due_closed = or_(*(and_(Case.workflow_key == key, Case.closed_at <= p.shortest(now))
                       for key, p in policies.items()))
    q = (select(Case.id, Case.workflow_key, Case.closed_at, CaseRetention.action)
         .outerjoin(CaseRetention, CaseRetention.case_id == Case.id)
         .where(Case.closed_at.is_not(None), due_closed,
                or_(CaseRetention.action.is_(None), CaseRetention.action != RetentionAction.ERASED))  # erased: done for good
         .order_by(Case.id))
    if case_ids is not None:
        q = q.where(Case.id.in_(list(case_ids)))
    candidates = []
    for cid, key, closed_at, done in session.execute(q):
        stage = policies[key].stage_due(closed_at, now)
        if stage is not None and RANK[stage] > RANK[done]:
            candidates.append(Decision(cid, key, stage, done))
    if not candidates:
        return []
    roots, rows = _family(session, {d.case_id for d in candidates})
    members: dict[int, list[int]] = {}
    for cid, r in roots.items():
        members.setdefault(r, []).append(cid)
    active = {}
    for hold in session.scalars(select(LegalHold).where(LegalHold.lifted_at.is_(None),
                                                        LegalHold.case_id.in_(list(rows)))):
        active.setdefault(hold.case_id, []).append(hold)
    for d in candidates:
        for other in sorted(members[roots[d.case_id]]):
            _parent, key, closed_at = rows[other]
            mark = "this case" if other == d.case_id else f"linked case {other}"
            for hold in active.get(other, []):
                d.held.append(f"legal hold {hold.id} on {mark}: {hold.reason}")
            if other == d.case_id:
                continue
            if closed_at is None:
                d.held.append(f"{mark} ({key}) is still open")
                continue
            policy = policies.get(key)
            due = policy.due_at(d.stage, closed_at) if policy else None
            if due is not None and due > now:
                d.held.append(f"{mark} ({key}) is kept until {isoformat_utc(due)}")
    return candidates


def record(result: RetentionResult, decision: Decision) -> None:
    """Count a case that was (or, in a dry run, would be) pseudonymised or erased."""
    (result.erased if decision.stage == RetentionAction.ERASED else result.pseudonymised).append(decision.case_id)


def declare_redaction(session: Session) -> None:
    """Tell PostgreSQL's guard triggers that this transaction redacts (no effect on SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT set_config('traject.redaction', 'on', true)"))


def redact_case(session: Session, policies: dict[str, Policy], case_id: int, stage: str, now: datetime,
                key: bytes) -> bool:
    """Pseudonymise or erase one case inside the caller's transaction; False when it is no longer due.

    The caller owns the transaction (one per case: web/privacy_jobs.py). The steps:
    1. `_lock_if_due`: the case under its lock, if the stage is still due and nothing holds it;
    2. `_verified_events`: its audit chain, which must verify (RetentionRefused otherwise);
    3. `_redact_events`: each event's data and the subject as actor, hashes and links kept;
    4. `_redact_documents`: content, the subject as signer, signature comments; sha256 kept;
    5. `_redact_rows`: deadline labels, exclusions, messages and reads of the case;
    6. `_record`: the case's own fields, the `pseudonymised`/`erased` event, `case_retention`.
    """
    locked = _lock_if_due(session, policies, case_id, stage, now)
    if locked is None:
        return False
    case, done = locked
    events = _verified_events(session, case)
    declare_redaction(session)
    subject = case.subject_id  # None after pseudonymisation: unlinked then
    redactions = _redact_events(events, subject)
    documents = _redact_documents(session, case, subject)
    session.flush()
    _redact_rows(session, case, stage, subject)
    _record(session, policies[case.workflow_key], case, done, stage, now, key, subject, redactions, documents)
    session.flush()
    log.info("retention: case %s %s (%d events redacted)", case.id, stage, len(redactions))
    return True


def _lock_if_due(session: Session, policies, case_id: int, stage: str, now: datetime):
    case = session.scalars(select(Case).where(Case.id == case_id).with_for_update(of=Case)).unique().one()
    done = session.get(CaseRetention, case_id)
    if case.closed_at is None or RANK[stage] <= RANK[done.action if done else None]:
        return None
    # Under the case's lock: a hold placed (or a linked case reopened) meanwhile wins.
    again = [d for d in plan(session, policies, now, [case_id]) if d.case_id == case_id]
    if not again or again[0].held or RANK[again[0].stage] < RANK[stage]:
        return None
    return case, done


def _verified_events(session: Session, case: Case) -> list[AuditEvent]:
    events = list(session.scalars(select(AuditEvent).where(AuditEvent.case_id == case.id)
                                  .order_by(AuditEvent.seq)))
    problem = audit.check_case(case, events)
    if problem is not None:
        # Redacting a broken chain would launder it: the evidence of the change must stay for an admin.
        raise RetentionRefused(f"the audit chain is broken ({problem}); not redacted")
    return events


def _redact_events(events, subject) -> list:
    """[seq, original hash, redacted hash] of each event changed (the erasure event commits to them)."""
    redactions = []
    for ev in events:
        if ev.type in audit.ERASURE_TYPES:
            continue  # hashes and references only: kept as they are
        actor = None if subject is not None and ev.actor_id == subject else ev.actor_id
        data = audit.redacted_data(ev.data) if ev.data or actor != ev.actor_id else ev.data
        if data == ev.data and actor == ev.actor_id:
            continue
        ev.data, ev.actor_id = data, actor
        redactions.append([ev.seq, ev.hash, audit.content_hash(ev)])
    return redactions


def _redact_documents(session: Session, case: Case, subject) -> list:
    """[id, sha256] of each document of the case, whose content is now a marker."""
    documents = []
    for doc in session.scalars(select(Document).where(Document.case_id == case.id).order_by(Document.id)):
        documents.append([doc.id, doc.sha256])
        if not (doc.content or {}).get("redacted"):
            doc.content = {"redacted": True}
        if subject is not None and subject in (doc.required_signer_ids or []):
            doc.required_signer_ids = [None if uid == subject else uid for uid in doc.required_signer_ids]
        for sig in doc.signatures:
            signer = None if subject is not None and sig.signer_id == subject else sig.signer_id
            if sig.comment != REDACTED_TEXT or signer != sig.signer_id:
                session.execute(update(Signature).where(Signature.id == sig.id)
                                .values(comment=REDACTED_TEXT, signer_id=signer)
                                .execution_options(synchronize_session=False))
    return documents


def _redact_rows(session: Session, case: Case, stage: str, subject) -> None:
    quiet = {"synchronize_session": False}
    session.execute(update(Deadline).where(Deadline.case_id == case.id).values(label=Deadline.kind)
                    .execution_options(**quiet))
    session.execute(delete(CaseExclusion).where(CaseExclusion.case_id == case.id))
    # a note's text goes with the rest of the content; its sha256 (and the chain's event) stays
    session.execute(update(CaseNote).where(CaseNote.case_id == case.id).values(text=REDACTED_TEXT)
                    .execution_options(**quiet))
    if stage == RetentionAction.ERASED:
        session.execute(delete(Notification).where(Notification.case_id == case.id,
                                                   Notification.kind != audit.BREAK_ALERT_KIND))
        session.execute(delete(AccessLog).where(AccessLog.case_id == case.id))
        return
    session.execute(update(Notification).where(Notification.case_id == case.id)
                    .values(subject=Notification.kind, body_text="", attachments=[], data={})
                    .execution_options(**quiet))
    if subject is not None:
        session.execute(update(Notification).where(Notification.case_id == case.id,
                                                   Notification.recipient_user_id == subject)
                        .values(recipient_user_id=None).execution_options(**quiet))
        session.execute(delete(AccessLog).where(AccessLog.case_id == case.id, AccessLog.user_id == subject))


def _record(session: Session, policy: Policy, case: Case, done, stage: str, now: datetime, key: bytes, subject,
            redactions: list, documents: list) -> None:
    pseudonymising = stage == RetentionAction.PSEUDONYMISED
    alias = pseudonym(key, subject) if subject is not None and pseudonymising else None
    if pseudonymising and alias is None and done is not None:
        alias = done.subject_pseudonym
    case.title, case.data, case.subject_id = "", {}, None
    event = audit.new_event(case, now, None, stage, data={
        "policy": policy.describe(), "redactions": redactions, "documents": documents})
    audit.append_only_event(session, case, event, now)
    if done is None:
        session.add(CaseRetention(case_id=case.id, action=stage, applied_at=now, event_seq=event.seq,
                                  policy=policy.describe(), subject_pseudonym=alias))
    else:
        done.action, done.applied_at, done.event_seq, done.policy = stage, now, event.seq, policy.describe()
        done.subject_pseudonym = alias if pseudonymising else None
