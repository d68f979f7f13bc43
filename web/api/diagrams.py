"""State diagrams as standalone SVG documents: of a workflow, and of a case with its path."""
from __future__ import annotations

from flask import Response, request
from flask.views import MethodView
from sqlalchemy import select

from engine.models import AuditEvent

from ..access_log import visible_case
from ..errors import error_response
from ..extensions import db
from ..runtime import engine
from ..security import svg_policy
from ..svg import state_diagram
from .blueprint import api
from .openapi import TEXT

DIAGRAM_STYLE = (
    "<style>.node rect{fill:#fff;stroke:#7d8896;stroke-width:1.5}.node text{fill:#1b2430;font-size:15px;"
    "font-family:DejaVu Sans,Arial,sans-serif}.node.final rect{stroke-width:3}.node.visited rect{fill:#e3ecf7;"
    "stroke:#4f6f98}.node.current rect{fill:#1f4f8a;stroke:#153a66;stroke-width:3}.node.current text{fill:#fff;"
    "font-weight:600}.edge{fill:none;stroke:#7d8896;stroke-width:1.5}.edge.on{stroke:#0f766e;stroke-width:3}"
    ".arrowhead{fill:#7d8896}.arrowhead.on{fill:#0f766e}</style>"
)
DIAGRAM_CSP = svg_policy(DIAGRAM_STYLE[len("<style>"):-len("</style>")])


def diagram_svg(definition, current: str | None = None, visited: set | None = None) -> Response:
    """The state diagram as a standalone SVG (styles inside, no external assets)."""
    english = request.args.get("lang") == "en"
    states = [(st["name"], (st.get("label_en") if english else st.get("label")) or st["name"], st["final"])
              for st in definition.states]
    edges = [(src, t.dest, (t.label_en if english else t.label) or t.trigger)
             for t in definition.transitions for src in t.sources]
    title = definition.title_en if english else definition.title
    svg = str(state_diagram(states, edges, current, visited or set(), set(), title,
                            f"{len(states)} states, {len(edges)} transitions"))
    head_end = svg.index(">") + 1
    svg = svg[:head_end] + DIAGRAM_STYLE + svg[head_end:]
    # Opened on its own, the SVG is a document: it may apply its one <style> element, nothing else.
    return Response(svg, mimetype="image/svg+xml", headers={"Content-Security-Policy": DIAGRAM_CSP})


@api.route("/workflows/<string:key>/diagram.svg")
class WorkflowDiagram(MethodView):
    @api.response(200, TEXT, description="the state diagram", content_type="image/svg+xml")
    def get(self, key):
        """The workflow's state diagram, drawn from its definition (?lang=en for English labels)."""
        definition = engine().latest(db.session).get(key)
        if definition is None:
            return error_response(404, "not_found", f"no workflow {key!r}")
        return diagram_svg(definition)


@api.route("/cases/<int(max=9223372036854775807):case_id>/diagram.svg")
class CaseDiagram(MethodView):
    @api.response(200, TEXT, description="the case's state diagram, current state highlighted",
                  content_type="image/svg+xml")
    def get(self, case_id):
        """The diagram of the case's own definition version with its current state highlighted."""
        case = visible_case(case_id, "diagram")
        visited = set(db.session.scalars(select(AuditEvent.to_state).where(AuditEvent.case_id == case.id)))
        response = diagram_svg(engine().definition(case.definition), case.state, visited - {None})
        db.session.commit()
        return response
