"""Training records: what the region knows of one subject's training, every change in a hash chain.

A record is changed by people (the API, the pages, an import) and by case steps (a training
extended or terminated); both go through `change`, which writes one `TrainingRecordEvent` with the
fields before and after. The names of roles and statuses come from the caller: the engine does not
know the procedures.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from . import audit
from .canonical import canonical_json, isoformat_utc, sha256_hex
from .errors import ValidationError, VersionConflict
from .fields import parse_date
from .models import (Case, Institution, Programme, RecordStatus, RoleAssignment, TrainingRecord,
                     TrainingRecordEvent, User)

# API field → (model attribute, kind)
FIELDS: dict[str, tuple[str, str]] = {
    "programme": ("programme", "programme"),
    "start_date": ("start_date", "date"),
    "expected_end_date": ("expected_end_date", "date"),
    "employer": ("employer_id", "institution"),
    "placement": ("placement_id", "institution"),
    "responsible_opleider_id": ("responsible_opleider_id", "user"),
    "deputy_opleider_id": ("deputy_opleider_id", "user"),
    "status": ("status", "status"),
}


def get(session: Session, subject_id: int) -> TrainingRecord | None:
    return session.get(TrainingRecord, subject_id)


def history(session: Session, subject_id: int) -> list[TrainingRecordEvent]:
    return list(session.scalars(select(TrainingRecordEvent).where(TrainingRecordEvent.subject_id == subject_id)
                                .order_by(TrainingRecordEvent.seq)))


def event_hash(prev: str, ev: TrainingRecordEvent) -> str:
    body = {"subject_id": ev.subject_id, "seq": ev.seq, "at": isoformat_utc(ev.at), "actor_id": ev.actor_id,
            "case_id": ev.case_id, "reason": ev.reason, "changes": ev.changes}
    return sha256_hex(prev + canonical_json(body))


def chain_intact(session: Session, subject_id: int) -> bool:
    record, prev = get(session, subject_id), audit.GENESIS
    for ev in history(session, subject_id):
        if ev.prev_hash != prev or event_hash(prev, ev) != ev.hash:
            return False
        prev = ev.hash
    return record is None or record.audit_head == (prev if prev != audit.GENESIS else "")


def parse(session: Session, values: dict, *, statuses=tuple(RecordStatus)) -> dict:
    """API values → model values; every problem at once (ValidationError)."""
    out, errors = {}, {}
    for key, value in values.items():
        if key not in FIELDS:
            errors[key] = ["unknown field"]
            continue
        attr, kind = FIELDS[key]
        try:
            out[attr] = _parse_one(session, kind, value, statuses)
        except ValueError as exc:
            errors[key] = [str(exc)]
    if errors:
        raise ValidationError("invalid training record: " + "; ".join(f"{k} {v[0]}" for k, v in errors.items()), errors)
    return out


def _parse_one(session: Session, kind: str, value, statuses):
    if value is None and kind not in ("programme", "status"):
        return None
    if kind == "date":
        parsed = parse_date(value)
        if parsed is None or not date(1900, 1, 1) <= parsed <= date(2199, 12, 31):
            raise ValueError("must be a date YYYY-MM-DD between 1900-01-01 and 2199-12-31")
        return parsed
    if kind == "institution":
        found = session.scalar(select(Institution.id).where(Institution.code == value)) \
            if isinstance(value, str) else None
        if found is None:
            raise ValueError("unknown institution")
        return found
    if kind == "user":
        if not isinstance(value, int) or isinstance(value, bool) or session.get(User, value) is None:
            raise ValueError("unknown user")
        return value
    if kind == "status":
        if value not in statuses:
            raise ValueError("must be one of " + ", ".join(statuses))
        return str(value)
    if not isinstance(value, str) or session.scalar(select(Programme.id).where(Programme.code == value)) is None:
        raise ValueError("unknown programme")
    return value


def _plain(value):
    return value.isoformat() if isinstance(value, date) else value


def change(session: Session, *, subject_id: int, region_id: int, programme: str, actor_id: int | None,
           values: dict, now: datetime, reason: str = "", case_id: int | None = None,
           placement_id: int | None = None, employer_id: int | None = None) -> TrainingRecord:
    """Apply model `values` to the subject's record (created if absent, placed at `placement_id` and
    employed by `employer_id`), recording what changed."""
    record = get(session, subject_id)
    if record is None:
        record = TrainingRecord(subject_id=subject_id, region_id=region_id, programme=programme,
                                placement_id=placement_id, employer_id=employer_id,
                                status=RecordStatus.IN_TRAINING, updated_at=now,
                                audit_seq=0, audit_head="")
        session.add(record)
        session.flush()
    if "programme" in values and values["programme"] is None:
        values = {k: v for k, v in values.items() if k != "programme"}
    changes = {attr: [_plain(getattr(record, attr)), _plain(value)] for attr, value in values.items()
               if getattr(record, attr) != value}
    if not changes:
        return record
    prev = record.audit_head or audit.GENESIS
    ev = TrainingRecordEvent(subject_id=subject_id, seq=record.audit_seq + 1, at=now, actor_id=actor_id,
                             case_id=case_id, reason=reason or "", changes=changes, prev_hash=prev, hash="")
    ev.hash = event_hash(prev, ev)
    result = session.execute(update(TrainingRecord).where(TrainingRecord.subject_id == subject_id,
                                                          TrainingRecord.audit_seq == record.audit_seq)
                             .values(audit_seq=ev.seq, audit_head=ev.hash, updated_at=now, **values)
                             .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise VersionConflict("the training record changed meanwhile; reload and try again", {"aios_id": subject_id})
    session.add(ev)
    session.expire(record)
    return record


def hand_over(session: Session, *, subject_id: int, new_id: int, actor_id: int | None, now: datetime,
              reason: str, personal_keys) -> int:
    """The subject's open personal cases pass to a new responsible opleider, each recorded in its own trail."""
    cases = session.scalars(select(Case).where(Case.subject_id == subject_id, Case.closed_at.is_(None),
                                               Case.workflow_key.in_(list(personal_keys)),
                                               Case.responsible_id != new_id).with_for_update(of=Case)).all()
    for case in cases:
        event = audit.new_event(case, now, actor_id, "handed_over",
                                data={"from": case.responsible_id, "to": new_id, "reason": reason})
        audit.append_only_event(session, case, event, now)
        session.execute(update(Case).where(Case.id == case.id).values(responsible_id=new_id)
                        .execution_options(synchronize_session=False))
        case.responsible_id = new_id
    return len(cases)


def sole_holder(session: Session, role: str, institution_id: int, programme: str, default_programme: str) -> int | None:
    """The one active holder of `role` for `programme` at an institution, if there is exactly one."""
    q = (select(RoleAssignment.user_id).join(User, User.id == RoleAssignment.user_id)
         .where(RoleAssignment.role == role, RoleAssignment.institution_id == institution_id, User.active.is_(True)))
    holders = {uid for uid, prog in session.execute(q.add_columns(RoleAssignment.programme))
               if (prog or default_programme) == programme}
    return holders.pop() if len(holders) == 1 else None
