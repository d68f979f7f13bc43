"""The JSON API under /api/v1 (CONTRACT.md section 2). Views are thin: the engine decides."""
from __future__ import annotations

import base64
import binascii

from flask import Response, current_app, g, request
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import exists, insert, select

from engine.errors import ValidationError
from engine.deadlines import late as late_deadlines
from notifications import pdf
from engine.models import (AccessLog, AuditEvent, Case, Deadline, DeadlineStatus, Document, Institution,
                           Notification, User)

from . import auth
from .errors import error_response
from .extensions import db, limiter
from .openapi import BINARY, TEXT
from .security import svg_policy
from .schemas import (
    CasePage,
    CaseCreate,
    CaseQuery,
    CaseSchema,
    DocumentCreate,
    DocumentSchema,
    EventSchema,
    MeSchema,
    NotificationSchema,
    SignatureCreate,
    SignatureSchema,
    InboxItem,
    OverviewQuery,
    OverviewSchema,
    TokenRequest,
    TokenResponse,
    TransitionRequest,
    WorkflowSchema,
)
from .services import engine, now

api = Blueprint("api", __name__, url_prefix="/api/v1", description="Traject API")
PUBLIC_ENDPOINTS = {"api.Tokens"}


@api.before_request
def _authenticate():
    if request.endpoint in PUBLIC_ENDPOINTS and request.method == "POST":
        return None
    token = auth.bearer_token()
    user = auth.user_for_token(token, now()) if token else None
    if user is None:
        return error_response(401, "unauthenticated", "a valid bearer token is required",
                              headers={"WWW-Authenticate": "Bearer"})
    g.user = user
    g.actor = engine().actor_for(user)
    return None


def _login_key() -> str:
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    return f"login:{str(email).strip().lower()}" if email else f"login-ip:{request.remote_addr}"


def _institution_codes(ids) -> dict[int, str]:
    ids = set(ids)
    if not ids:
        return {}
    return dict(db.session.execute(select(Institution.id, Institution.code).where(Institution.id.in_(ids))).all())


def _document_out(doc: Document) -> dict:
    return {
        "id": doc.id, "case_id": doc.case_id, "kind": doc.kind, "version": doc.version, "sha256": doc.sha256,
        "content": doc.content, "required_signers": list(doc.required_signer_ids), "created_at": doc.created_at,
        "signatures": [
            {"id": s.id, "signer_id": s.signer_id, "verdict": s.verdict, "comment": s.comment,
             "signed_at": s.signed_at, "document_sha256": s.document_sha256}
            for s in doc.signatures
        ],
    }


def serialize_cases(cases: list[Case]) -> list[dict]:
    """Cases with their deadlines, documents and children: a fixed number of queries per page."""
    if not cases:
        return []
    ids = [c.id for c in cases]
    deadlines: dict[int, list] = {i: [] for i in ids}
    for d in db.session.scalars(select(Deadline).where(Deadline.case_id.in_(ids)).order_by(Deadline.due_at)):
        deadlines[d.case_id].append(
            {"id": d.id, "kind": d.kind, "label": d.label, "due_at": d.due_at, "status": d.status,
             "owner_role": d.owner_role})
    documents: dict[int, list] = {i: [] for i in ids}
    for doc in db.session.scalars(select(Document).where(Document.case_id.in_(ids))
                                  .order_by(Document.kind, Document.version)):
        documents[doc.case_id].append(_document_out(doc))
    children: dict[int, list] = {i: [] for i in ids}
    for child_id, parent_id in db.session.execute(select(Case.id, Case.parent_id).where(Case.parent_id.in_(ids))
                                                  .order_by(Case.id)):
        children[parent_id].append(child_id)
    eng, actor = engine(), g.actor
    return [
        {
            "id": c.id, "workflow": c.workflow_key, "workflow_version": c.definition.version,
            "institution": c.institution.code, "subject_id": c.subject_id,
            "opened_by": None if _hidden(c, "opened_by") else c.opened_by_id,
            "responsible_id": c.responsible_id, "title": c.title, "state": c.state, "version": c.version,
            "opened_at": c.opened_at, "closed_at": c.closed_at, "data": _redacted(c, c.data),
            "available_triggers": eng.available_triggers(
                c, actor, overdue=any(d["status"] == DeadlineStatus.OVERDUE for d in deadlines[c.id])),
            "deadlines": deadlines[c.id],
            "documents": documents[c.id], "parent_id": c.parent_id, "child_ids": children[c.id],
        }
        for c in cases
    ]


def _roles(case: Case) -> set[str]:
    roles = g.actor.roles_on(case)
    return roles | {"superuser"} if g.actor.superuser else roles


def _hidden(case: Case, field: str) -> bool:
    allowed = engine().definition(case.definition).confidential.get(field)
    return allowed is not None and case.opened_by_id != g.actor.id and not _roles(case) & set(allowed)


def _redacted(case: Case, data: dict) -> dict:
    """Confidential fields (e.g. who signalled) only for the roles the definition names, and the opener."""
    confidential = engine().definition(case.definition).confidential
    return engine().redact(confidential, data, _roles(case) | {"opener"} if case.opened_by_id == g.actor.id else _roles(case))


def log_read(case: Case, action: str) -> None:
    """Every read of a personal case is recorded: who, when, what."""
    log_reads([case], action)


def log_reads(cases: list[Case], action: str) -> None:
    """One INSERT for a whole page of cases (executemany), whatever the page size."""
    rows = [{"at": now(), "user_id": g.user.id, "case_id": c.id, "action": action, "detail": request.path[:300]}
            for c in cases if engine().definition(c.definition).category == "personal"]
    if rows:
        db.session.execute(insert(AccessLog), rows)


def _visible_case(case_id: int, action: str) -> Case:
    case = engine().get_case(db.session, g.actor, case_id)
    log_read(case, action)
    return case


# -- auth and identity --------------------------------------------------------------


@api.route("/auth/tokens")
class Tokens(MethodView):
    @api.arguments(TokenRequest)
    @api.response(201, TokenResponse)
    @api.alt_response(401, description="wrong e-mail or password")
    @api.alt_response(429, description="too many failed attempts for this account")
    @limiter.limit("10 per 15 minutes", key_func=_login_key, deduct_when=lambda r: r.status_code == 401,
                   methods=["POST"])
    def post(self, body):
        """Log in: exchange e-mail and password for a bearer token."""
        user = auth.check_credentials(body["email"], body["password"])
        if user is None:
            return error_response(401, "unauthenticated", "wrong e-mail or password")
        token, expires = auth.issue_token(user, now())
        db.session.commit()
        return {"token": token, "expires_at": expires}

    @api.response(204)
    def delete(self):
        """Log out: revoke the token used for this request."""
        auth.revoke_current(now())
        db.session.commit()
        return None


@api.route("/me")
class Me(MethodView):
    @api.response(200, MeSchema)
    def get(self):
        """Who am I, with which roles where."""
        user: User = g.user
        return {
            "id": user.id, "email": user.email, "name": user.name,
            "roles": [{"role": r.role, "institution": r.institution.code if r.institution else None}
                      for r in user.roles],
        }


# -- workflows ---------------------------------------------------------------------


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


# -- cases -------------------------------------------------------------------------


def _decode_cursor(cursor: str) -> int:
    try:
        value = int(base64.urlsafe_b64decode(cursor.encode() + b"==").decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        value = -1
    if not 0 < value < 2**63:
        raise ValidationError("invalid cursor", {"cursor": ["invalid cursor"]})
    return value


def _encode_cursor(case_id: int) -> str:
    return base64.urlsafe_b64encode(str(case_id).encode()).decode().rstrip("=")


@api.route("/cases")
class Cases(MethodView):
    @api.arguments(CaseQuery, location="query")
    @api.response(200, CasePage)
    def get(self, query):
        """Cases in your scope, newest first; `next` is the cursor of the following page."""
        eng = engine()
        q = select(Case).where(eng.scope(db.session, g.actor))
        if "workflow" in query:
            q = q.where(Case.workflow_key == query["workflow"])
        if "state" in query:
            q = q.where(Case.state == query["state"])
        if "institution" in query:
            q = q.where(Case.institution.has(Institution.code == query["institution"]))
        if "overdue" in query:
            late = exists().where(Deadline.case_id == Case.id, late_deadlines(now()))
            q = q.where(late if query["overdue"] else ~late)
        if "cursor" in query:
            q = q.where(Case.id < _decode_cursor(query["cursor"]))
        limit = query["limit"]
        cases = list(db.session.scalars(q.order_by(Case.id.desc()).limit(limit + 1)).unique())
        more = len(cases) > limit
        cases = cases[:limit]
        log_reads(cases, "list")
        items = serialize_cases(cases)
        db.session.commit()
        return {"items": items, "next": _encode_cursor(cases[-1].id) if more else None}

    @api.arguments(CaseCreate)
    @api.response(201, CaseSchema)
    def post(self, body):
        """Open a case."""
        case = engine().open_case(
            db.session, g.actor, workflow=body["workflow"], institution=body["institution"],
            subject_id=body.get("subject_id"), parent_id=body.get("parent_id"), title=body.get("title", ""),
            data=body.get("data") or {},
        )
        db.session.commit()
        return serialize_cases([case])[0]


@api.route("/cases/<int(max=9223372036854775807):case_id>")
class CaseOne(MethodView):
    @api.response(200, CaseSchema)
    def get(self, case_id):
        """One case, with the triggers you may fire now."""
        case = _visible_case(case_id, "read")
        out = serialize_cases([case])[0]
        db.session.commit()
        return out


@api.route("/cases/<int(max=9223372036854775807):case_id>/transitions")
class Transitions(MethodView):
    @api.arguments(TransitionRequest)
    @api.response(200, CaseSchema)
    def post(self, body, case_id):
        """Fire a trigger. One transaction: state, audit event, deadlines and outbox together."""
        case = engine().fire(db.session, g.actor, case_id, body["trigger"], body["expected_version"],
                             body.get("data") or {})
        db.session.commit()
        return serialize_cases([case])[0]


@api.route("/cases/<int(max=9223372036854775807):case_id>/events")
class Events(MethodView):
    @api.response(200, EventSchema(many=True))
    def get(self, case_id):
        """The case's audit trail: one hash chain."""
        case = _visible_case(case_id, "events")
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.case_id == case.id)
                                    .order_by(AuditEvent.seq)).all()
        out = []
        for ev in events:
            row = {c: getattr(ev, c) for c in ("seq", "at", "actor_id", "type", "trigger", "from_state", "to_state",
                                               "data", "hash", "prev_hash")}
            data = dict(ev.data or {})
            if isinstance(data.get("input"), dict):
                data["input"] = _redacted(case, data["input"])
            if ev.seq == 1 and _hidden(case, "opened_by"):
                row["actor_id"] = None
            row["data"] = data
            out.append(row)
        db.session.commit()
        return out


@api.route("/cases/<int(max=9223372036854775807):case_id>/notifications")
class Notifications(MethodView):
    @api.response(200, NotificationSchema(many=True))
    def get(self, case_id):
        """What the case has sent or will send, and to whom."""
        case = _visible_case(case_id, "notifications")
        rows = db.session.execute(
            select(Notification, User.email).outerjoin(User, User.id == Notification.recipient_user_id)
            .where(Notification.case_id == case.id).order_by(Notification.id)).all()
        db.session.commit()
        return [
            {"id": n.id, "recipient": email or n.recipient_address or "", "recipient_role": n.recipient_role,
             "kind": n.kind, "subject": n.subject, "status": n.status, "attempts": n.attempts,
             "created_at": n.created_at}
            for n, email in rows
        ]


@api.route("/cases/<int(max=9223372036854775807):case_id>/dossier.zip")
class Dossier(MethodView):
    @api.response(200, BINARY, description="a sealed evidence pack of the case and its linked cases",
                  content_type="application/zip")
    def get(self, case_id):
        """The dossier: PDFs, audit trails, a manifest of sha256 values and a verification script."""
        from .dossier import export

        case = _visible_case(case_id, "dossier_export")
        name, body = export(db.session, engine(), g.actor, case.id, now())
        db.session.commit()
        return Response(body, mimetype="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


@api.route("/cases/<int(max=9223372036854775807):case_id>/documents")
class Documents(MethodView):
    @api.arguments(DocumentCreate)
    @api.response(201, DocumentSchema)
    def post(self, body, case_id):
        """Add a document (a new version when one of that kind exists); its signatures start empty."""
        doc = engine().add_document(db.session, g.actor, case_id, body["kind"], body["content"])
        db.session.commit()
        return _document_out(doc)


@api.route("/documents/<int(max=9223372036854775807):document_id>")
class DocumentOne(MethodView):
    @api.response(200, DocumentSchema)
    def get(self, document_id):
        """One document with its signatures."""
        doc, case = engine().get_document(db.session, g.actor, document_id)
        log_read(case, "document")
        db.session.commit()
        return _document_out(doc)


@api.route("/documents/<int(max=9223372036854775807):document_id>/pdf")
class DocumentPdf(MethodView):
    @api.response(200, BINARY, description="the document as a PDF, with its signatures and sha256",
                  content_type="application/pdf")
    def get(self, document_id):
        """The document as a clean Dutch PDF."""
        doc, case = engine().get_document(db.session, g.actor, document_id)
        log_read(case, "document_pdf")
        body = pdf.render_document(db.session, doc)
        db.session.commit()
        return Response(body, mimetype="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="{pdf.filename(doc)}"'})


@api.route("/documents/<int(max=9223372036854775807):document_id>/signatures")
class Signatures(MethodView):
    @api.arguments(SignatureCreate)
    @api.response(201, SignatureSchema)
    def post(self, body, document_id):
        """Sign a document: agreed, or (the aios) seen, not agreed — with a comment."""
        signature = engine().sign(db.session, g.actor, document_id, body["verdict"], body.get("comment", ""))
        db.session.commit()
        return signature


# -- work lists and region aggregates --------------------------------------------------


@api.route("/inbox")
class Inbox(MethodView):
    @api.response(200, InboxItem(many=True))
    def get(self):
        """Your open work across all workflows, most urgent first."""
        from engine.inbox import inbox

        return inbox(db.session, engine(), g.actor, now())


OVERVIEW_ROLES = ("regio_bestuur", "r_coc_chair", "rso_board")


@api.route("/overview")
class Overview(MethodView):
    @api.arguments(OverviewQuery, location="query")
    @api.response(200, OverviewSchema)
    @api.alt_response(403, description="only for the regiobestuur, the R-COC and the RSO board")
    def get(self, query):
        """Region aggregates: counts by workflow × state × institution, overdue, levels, age, trend."""
        import csv
        import io

        from engine.overview import csv_rows, overview

        actor = g.actor
        regions = sorted({region for role, _, region in actor.assignments if role in OVERVIEW_ROLES})
        if not regions and not actor.superuser:
            return error_response(403, "forbidden", "the overview is for the regiobestuur, R-COC and RSO board")
        threshold = int(current_app.config["TRAJECT_REGION"].get("small_cell_threshold", 5))
        data = overview(db.session, engine(), None if actor.superuser else regions, now(), threshold)
        if query["format"] == "csv":
            buffer = io.StringIO()
            csv.writer(buffer).writerows(csv_rows(data))
            return Response(buffer.getvalue(), mimetype="text/csv",
                            headers={"Content-Disposition": 'attachment; filename="traject-overzicht.csv"'})
        return data


# -- diagrams ------------------------------------------------------------------------------

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
    from .views.svg import state_diagram

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
        case = _visible_case(case_id, "diagram")
        visited = set(db.session.scalars(select(AuditEvent.to_state).where(AuditEvent.case_id == case.id)))
        response = diagram_svg(engine().definition(case.definition), case.state, visited - {None})
        db.session.commit()
        return response
