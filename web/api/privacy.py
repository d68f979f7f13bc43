"""Privacy routes of the JSON API (same blueprint, same bearer authentication as web/api.py).

- GET  /cases/{id}/access-log        who read the case: the aios it is about, and the admin
- GET  /access-log                   the admin's export (JSON or CSV; filters since/until/case/user)
- GET  /cases/{id}/legal-holds       the case's legal holds (admin)
- POST /cases/{id}/legal-holds       place a hold with a reason (admin): retention waits
- POST /legal-holds/{id}/lift        lift it, with a reason (admin)
"""
from __future__ import annotations

from flask import Response, g, stream_with_context
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from engine import privacy

from .. import access_log
from ..access_log import log_read
from ..errors import error_response
from ..extensions import db
from ..runtime import engine, now
from .blueprint import api

ID = validate.Range(min=1, max=2**62)


class AccessEntry(Schema):
    id = fields.Integer(required=True)
    at = fields.DateTime(required=True)
    user_id = fields.Integer(required=True)
    name = fields.String(required=True)
    roles = fields.List(fields.String(), required=True)
    action = fields.String(required=True)
    detail = fields.String(required=True)


class AccessExportEntry(Schema):
    id = fields.Integer(required=True)
    at = fields.DateTime(required=True)
    case_id = fields.Integer(required=True)
    workflow = fields.String(required=True)
    institution = fields.String(required=True)
    user_id = fields.Integer(required=True)
    name = fields.String(required=True)
    email = fields.String(required=True)
    roles = fields.List(fields.String(), required=True)
    action = fields.String(required=True)
    detail = fields.String(required=True)


class AccessLogQuery(Schema):
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))
    since = fields.AwareDateTime(default_timezone=None)
    until = fields.AwareDateTime(default_timezone=None)
    case_id = fields.Integer(strict=False, validate=ID)
    user_id = fields.Integer(strict=False, validate=ID)
    limit = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=10000))


class HoldSchema(Schema):
    id = fields.Integer(required=True)
    case_id = fields.Integer(required=True)
    reason = fields.String(required=True)
    placed_by = fields.Integer(required=True)
    placed_at = fields.DateTime(required=True)
    lifted_at = fields.DateTime(allow_none=True, required=True)
    lifted_by = fields.Integer(allow_none=True, required=True)
    lift_reason = fields.String(allow_none=True, required=True)
    active = fields.Boolean(required=True)


class HoldRequest(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=privacy.MAX_REASON))


def _admin() -> bool:
    return g.actor.has_role("admin")


@api.route("/cases/<int(max=9223372036854775807):case_id>/access-log")
class CaseAccessLog(MethodView):
    @api.response(200, AccessEntry(many=True))
    @api.alt_response(403, description="only for the aios the case is about, and for the administrator")
    @api.alt_response(404, description="no such case in your scope")
    def get(self, case_id):
        """Who read this case, newest first: names, roles, when and what (the aios's own file, or any for the admin)."""
        case = engine().get_case(db.session, g.actor, case_id)
        if case.subject_id != g.user.id and not _admin():
            db.session.rollback()
            return error_response(403, "forbidden", "only the aios this case is about and the administrator "
                                                    "see who read it")
        out = access_log.entries(case)
        log_read(case, "access_log")
        db.session.commit()
        return out


@api.route("/access-log")
class AccessLogExport(MethodView):
    @api.arguments(AccessLogQuery, location="query")
    @api.response(200, AccessExportEntry(many=True), description="JSON, oldest first (at most `limit`); "
                                                                 "`format=csv`: every matching entry")
    @api.alt_response(403, description="only for the administrator")
    def get(self, query):
        """The access log for the administrator: who read which personal case, when and what."""
        if not _admin():
            return error_response(403, "forbidden", "the access log export is for the administrator")
        filters = {k: query.get(k) for k in ("since", "until", "case_id", "user_id")}
        rows = access_log.export_rows(**filters)
        if query["format"] == "csv":
            return Response(stream_with_context(access_log.csv_text(rows)), mimetype="text/csv",
                            headers={"Content-Disposition": 'attachment; filename="traject-access-log.csv"'})
        out = []
        for row in rows:
            entry = dict(zip(access_log.CSV_HEADER, row))
            entry["roles"] = entry["roles"].split()
            out.append(entry)
            if len(out) >= query["limit"]:
                break
        return out


@api.route("/cases/<int(max=9223372036854775807):case_id>/legal-holds")
class CaseHolds(MethodView):
    @api.response(200, HoldSchema(many=True))
    @api.alt_response(403, description="only for the administrator")
    @api.alt_response(404, description="no such case")
    def get(self, case_id):
        """The case's legal holds, in force and lifted."""
        if not _admin():
            return error_response(403, "forbidden", "legal holds are for the administrator")
        case = engine().get_case(db.session, g.actor, case_id)
        return [privacy.hold_out(h) for h in privacy.holds(db.session, case.id)]

    @api.arguments(HoldRequest)
    @api.response(201, HoldSchema)
    @api.alt_response(403, description="only for the administrator")
    @api.alt_response(404, description="no such case")
    def post(self, body, case_id):
        """Place a legal hold: retention leaves this case and its linked cases alone until it is lifted."""
        hold = privacy.place_hold(db.session, engine(), g.actor, case_id, body["reason"], now())
        db.session.commit()
        return privacy.hold_out(hold)


@api.route("/legal-holds/<int(max=9223372036854775807):hold_id>/lift")
class HoldLift(MethodView):
    @api.arguments(HoldRequest)
    @api.response(200, HoldSchema)
    @api.alt_response(403, description="only for the administrator")
    @api.alt_response(404, description="no such legal hold")
    def post(self, body, hold_id):
        """Lift a legal hold, with the reason."""
        hold = privacy.lift_hold(db.session, engine(), g.actor, hold_id, body["reason"], now())
        db.session.commit()
        return privacy.hold_out(hold)
