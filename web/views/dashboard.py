"""The start page: one section per role the user holds, each with a fixed number of queries."""
from __future__ import annotations

from types import SimpleNamespace

from flask import abort, g, render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from sqlalchemy import or_, select

from engine import overview
from engine.inbox import inbox_page
from engine.models import Case, Deadline, Institution, User, WorkflowDefinition
from workflows.roles import ROLES

from .. import svg
from ..access_log import log_reads
from ..extensions import db
from ..runtime import engine, now
from . import data, forms, i18n
from .blueprint import ui

LIST_LIMIT = 100


def _roles(actor) -> list[str]:
    held = {r for r, *_ in actor.assignments}
    return [r for r in ROLES if r in held]  # in the catalogue's order


def _listed(rows):
    """Listing personal cases is reading them: the dashboard logs every case it lists in one statement."""
    g.setdefault("listed", []).extend(r.case for r in rows)
    return rows


@ui.get("/")
@login_required
def dashboard():
    actor, moment = g.actor, now()
    sections = []
    for role in _roles(actor):
        section = BUILDERS[role](actor, moment)
        section["role"] = role
        sections.append(section)
    signatures = data.awaiting_signature(actor)
    todo = _todo(actor, moment)
    log_reads(list({c.id: c for c in [*g.get("listed", []), *(p.case for p in signatures)]}.values()), "list")
    report = [d for d in data.openable(actor) if not data.for_aios(d)]
    page = render_template("dashboard.html", sections=sections, signatures=signatures, report=report, todo=todo)
    db.session.commit()  # the access log of the cases listed
    return page


# Why a case waits for the reader (engine/inbox.py's reasons); signatures have a card of their own.
TODO_REASONS = {"deadline_overdue": _l("Overdue"), "deadline_due": _l("Due soon"),
                "escalation": _l("Escalated to you"), "action_required": _l("Your step")}


def _todo(actor, moment) -> list[dict]:
    """"Te doen": what waits for this reader, with the reason and the date, most urgent first."""
    items, after = [], None
    while True:  # pages of the inbox, as far as the card needs (an opleider may own two thousand cases)
        page, after = inbox_page(db.session, engine(), actor, moment, after, LIST_LIMIT)
        items += [i for i in page if i["reason"] in TODO_REASONS]
        if len(items) >= LIST_LIMIT or after is None:
            break
    cases = {c.id: c for c in db.session.scalars(select(Case).where(Case.id.in_({i["case_id"] for i in items})))}
    g.setdefault("listed", []).extend(cases.values())
    ids = {i["deadline_id"] for i in items if i.get("deadline_id")}
    deadlines = {d.id: d for d in db.session.scalars(select(Deadline).where(Deadline.id.in_(ids)))} if ids else {}
    return [{"case": cases[i["case_id"]], "reason": TODO_REASONS[i["reason"]], "late": i["reason"] ==
             "deadline_overdue", "detail": _todo_detail(i, cases[i["case_id"]], deadlines), "due_at": i.get("due_at")}
            for i in items if i["case_id"] in cases][:LIST_LIMIT]


def _todo_detail(item: dict, case: Case, deadlines: dict) -> str:
    """The item's words in the reader's language (the inbox carries the engine's Dutch ones)."""
    definition = engine().definition(case.definition)
    deadline = deadlines.get(item.get("deadline_id"))
    if deadline is not None:
        return i18n.deadline_label(deadline, definition)
    return i18n.state_label(definition, case.state) if item["reason"] in ("escalation", "action_required") else ""


def _open_rows(actor, moment, *conditions, limit=LIST_LIMIT):
    cases = list(db.session.scalars(data.scoped(actor).where(Case.closed_at.is_(None), *conditions)
                                    .order_by(Case.id.desc()).limit(limit)).unique())
    return _listed(data.urgent_first(data.case_rows(cases, moment, actor)))


def opleider(actor, moment) -> dict:
    insts = data.institutions_for(actor, "opleider")
    mine = _open_rows(actor, moment, or_(Case.responsible_id == actor.id, Case.opened_by_id == actor.id))
    total = data.count_scoped(actor, Case.closed_at.is_(None), Case.institution_id.in_(insts))
    workflows = [d for d in data.openable(actor) if data.for_aios(d) and "opleider" in d.open.roles]
    # the intern begeleidingstraject is where guidance usually starts; a GBT mostly follows from it
    workflows.sort(key=lambda d: (d.key != "internal_guidance", d.key))
    return {
        "rows": mine,
        "others": max(total - len(mine), 0),
        "open_form": open_form(workflows[0], actor) if workflows else None,
        "workflows": workflows,
    }


def open_form(definition, actor, values=None, errors=None, general=None) -> dict:
    """The 'open' form: an aios of my institution (or the institution concerned), a title, the opening input."""
    by_aios = data.for_aios(definition)
    insts = [inst for r, inst, *_ in actor.assignments if r in definition.open.roles and inst is not None]
    return SimpleNamespace(
        definition=definition,
        by_aios=by_aios,
        aios=data.aios_of(insts) if by_aios else [],
        institutions=[] if by_aios else data.institutions_in_regions(actor),
        fields=forms.build(definition.open.input, "data", "open", values or {}, errors or {}, False),
        values=values or {},
        errors=errors or {},
        general=general or [],
        label=i18n.label(definition.open, _("Open")),
    )


def aios(actor, moment) -> dict:
    cases = list(db.session.scalars(data.scoped(actor).where(Case.subject_id == actor.id)
                                    .order_by(Case.closed_at.is_not(None), Case.id.desc()).limit(LIST_LIMIT)).unique())
    rows = _listed(data.case_rows(cases, moment, actor))
    upcoming = sorted(((d, r) for r in rows for d in r.deadlines), key=lambda pair: pair[0].due_at)
    return {"rows": rows, "upcoming": upcoming}


def coc_chair(actor, moment) -> dict:
    insts = data.institutions_for(actor, "coc_chair")
    organisational = data.workflow_keys("organisational")
    rows = _open_rows(actor, moment, Case.institution_id.in_(insts))
    escalations = [r for r in rows if r.case.workflow_key in organisational]
    trajectories = [r for r in rows if r.case.workflow_key not in organisational]
    late = [(d, r) for r in rows for d in r.deadlines if data.is_late(d, moment)]
    return {
        "rows": trajectories,
        "inbox": [r for r in escalations if r.triggers],
        "escalations": [r for r in escalations if not r.triggers],
        "escalations_defined": "escalation" in engine().latest(db.session),
        "late": sorted(late, key=lambda pair: pair[0].due_at),
    }


def hr(actor, moment) -> dict:
    keys = data.workflow_keys(visible_to="hr")
    cases = list(db.session.scalars(data.scoped(actor).where(Case.workflow_key.in_(keys))
                                    .order_by(Case.closed_at.is_not(None), Case.id.desc()).limit(LIST_LIMIT)).unique())
    return {"rows": _listed(data.case_rows(cases, moment, actor)), "read_only": True}


def _ladder(actor, moment, *conditions) -> dict:
    keys = data.workflow_keys("organisational")
    rows = _open_rows(actor, moment, Case.workflow_key.in_(keys), *conditions) if keys else []
    return {"rows": rows, "ladders_defined": bool(keys)}


def rvb(actor, moment) -> dict:
    return _ladder(actor, moment, Case.institution_id.in_(data.institutions_for(actor, "rvb")))


def rso_board(actor, moment) -> dict:
    return _ladder(actor, moment)


def r_coc_chair(actor, moment) -> dict:
    return _ladder(actor, moment)


def regio_bestuur(actor, moment) -> dict:
    return {**_ladder(actor, moment), "overview": charts(data.overview(actor, moment))}


def vertrouwenspersoon(actor, moment) -> dict:
    return {"rows": _open_rows(actor, moment)}


def admin(actor, moment) -> dict:
    from sqlalchemy import func, select

    counts = {
        "users": db.session.scalar(select(func.count()).select_from(User)),
        "institutions": db.session.scalar(select(func.count()).select_from(Institution)),
        "definitions": db.session.scalar(select(func.count()).select_from(WorkflowDefinition)),
        "open_cases": db.session.scalar(select(func.count()).select_from(Case).where(Case.closed_at.is_(None))),
    }
    return {"counts": counts}


BUILDERS = {
    "opleider": opleider, "plv_opleider": opleider, "aios": aios, "coc_chair": coc_chair, "hr": hr, "rvb": rvb,
    "rso_board": rso_board, "rso_chair": rso_board, "r_coc_chair": r_coc_chair, "regio_bestuur": regio_bestuur, "vertrouwenspersoon": vertrouwenspersoon,
    "admin": admin,
}


# -- the overview's charts ---------------------------------------------------------------------


def charts(ov: data.Overview) -> dict:
    latest = engine().latest(db.session)

    def state_name(key, state):
        d = latest.get(key)
        return i18n.state_label(d, state) if d else state

    def workflow_name(key):
        d = latest.get(key)
        return i18n.title(d) if d else key

    def grouped(triples):
        rows, current = [], None
        for key, state, n in triples:
            if key != current:
                rows.append((workflow_name(key), None))
                current = key
            rows.append((state_name(key, state), *n) if isinstance(n, tuple) else (state_name(key, state), n))
        return rows

    # A total over hidden cells would give them away (total minus the visible ones): such totals are
    # shown as the range the visible cells allow (svg.bounded), per institution, per state and overall.
    inst_total = {iid: svg.bounded([n for (i, _k, _s), n in ov.table.items() if i == iid])
                  for iid, _name in ov.institutions}
    state_total = {(k, s): svg.bounded([ov.table.get((iid, k, s), 0) for iid, _name in ov.institutions])
                   for k, s, _n in ov.by_state}
    inst_rows = [(name, *inst_total[iid]) for iid, name in ov.institutions]
    state_rows = grouped([(k, s, state_total[(k, s)]) for k, s, _n in ov.by_state])
    late_rows = [(name, ov.late_by_institution.get(iid, 0)) for iid, name in ov.institutions]
    months = [i18n.fmt_month(m) for m in ov.months]
    # the table behind the first two charts: institution × (workflow, state)
    columns = [(k, s) for k, s, _ in ov.by_state]
    table = {
        "columns": [(workflow_name(k), state_name(k, s)) for k, s in columns],
        "rows": [(name, [svg.shown(ov.table.get((iid, k, s), 0)) for k, s in columns],
                  inst_total[iid][1], svg.shown(ov.late_by_institution.get(iid, 0)))
                 for iid, name in ov.institutions],
    }
    escalation_rows = []
    for key in dict.fromkeys(k for k, _s, _n in ov.organisational):
        levels = [(k, st, n) for k, st, n in ov.organisational if k == key]
        if any(n for _k, _st, n in levels):
            escalation_rows += grouped(levels)
        else:  # a ladder with nothing open: one line, not a column of zeros
            escalation_rows += [(workflow_name(key), None), (_("nothing open"), 0)]
    return {
        "ov": ov,
        "table": table,
        "total_open": svg.bounded(list(ov.table.values()))[1],
        "total_late": svg.bounded(list(ov.late_by_institution.values()))[1],
        "threshold": svg.threshold(),
        "by_institution": svg.hbar_chart(inst_rows, _("Open cases per institution"),
                                         _("Bar chart of the number of open cases per institution."), "ch-inst"),
        "by_state": svg.hbar_chart(state_rows, _("Open cases per state"),
                                   _("Bar chart of the number of open cases per workflow and state."), "ch-state",
                                   "s1"),
        "late": svg.hbar_chart(late_rows, _("Cases with overdue deadlines per institution"),
                               _("Bar chart of the number of cases with an overdue deadline per institution."),
                               "ch-late", "s3"),
        "escalations": svg.hbar_chart(escalation_rows, _("Escalation levels"),
                                      _("Bar chart of the number of open escalation cases per level."), "ch-esc",
                                      "s2") if escalation_rows else None,
        **_trend(ov, months),
    }


def _trend(ov: data.Overview, months: list[str]) -> dict:
    """Opened and closed per month; a month with personal trajectories is banded, as in the API (engine/overview.py)."""
    small = svg.threshold()
    opened = [overview.banded(*part, small) for part in ov.opened]
    closed = [overview.banded(*part, small) for part in ov.closed]
    return {
        "trend": svg.column_chart(months, [(_("opened"), "s0", [b[0] for b in opened]),
                                           (_("closed"), "s1", [b[0] for b in closed])],
                                  _("Cases opened and closed per month"),
                                  _("Column chart of the cases opened and closed in each of the last twelve months."),
                                  "ch-trend"),
        "trend_rows": list(zip(months, [b[2] for b in opened], [b[2] for b in closed])),
    }


@ui.get("/overview")
@login_required
def overview_page():
    if not data.regions_for(g.actor):
        abort(404)
    return render_template("overview.html", overview=charts(data.overview(g.actor, now())))


# -- every case in scope -------------------------------------------------------------------------



