"""The workflow definitions (their current versions)."""
from __future__ import annotations

from flask.views import MethodView

from ..errors import error_response
from ..extensions import db
from ..runtime import engine
from .blueprint import api
from .schemas import WorkflowSchema


def _workflow_out(d) -> dict:
    return {
        "key": d.key, "version": d.version, "sha256": d.sha256, "title": d.title, "states": d.state_names,
        "final_states": sorted(d.final_states),
        "transitions": [{"trigger": t.trigger, "source": s, "dest": t.dest, "roles": list(t.roles)}
                        for t in d.transitions for s in t.sources],
    }


@api.route("/workflows")
class Workflows(MethodView):
    @api.response(200, WorkflowSchema(many=True))
    def get(self):
        """The current version of every workflow definition."""
        return [_workflow_out(d) for _, d in sorted(engine().latest(db.session).items())]


@api.route("/workflows/<string:key>")
class WorkflowOne(MethodView):
    @api.response(200, WorkflowSchema)
    @api.alt_response(404, description="no such workflow")
    def get(self, key):
        """One workflow definition (its current version)."""
        definition = engine().latest(db.session).get(key)
        if definition is None:
            return error_response(404, "not_found", f"no workflow {key!r}")
        return _workflow_out(definition)
