"""What the pages show, read with a fixed number of queries per page (never one per case).

Every case query goes through the engine's scope; the region overview is the one
deliberate exception and returns counts only (no names, small cells hidden).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, or_, select

from engine.models import (
    DEADLINE_OPEN,
    AuditEvent,
    DeadlineStatus,
    Case,
    Deadline,
    Document,
    Institution,
    RoleAssignment,
    User,
)
from engine.deadlines import is_late
from engine.disclosure import Disclosure
from engine.inbox import awaiting_signature as waiting
from engine.overview import figures, ladders
from engine.scope import Actor
from workflows.roles import OVERVIEW_ROLES, SUPERUSER_ROLES

from ..extensions import db
from ..runtime import engine
from . import i18n



@dataclass
class CaseRow:
    case: Case
    definition: object
    subject_name: str = ""
    deadlines: list = field(default_factory=list)  # open deadlines, earliest first
    late: int = 0
    triggers: list = field(default_factory=list)

    @property
    def workflow(self) -> str:
        return i18n.title(self.definition)

    @property
    def state(self) -> str:
        return i18n.state_label(self.definition, self.case.state)

    @property
    def next_deadline(self) -> Deadline | None:
        return self.deadlines[0] if self.deadlines else None

    @property
    def heading(self) -> str:
        return self.case.title or self.workflow


def scoped(actor: Actor):
    return select(Case).where(engine().scope(db.session, actor))


def names(ids) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return dict(db.session.execute(select(User.id, User.name).where(User.id.in_(ids))).all())


def case_rows(cases: list[Case], now: datetime, actor: Actor | None = None) -> list[CaseRow]:
    """Cases with their open deadlines and subjects' names: two queries, whatever the number of cases."""
    if not cases:
        return []
    eng = engine()
    ids = [c.id for c in cases]
    by_case = defaultdict(list)
    for d in db.session.scalars(select(Deadline).where(Deadline.case_id.in_(ids), Deadline.status.in_(DEADLINE_OPEN))
                                .order_by(Deadline.due_at)):
        by_case[d.case_id].append(d)
    who = names(c.subject_id for c in cases)
    rows = []
    for c in cases:
        definition = eng.definition(c.definition)
        deadlines = by_case[c.id]
        overdue = {d.kind for d in deadlines if d.status == DeadlineStatus.OVERDUE}
        rows.append(CaseRow(case=c, definition=definition, subject_name=who.get(c.subject_id, ""),
                            deadlines=deadlines, late=sum(is_late(d, now) for d in deadlines),
                            triggers=triggers(c, actor, overdue) if actor else []))
    return rows


def triggers(case: Case, actor: Actor, overdue=False) -> list[str]:
    """What this actor may fire now; `overdue`: the kinds of the case's passed deadlines (only the level's
    own response term counts, Engine.available_triggers)."""
    try:
        return engine().available_triggers(case, actor, overdue=overdue)
    except TypeError:  # an engine without escalation owners
        return engine().available_triggers(case, actor)


def urgent_first(rows: list[CaseRow]) -> list[CaseRow]:
    far = datetime.max.replace(tzinfo=None)

    def key(r: CaseRow):
        nxt = r.next_deadline
        return (0 if r.late else 1, nxt.due_at.replace(tzinfo=None) if nxt else far, -r.case.id)

    return sorted(rows, key=key)


def institutions_for(actor: Actor, role: str) -> list[int]:
    return [inst for r, inst, *_ in actor.assignments if r == role and inst is not None]


def regions_for(actor: Actor, roles=OVERVIEW_ROLES + SUPERUSER_ROLES) -> list[int]:
    """The regions whose overview the pages show this actor: an administrator's own region(s) too."""
    return sorted({region for r, _, region, *_ in actor.assignments if r in roles})


def workflow_keys(category: str | None = None, visible_to: str | None = None) -> list[str]:
    out = []
    for key, d in engine().latest(db.session).items():
        if category and d.category != category:
            continue
        if visible_to and visible_to not in d.visibility:
            continue
        out.append(key)
    return sorted(out)


def openable(actor: Actor) -> list:
    """Workflows this actor may open from a page: for an aios of theirs, or about an institution.

    Workflows that are opened from another case (a dispute about a decision) are not listed here.
    """
    roles = {r for r, *_ in actor.assignments}
    out = []
    for _, d in sorted(engine().latest(db.session).items()):
        allowed = set(d.open.roles)
        if not (allowed & roles or ("*" in allowed and roles)):
            continue
        if any(req.get("guard") == "parent_is" for req in d.open.requires):
            continue
        out.append(d)
    return out


def for_aios(definition) -> bool:
    return definition.subject.get("role") == "aios" and definition.subject.get("required")


def institutions_in_regions(actor: Actor) -> list[tuple[int, str]]:
    regions = sorted({region for _, _, region, *_ in actor.assignments})
    if not regions:
        return []
    return db.session.execute(select(Institution.id, Institution.name).where(Institution.region_id.in_(regions))
                              .order_by(Institution.name)).all()


def aios_of(institution_ids: list[int]) -> list[tuple[int, str, int, str]]:
    """(user id, name, institution id, institution name) of the active aios at these institutions."""
    if not institution_ids:
        return []
    return db.session.execute(
        select(User.id, User.name, Institution.id, Institution.name)
        .join(RoleAssignment, RoleAssignment.user_id == User.id)
        .join(Institution, Institution.id == RoleAssignment.institution_id)
        .where(RoleAssignment.role == "aios", RoleAssignment.institution_id.in_(institution_ids),
               User.active.is_(True))
        .order_by(Institution.name, User.name)).all()


@dataclass
class Pending:
    document: Document
    case: Case
    definition: object

    @property
    def title(self) -> str:
        return i18n.title(self.definition.documents.get(self.document.kind, {}), self.document.kind)


def awaiting_signature(actor: Actor) -> list[Pending]:
    """The newest version of each document that waits for this actor's signature."""
    return [Pending(doc, case, engine().definition(case.definition))
            for doc, case in waiting(db.session, engine().scope(db.session, actor), actor)]


def count_scoped(actor: Actor, *conditions) -> int:
    return db.session.scalar(select(func.count()).select_from(Case)
                             .where(engine().scope(db.session, actor), *conditions)) or 0


# -- the case page ---------------------------------------------------------------------------


@dataclass
class CasePage:
    case: Case
    definition: object
    events: list
    deadlines: list
    documents: dict  # kind -> versions, newest last
    people: dict
    related: list  # (Case) parent and children that this actor may see
    triggers: list
    roles: set
    shown: Disclosure  # what this reader may see of the confidential fields


def case_page(actor: Actor, case: Case) -> CasePage:
    eng = engine()
    definition = eng.definition(case.definition)
    events = list(db.session.scalars(select(AuditEvent).where(AuditEvent.case_id == case.id)
                                     .order_by(AuditEvent.seq)))
    deadlines = list(db.session.scalars(select(Deadline).where(Deadline.case_id == case.id)
                                        .order_by(Deadline.due_at, Deadline.id)))
    documents: dict[str, list[Document]] = defaultdict(list)
    for doc in db.session.scalars(select(Document).where(Document.case_id == case.id)
                                  .order_by(Document.kind, Document.version)):
        documents[doc.kind].append(doc)
    related_q = scoped(actor).where(or_(Case.parent_id == case.id, Case.id == case.parent_id) if case.parent_id
                                    else Case.parent_id == case.id).order_by(Case.id)
    related = list(db.session.scalars(related_q).unique())
    people_ids = {case.subject_id, case.opened_by_id, case.responsible_id}
    people_ids |= {e.actor_id for e in events}
    people_ids |= {uid for docs in documents.values() for d in docs for uid in d.required_signer_ids or []}
    people_ids |= {s.signer_id for docs in documents.values() for d in docs for s in d.signatures}
    overdue = {d.kind for d in deadlines if d.status == DeadlineStatus.OVERDUE}
    return CasePage(case=case, definition=definition, events=events, deadlines=deadlines, documents=dict(documents),
                    people=names(people_ids), related=related, triggers=triggers(case, actor, overdue),
                    roles=actor.roles_on(case), shown=eng.disclosure(case, actor))


# -- the region overview: counts only ------------------------------------------------------------


@dataclass
class Overview:
    institutions: list  # (id, name)
    by_institution: dict  # institution id -> open count
    by_state: list  # (workflow key, state, count) open, in definition order
    table: dict  # (institution id, workflow key, state) -> count
    late_by_institution: dict
    organisational: list  # (workflow key, state, count) of escalation-type workflows
    months: list  # date (first of month)
    opened: list  # per month: (personal trajectories, other cases); shown banded (engine/overview.py)
    closed: list
    total_open: int = 0
    total_late: int = 0


def overview(actor: Actor, now: datetime, months: int = 12) -> Overview:
    """The open cases of the engine's overview (engine/overview.py), shaped for the pages: four queries."""
    regions = regions_for(actor)
    latest = engine().latest(db.session)
    f = figures(db.session, engine(), regions, now, months)
    ladder_keys = ladders(latest)  # the escalation levels: the same workflows as the API's
    insts = [(i, name) for i, _code, name, region in f.institutions if region in regions]
    table: dict = {}
    by_inst: dict = defaultdict(int)
    by_state: dict = defaultdict(int)
    for (key, state, inst_id), (_n, n) in f.cells.items():
        if not n:  # closed cases only: not on the pages
            continue
        table[(inst_id, key, state)] = n
        by_inst[inst_id] += n
        by_state[(key, state)] += n
    ordered = []
    for key, d in sorted(latest.items()):
        for s in d.state_names:
            if (key, s) in by_state or (key in ladder_keys and s not in d.final_states):
                ordered.append((key, s, by_state.get((key, s), 0)))
    for (key, s), n in sorted(by_state.items()):
        if key not in latest:  # a workflow no longer defined still counts
            ordered.append((key, s, n))
    organisational = [(k, s, n) for k, s, n in ordered if k in ladder_keys]
    late: dict = defaultdict(int)
    for (_key, inst_id), n in f.late.items():  # a case has one workflow: the sum counts each case once
        late[inst_id] += n
    return Overview(institutions=insts, by_institution=dict(by_inst),
                    by_state=[(k, s, n) for k, s, n in ordered if n], table=table, late_by_institution=dict(late),
                    organisational=organisational, months=[date(int(m[:4]), int(m[5:]), 1) for m in f.months],
                    opened=f.opened, closed=f.closed,
                    total_open=sum(by_inst.values()), total_late=sum(late.values()))
