"""The training record page: the aios reads their own; the placement's opleider and COC chair, and the
administrator, correct it (CONTRACT.md section 7). Scope is the API's (web/records.py)."""
from __future__ import annotations

from flask import abort, g, redirect, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import select

from engine.errors import Forbidden, NotFound, ValidationError
from engine.models import Institution, Programme, RoleAssignment, User
from engine.scope import may_on_record
from workflows.roles import RECORD_EDITORS

from .. import records
from ..extensions import db
from .blueprint import ui

FORM_FIELDS = ("programme", "start_date", "expected_end_date", "employer", "placement", "responsible_opleider_id",
               "deputy_opleider_id")


def _choices(place) -> dict:
    institutions = db.session.execute(select(Institution.code, Institution.name).order_by(Institution.name)).all()
    programmes = db.session.execute(select(Programme.code, Programme.name).order_by(Programme.name)).all()
    opleiders = db.session.execute(
        select(User.id, User.name).join(RoleAssignment, RoleAssignment.user_id == User.id)
        .where(RoleAssignment.role.in_(("opleider", "plv_opleider")), User.active.is_(True))
        .order_by(User.name).distinct()).all()
    return {"institutions": institutions, "programmes": programmes, "opleiders": opleiders}


def _names(ids) -> dict[int, str]:
    ids = [i for i in ids if i]
    return dict(db.session.execute(select(User.id, User.name).where(User.id.in_(ids))).all()) if ids else {}


def _form_values(form) -> dict:
    out = {}
    for key in FORM_FIELDS:
        value = (form.get(key) or "").strip()
        if key.endswith("_id"):
            out[key] = int(value) if value.isdigit() else None
        elif value:
            out[key] = value
        elif key in ("start_date", "expected_end_date"):
            out[key] = None
    reason = (form.get("reason") or "").strip()
    if reason:
        out["reason"] = reason[:500]
    return out


@ui.route("/records/<int(max=2147483647):aios_id>", methods=["GET", "POST"])
@login_required
def record(aios_id: int):
    errors = {}
    if request.method == "POST":
        try:
            records.update(aios_id, _form_values(request.form))
            db.session.commit()
            return redirect(url_for("ui.record", aios_id=aios_id, saved=1), 303)
        except NotFound:
            abort(404)
        except Forbidden:
            abort(403)
        except ValidationError as exc:
            db.session.rollback()
            errors = exc.details
    try:
        body = records.read(aios_id)
    except NotFound:
        abort(404)
    _, place = records.place_of(aios_id)
    editable = may_on_record(g.actor, place, RECORD_EDITORS)
    people = _names([aios_id, body["responsible_opleider_id"], body["deputy_opleider_id"],
                     *(h["actor_id"] for h in body["history"]),
                     *(v for h in body["history"] for k, pair in h["changes"].items() if k.endswith("opleider_id")
                       for v in pair)])
    page = render_template("record.html", r=body, people=people, editable=editable, errors=errors,
                           choices=_choices(place) if editable else None, saved=request.args.get("saved"),
                           institutions=dict(db.session.execute(select(Institution.code, Institution.name)).all()),
                           institution_ids=dict(db.session.execute(select(Institution.id, Institution.name)).all()),
                           programmes=dict(db.session.execute(select(Programme.code, Programme.name)).all()))
    db.session.commit()  # the access log of this read
    return page
