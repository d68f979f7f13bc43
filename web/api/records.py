"""Training records (CONTRACT.md section 7): read like the aios' personal cases, changed by the placement."""
from __future__ import annotations

from flask.views import MethodView

from .. import records
from ..extensions import db
from .blueprint import api
from .schemas import TrainingRecordSchema, TrainingRecordUpdate


@api.route("/training-records/<int(max=2147483647):aios_id>")
class TrainingRecordOne(MethodView):
    @api.response(200, TrainingRecordSchema)
    def get(self, aios_id):
        """The aios' training record with its history (out of scope: 404)."""
        body = records.read(aios_id)
        db.session.commit()
        return body

    @api.arguments(TrainingRecordUpdate)
    @api.response(200, TrainingRecordSchema)
    def put(self, body, aios_id):
        """Change any of programme, dates, employer, placement, responsible (and deputy) opleider; audited."""
        out = records.update(aios_id, body)
        db.session.commit()
        return out
