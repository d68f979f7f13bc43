"""The training record as the API, the pages and the import use it (CONTRACT.md section 7).

Who may read or edit it is decided in engine/scope.py (`may_read_record`, `may_on_record`) from the
role maps in workflows/roles.py; every read is access-logged, every change is a record event.
"""
from __future__ import annotations

from flask import g
from sqlalchemy import select

from engine import records
from engine.errors import Forbidden, NotFound, ValidationError
from engine.models import Institution, RoleAssignment, TrainingRecord
from engine.scope import RecordPlace, may_on_record, may_read_record
from workflows.roles import RECORD_EDITORS, RECORD_READERS

from .access_log import log_record_read
from .extensions import db
from .runtime import engine, now

RESPONSIBLE_ROLE = "opleider"


def _aios_home(aios_id: int) -> tuple[int, int] | None:
    """(institution, region) where the user holds the aios role: the placement of a record not yet written."""
    row = db.session.execute(select(RoleAssignment.institution_id, RoleAssignment.region_id)
                             .where(RoleAssignment.user_id == aios_id, RoleAssignment.role == "aios")
                             .order_by(RoleAssignment.id).limit(1)).first()
    return (row[0], row[1]) if row else None


def place_of(aios_id: int) -> tuple[TrainingRecord | None, RecordPlace]:
    """The record (if written) and where it sits; NotFound for someone who is not an aios."""
    record = records.get(db.session, aios_id)
    if record is not None:
        return record, RecordPlace(aios_id, record.placement_id, record.employer_id, record.region_id,
                                   record.programme)
    home = _aios_home(aios_id)
    if home is None:
        raise NotFound("training record not found", {"aios_id": aios_id})
    # Not yet written: placed and employed where the aios holds the role (as engine.scope.employed_at has it).
    return None, RecordPlace(aios_id, home[0], home[0], home[1], engine().config.default_programme)


def visible_record(aios_id: int) -> tuple[TrainingRecord | None, RecordPlace]:
    """Like a personal case: out of scope answers 404, never 403 (it must not reveal who is an aios)."""
    record, place = place_of(aios_id)
    if not may_read_record(g.actor, place, RECORD_READERS):
        raise NotFound("training record not found", {"aios_id": aios_id})
    log_record_read(aios_id)
    return record, place


def out(aios_id: int, record: TrainingRecord | None, place: RecordPlace) -> dict:
    codes = dict(db.session.execute(select(Institution.id, Institution.code)).all())
    history = [{"changes": ev.changes, "at": ev.at, "actor_id": ev.actor_id, "case_id": ev.case_id,
                "reason": ev.reason} for ev in records.history(db.session, aios_id)] if record else []
    return {
        "aios_id": aios_id, "programme": place.programme,
        "start_date": record.start_date if record else None,
        "expected_end_date": record.expected_end_date if record else None,
        "employer": codes.get(place.employer_id), "placement": codes.get(place.placement_id),
        "responsible_opleider_id": record.responsible_opleider_id if record else None,
        "deputy_opleider_id": record.deputy_opleider_id if record else None,
        "status": record.status if record else "in_training", "history": history,
    }


def read(aios_id: int) -> dict:
    record, place = visible_record(aios_id)
    return out(aios_id, record, place)


def update(aios_id: int, body: dict, *, actor=None, reason: str = "") -> dict:
    """Change the record; the responsible opleider moves with the placement (or by an explicit choice)."""
    actor = actor or g.actor
    record, place = place_of(aios_id)
    if not may_read_record(actor, place, RECORD_READERS):
        raise NotFound("training record not found", {"aios_id": aios_id})
    if not may_on_record(actor, place, RECORD_EDITORS):
        raise Forbidden("only the administrator, or the COC chair or an opleider of the aios' placement, "
                        "may change a training record", {"allowed_roles": ["admin", *RECORD_EDITORS]})
    values = records.parse(db.session, {k: v for k, v in body.items() if k != "reason"})
    if "status" in values:
        raise ValidationError("the status follows from the trajectories (extend, terminate)",
                              {"status": ["set by the trajectories"]})
    programme = values.get("programme") or place.programme
    _follow_placement(values, record, place, programme)
    _check_responsible(values, programme)
    when = now()
    records.change(db.session, subject_id=aios_id, region_id=place.region_id, programme=programme,
                             actor_id=actor.id, values=values, now=when, reason=body.get("reason") or reason,
                             placement_id=place.placement_id, employer_id=place.employer_id)
    new_responsible = values.get("responsible_opleider_id")
    if new_responsible and new_responsible != (record.responsible_opleider_id if record else None):
        personal = [k for k, d in engine().latest(db.session).items() if d.category == "personal"]
        records.hand_over(db.session, subject_id=aios_id, new_id=new_responsible, actor_id=actor.id, now=when,
                          reason=body.get("reason") or "handover", personal_keys=personal)
    db.session.flush()
    return out(aios_id, *place_of(aios_id))


def _follow_placement(values: dict, record, place: RecordPlace, programme: str) -> None:
    """A new placement without a named responsible: the opleider of the programme there, if there is one."""
    moved = "placement_id" in values and values["placement_id"] != place.placement_id
    if not moved or "responsible_opleider_id" in values:
        return
    sole = records.sole_holder(db.session, RESPONSIBLE_ROLE, values["placement_id"], programme,
                               engine().config.default_programme)
    if sole is None:
        raise ValidationError("name the responsible opleider at the new placement",
                              {"responsible_opleider_id": ["required when the placement changes "
                                                           "and the placement has not exactly one opleider"]})
    values["responsible_opleider_id"] = sole


def _check_responsible(values: dict, programme: str) -> None:
    for key in ("responsible_opleider_id", "deputy_opleider_id"):
        uid = values.get(key)
        if uid is None:
            continue
        held = db.session.execute(select(RoleAssignment.role, RoleAssignment.programme)
                                  .where(RoleAssignment.user_id == uid)).all()
        default = engine().config.default_programme
        if not any(role in ("opleider", "plv_opleider") and (prog or default) == programme for role, prog in held):
            raise ValidationError("must be an opleider of the aios' programme",
                                  {key.replace("_id", "") + "_id": ["must be an opleider of the aios' programme"]})
