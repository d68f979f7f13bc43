"""The case list: search (title, aios, number), filters, sortable columns, pages with counts.

Every filter is a condition on the one scoped query (engine/scope.py), so a filter or a search can
only narrow what the reader may see. The programme filter waits for the training record's
programmes (issue 14, helper `record`): `PROGRAMME` is its seam — a column of the case to compare
with the `programme` parameter — and the filter is offered once it is set.
"""
from __future__ import annotations

from math import ceil

from flask import abort, g, render_template, request, url_for
from flask_login import login_required
from sqlalchemy import exists, func, select

from engine import search
from engine.deadlines import late as late_deadlines
from engine.inbox import inbox
from engine.models import Case, Deadline, Institution

from ..access_log import log_reads
from ..extensions import db
from ..runtime import engine, now
from . import data
from .blueprint import ui

PER_PAGE = 50
PROGRAMME = getattr(Case, "programme_id", None)  # the seam for the programmes of issue 14
SORTS = {"number": Case.id, "title": Case.title, "opened": Case.opened_at, "state": Case.state,
         "workflow": Case.workflow_key}


def _filters(args, latest) -> dict:
    """The chosen filters, each checked against what exists (an unknown value is simply not applied)."""
    workflow = args.get("workflow") if args.get("workflow") in latest else ""
    states = latest[workflow].state_names if workflow else []
    sort = args.get("sort") or "-number"
    return {
        "q": " ".join((args.get("q") or "").split())[:search.MAX_QUERY], "workflow": workflow,
        "state": args.get("state") if args.get("state") in states else "",
        "institution": args.get("institution", type=int), "programme": args.get("programme", type=int),
        "status": args.get("status") if args.get("status") in ("open", "closed", "all") else "open",
        "overdue": args.get("overdue") == "1", "mine": args.get("mine") == "1",
        "sort": sort if sort.lstrip("-") in SORTS else "-number",
    }


def _conditions(chosen: dict, actor, moment) -> list:
    out = []
    if chosen["q"]:
        out.append(search.matching(chosen["q"]))
    if chosen["workflow"]:
        out.append(Case.workflow_key == chosen["workflow"])
    if chosen["state"]:
        out.append(Case.state == chosen["state"])
    if chosen["institution"]:
        out.append(Case.institution_id == chosen["institution"])
    if chosen["programme"] and PROGRAMME is not None:
        out.append(PROGRAMME == chosen["programme"])
    if chosen["status"] == "open":
        out.append(Case.closed_at.is_(None))
    elif chosen["status"] == "closed":
        out.append(Case.closed_at.is_not(None))
    if chosen["overdue"]:
        out.append(exists().where(Deadline.case_id == Case.id, late_deadlines(moment)))
    if chosen["mine"]:  # "wacht op mij": what the inbox lists for this reader
        out.append(Case.id.in_({item["case_id"] for item in inbox(db.session, engine(), actor, moment)}))
    return out


def _link(chosen: dict, **change) -> str:
    args = {**chosen, **change}
    args = {k: ("1" if v is True else v) for k, v in args.items() if v not in (None, "", False)}
    if args.get("status") == "open":
        args.pop("status")
    return url_for("ui.case_list", **args)


@ui.get("/cases")
@login_required
def case_list():
    actor, moment = g.actor, now()
    latest = engine().latest(db.session)
    chosen = _filters(request.args, latest)
    page_no = request.args.get("page", default=1, type=int)
    if not 0 < page_no < 10**6:
        abort(404)
    q = data.scoped(actor).where(*_conditions(chosen, actor, moment))
    total = db.session.scalar(select(func.count()).select_from(q.order_by(None).subquery())) or 0
    column = SORTS[chosen["sort"].lstrip("-")]
    order = [column.desc() if chosen["sort"].startswith("-") else column.asc(), Case.id.desc()]
    cases = list(db.session.scalars(q.order_by(*order).offset((page_no - 1) * PER_PAGE).limit(PER_PAGE)).unique())
    rows = data.case_rows(cases, moment, actor)
    log_reads([r.case for r in rows], "list")
    scope = engine().scope(db.session, actor)
    institutions = db.session.execute(select(Institution.id, Institution.name).where(
        Institution.id.in_(select(Case.institution_id).where(scope))).order_by(Institution.name)).all()
    pages = max(1, ceil(total / PER_PAGE))
    sorts = {key: _link(chosen, sort=key if chosen["sort"] != key else f"-{key}", page=None) for key in SORTS}
    html = render_template(
        "cases.html", rows=rows, workflows=sorted(latest.values(), key=lambda d: d.key), chosen=chosen,
        institutions=institutions, programmes=PROGRAMME is not None, total=total, page=page_no, pages=pages,
        first=(page_no - 1) * PER_PAGE + 1 if rows else 0, last=(page_no - 1) * PER_PAGE + len(rows),
        sorts=sorts, sort=chosen["sort"], states=latest[chosen["workflow"]].states if chosen["workflow"] else [],
        prev_url=_link(chosen, page=page_no - 1) if page_no > 1 else None,
        next_url=_link(chosen, page=page_no + 1) if page_no < pages else None,
        workflow=chosen["workflow"], status=chosen["status"])
    db.session.commit()
    return html
