"""Region aggregates for the regiobestuur, the R-COC and the RSO board."""
from __future__ import annotations

import csv
import io

from flask import Response, current_app, g
from flask.views import MethodView

from engine.overview import csv_rows, overview, threshold_of
from workflows.roles import OVERVIEW_ROLES

from ..errors import error_response
from ..extensions import db
from ..runtime import engine, now
from .blueprint import api
from .schemas import OverviewQuery, OverviewSchema

@api.route("/overview")
class Overview(MethodView):
    @api.arguments(OverviewQuery, location="query")
    @api.response(200, OverviewSchema)
    @api.alt_response(403, description="only for the regiobestuur, the R-COC and the RSO board")
    def get(self, query):
        """Region aggregates: counts by workflow × state × institution, overdue, levels, age, trend."""
        actor = g.actor
        regions = sorted({region for role, _, region, *_ in actor.assignments if role in OVERVIEW_ROLES})
        if not regions and not actor.superuser:
            return error_response(403, "forbidden", "the overview is for the regiobestuur, R-COC and RSO board")
        threshold = threshold_of(current_app.config["TRAJECT_REGION"])
        data = overview(db.session, engine(), None if actor.superuser else regions, now(), threshold)
        if query["format"] == "csv":
            buffer = io.StringIO()
            csv.writer(buffer).writerows(csv_rows(data))
            return Response(buffer.getvalue(), mimetype="text/csv",
                            headers={"Content-Disposition": 'attachment; filename="traject-overzicht.csv"'})
        return data
