"""The workflow definitions (their current versions)."""
from __future__ import annotations

from flask.views import MethodView

from ..errors import error_response
from ..extensions import db
from ..runtime import engine
from .blueprint import api
from .schemas import WorkflowSchema


def _field_out(spec: dict, required_default: bool = False) -> dict:
    required = spec.get("required")
    out = {"type": spec["type"], "required": required_default if required is None else bool(required),
           "label": spec.get("label") or "", "label_en": spec.get("label_en") or spec.get("label") or ""}
    if spec.get("choices"):
        registry = engine().registry
        out["choices"] = list(spec["choices"])
        out["choice_labels"] = {c: {"label": registry.choice_word(c, "nl") or c, "label_en": registry.choice_word(c) or c}
                                for c in spec["choices"]}
    if spec.get("fields"):
        out["subfields"] = {name: _field_out(sub, True) for name, sub in spec["fields"].items()}
    if spec.get("items"):
        out["item"] = _field_out(spec["items"], True)
    return out


def _inputs(step) -> dict:
    return {name: _field_out(spec) for name, spec in step.input.items()}


def _workflow_out(d) -> dict:
    return {
        "key": d.key, "version": d.version, "sha256": d.sha256, "title": d.title, "title_en": d.title_en,
        "states": d.state_names, "final_states": sorted(d.final_states),
        "open": {"roles": list(d.open.roles), "input": _inputs(d.open)},
        "transitions": [{"trigger": t.trigger, "source": s, "dest": t.dest, "roles": list(t.roles),
                         "label": t.label, "label_en": t.label_en, "input": _inputs(t)}
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
