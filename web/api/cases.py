"""Cases: list, open, read, fire a trigger; their audit trail, messages and sealed dossier."""
from __future__ import annotations

from flask import g
from flask.views import MethodView
from sqlalchemy import bindparam, exists, select

from engine import search
from engine.calendar import local_date
from engine.deadlines import late as late_deadlines
from engine.disclosure import Disclosure
from engine.models import (
    AuditEvent,
    Case,
    Deadline,
    DeadlineStatus,
    Document,
    Institution,
    Notification,
    User,
)

from workflows.terms import moved

from .. import exports
from ..access_log import log_reads, visible_case
from ..extensions import db
from ..runtime import engine, now
from . import cursors
from .blueprint import api
from .documents import document_out
from .openapi import BINARY
from .schemas import (
    CaseCreate,
    CasePage,
    CaseQuery,
    CaseSchema,
    EventSchema,
    NotificationSchema,
    TransitionRequest,
)


# The reads of every case answer, built once: constructing them and computing their cache keys cost
# about a fifth of a transition request (bench/RESULTS.md). SQL, not data: nothing here can go stale.
_DEADLINES = (select(Deadline.id, Deadline.case_id, Deadline.kind, Deadline.label, Deadline.due_at, Deadline.status,
                     Deadline.owner_role, Deadline.rolled_from)
              .where(Deadline.case_id.in_(bindparam("ids", expanding=True))).order_by(Deadline.due_at))
_DOCUMENTS = (select(Document).where(Document.case_id.in_(bindparam("ids", expanding=True)))
              .order_by(Document.kind, Document.version))


def _children_query(scope):
    return (select(Case.id, Case.parent_id).where(Case.parent_id.in_(bindparam("ids", expanding=True)), scope)
            .order_by(Case.id))


def serialize_cases(cases: list[Case]) -> list[dict]:
    """Cases with their deadlines, documents and children: a fixed number of queries per page."""
    if not cases:
        return []
    ids = [c.id for c in cases]
    deadlines: dict[int, list] = {i: [] for i in ids}
    calendar, tz = engine().config.calendar, engine().config.timezone
    for d in db.session.execute(_DEADLINES, {"ids": ids}):
        deadlines[d.case_id].append(
            {"id": d.id, "kind": d.kind, "label": d.label, "due_at": d.due_at, "status": d.status,
             "owner_role": d.owner_role,
             "moved": moved(local_date(d.due_at, tz), d.rolled_from, calendar)})
    documents: dict[int, list] = {i: [] for i in ids}
    for doc in db.session.scalars(_DOCUMENTS, {"ids": ids}):
        documents[doc.case_id].append(document_out(doc))
    eng, actor = engine(), g.actor
    # Linked cases are named only when the reader may see them: HR must not learn of a dispute.
    scope = eng.scope(db.session, actor)
    children: dict[int, list] = {i: [] for i in ids}
    children_query = eng.per_actor(db.session, actor, "children", lambda: _children_query(scope))
    for child_id, parent_id in db.session.execute(children_query, {"ids": ids}):
        children[parent_id].append(child_id)
    parents = {c.parent_id for c in cases if c.parent_id}
    visible_parents = set(db.session.scalars(select(Case.id).where(Case.id.in_(parents), scope))) if parents else set()
    shown = {c.id: _shown(c) for c in cases}
    return [
        {
            "id": c.id, "workflow": c.workflow_key, "workflow_version": c.definition.version,
            "institution": c.institution.code, "programme": c.programme or eng.config.default_programme,
            "subject_id": c.subject_id,
            "opened_by": shown[c.id].opened_by(c),
            "responsible_id": c.responsible_id, "title": c.title, "state": c.state, "version": c.version,
            "opened_at": c.opened_at, "closed_at": c.closed_at, "data": shown[c.id].data(c.data),
            "available_triggers": eng.available_triggers(
                c, actor, overdue={d["kind"] for d in deadlines[c.id] if d["status"] == DeadlineStatus.OVERDUE}),
            "deadlines": deadlines[c.id],
            "terms": [{"name": name, "label": spec["label"], "label_en": spec["label_en"] or spec["label"],
                       "ends_on": end.day.isoformat(), "moved": moved(end.day, end.rolled_from, calendar)}
                      for name, spec, end in eng.shown_terms(db.session, c)],
            "documents": documents[c.id], "parent_id": c.parent_id if c.parent_id in visible_parents else None,
            "child_ids": children[c.id],
        }
        for c in cases
    ]


def _shown(case: Case) -> Disclosure:
    """What the reader may see of the case's confidential fields (engine/disclosure.py)."""
    return engine().disclosure(case, g.actor)


def _decode_cursor(cursor: str) -> int:
    try:
        value = int(cursors.decode(cursor))
    except ValueError:
        value = -1
    if not 0 < value < 2**63:
        raise cursors.invalid()
    return value


def _encode_cursor(case_id: int) -> str:
    return cursors.encode(str(case_id))


@api.route("/cases")
class Cases(MethodView):
    @api.arguments(CaseQuery, location="query")
    @api.response(200, CasePage)
    def get(self, query):
        """Cases in your scope, newest first; `next` is the cursor of the following page."""
        eng = engine()
        q = select(Case).where(eng.scope(db.session, g.actor))
        if query.get("q", "").strip():
            q = q.where(search.matching(query["q"]))
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
            data=body.get("data") or {}, programme=body.get("programme"),
        )
        db.session.commit()
        return serialize_cases([case])[0]


@api.route("/cases/<int(max=9223372036854775807):case_id>")
class CaseOne(MethodView):
    @api.response(200, CaseSchema)
    def get(self, case_id):
        """One case, with the triggers you may fire now."""
        case = visible_case(case_id, "read")
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
        # The answer is read inside the transaction (its reads flush the writes first): after the commit they
        # would open a second transaction, two more round trips on PostgreSQL (BEGIN, ROLLBACK).
        out = serialize_cases([case])[0]
        db.session.commit()
        return out


@api.route("/cases/<int(max=9223372036854775807):case_id>/events")
class Events(MethodView):
    @api.response(200, EventSchema(many=True))
    def get(self, case_id):
        """The case's audit trail: one hash chain."""
        case = visible_case(case_id, "events")
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.case_id == case.id)
                                    .order_by(AuditEvent.seq)).all()
        shown = _shown(case)
        out = [{**{c: getattr(ev, c) for c in ("seq", "at", "type", "trigger", "from_state", "to_state", "hash",
                                               "prev_hash")},
                "actor_id": shown.actor_of(ev.seq, ev.actor_id), "data": shown.event_data(ev.data or {})}
               for ev in events]
        db.session.commit()
        return out


@api.route("/cases/<int(max=9223372036854775807):case_id>/notifications")
class Notifications(MethodView):
    @api.response(200, NotificationSchema(many=True))
    def get(self, case_id):
        """What the case has sent or will send, and to whom."""
        case = visible_case(case_id, "notifications")
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
        return exports.dossier_zip(case_id)
