"""One list of open work per user, across all workflows, ordered by urgency.

Reasons: deadline_overdue (the owner, and the owner of the next level), deadline_due (within
the horizon), escalation (a ladder level the user owns), signature_requested, action_required
(a step the user owns: a level they own, or a case they are responsible for). A fixed number
of queries whatever the number of cases.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session, lazyload

from .deadlines import is_late
from .models import DEADLINE_OPEN, Case, Deadline, DeadlineStatus, Document, Signature
from .scope import Actor, triggers_for

ORDER = {"deadline_overdue": 0, "deadline_due": 1, "escalation": 2, "signature_requested": 3, "action_required": 4}
LADDER_PREFIXES = ("escalated_", "reported_")
PAGE = 50  # CONTRACT.md section 9: at most 50 items a page, like every list


def _owned_states(definitions: dict, role_names: set[str]) -> list[tuple[str, list[str]]]:
    owned = []
    for key, d in definitions.items():
        states = [s["name"] for s in d.states if s.get("owner") in role_names and not s["final"]]
        if states:
            owned.append((key, states))
    return owned


def overdue_viewers(definition, state: str, kind: str) -> set[str]:
    """Who sees a passed deadline besides its owner: those its `on_overdue` tells to act (who may act on
    it, tests/test_told_may_act.py), else the owner of the next rung."""
    act, informational = definition.told_when_overdue(kind, state)
    if act or informational:
        return act
    nxt = next_level_owner(definition, state)
    return {nxt} if nxt else set()


def next_level_owner(definition, state: str) -> str | None:
    """The owner of the next rung: who sees a passed deadline whose definition names nobody to tell."""
    step = definition.escalation(state)
    if step:
        owner = definition.state(step.dest).get("owner")
        if owner:
            return owner
    return definition.next_rung


def awaiting_signature(session: Session, scope, actor: Actor) -> list[tuple[Document, Case]]:
    """The newest version of each document on an open case that still waits for this actor's signature,
    and the letters the closing step wrote for its signers (an outcome report, signed after closing)."""
    # Decided on plain columns first: an opleider's cases may carry thousands of documents, and only
    # the few that wait for them are loaded whole (two statements, whatever waits).
    signed = exists().where(Signature.document_id == Document.id, Signature.signer_id == actor.id)
    rows = session.execute(
        select(Document.id, Document.case_id, Document.kind, Document.required_signer_ids, signed.label("signed"))
        .join(Case, Case.id == Document.case_id)
        .where(scope, or_(Case.closed_at.is_(None), Document.created_at >= Case.closed_at),
               or_(Case.subject_id == actor.id, Case.responsible_id == actor.id, Case.opened_by_id == actor.id))
        .order_by(Document.case_id, Document.kind, Document.version)
    ).all()
    newest: dict[tuple, tuple] = {}
    for row in rows:
        newest[(row.case_id, row.kind)] = row
    wanted = [row.id for row in newest.values() if actor.id in (row.required_signer_ids or []) and not row.signed]
    # Always this statement, and without the signatures (known above): the same count whatever waits.
    found = session.execute(select(Document, Case).join(Case, Case.id == Document.case_id)
                            .where(Document.id.in_(wanted)).options(lazyload(Document.signatures))).unique().all()
    order = {i: n for n, i in enumerate(wanted)}
    return sorted(found, key=lambda pair: order[pair[0].id])


def _todo(definitions: dict):
    """Deadlines that are work from the start (agreed actions): a SQL condition, or None."""
    clauses = [and_(Case.workflow_key == key, or_(*(Deadline.kind.like(kind.replace("_", r"\_") + r"\_%", escape="\\")
                                                   for kind in sorted(d.todo_kinds))))
               for key, d in definitions.items() if d.todo_kinds]
    return or_(*clauses) if clauses else None


def _owned_item(definition, case, roles: set[str]) -> tuple[str, str] | None:
    """(reason, detail) of a case whose step the user owns, or None when none of their roles may act on it."""
    if not triggers_for(definition, case.state, roles):
        return None
    state = definition.state(case.state)
    owner = state.get("owner")
    reason = "escalation" if owner and owner in roles and case.state.startswith(LADDER_PREFIXES) else "action_required"
    return reason, state.get("label", case.state)


def _owned_stream(session: Session, engine, actor: Actor, scope, where, reason: str, after_id: int,
                  want: int | None) -> list[dict]:
    """The cases a step of which the user owns, for one reason, in case order after `after_id`: at most `want`
    items (None: all), read in chunks so that an owner of two thousand cases costs a page, not two thousand."""
    me, out = actor.id, []
    # What a case asks of this user depends only on its definition, state and the user's roles on it, and
    # those only on where the case is and whether the user is its subject, opener or responsible: decided
    # once per such combination, not once per case.
    decided: dict[tuple, tuple | None] = {}
    chunk = None if want is None else max(2 * want, 100)
    while True:
        rows = session.execute(
            select(Case.id, Case.workflow_key, Case.state, Case.title, Case.definition_id, Case.institution_id,
                   Case.region_id, Case.subject_id, Case.opened_by_id, Case.responsible_id, Case.programme)
            .where(scope, Case.closed_at.is_(None), where, Case.id > after_id).order_by(Case.id).limit(chunk)
        ).all()
        by_id = engine.definitions_by_id(session, {c.definition_id for c in rows})
        for case in rows:
            key = (case.definition_id, case.state, case.institution_id, case.region_id, case.programme,
                   case.subject_id == me, case.opened_by_id == me, case.responsible_id == me)
            if key not in decided:
                decided[key] = _owned_item(by_id[case.definition_id], case, actor.roles_on(case))
            if decided[key] is not None and decided[key][0] == reason:
                out.append(_item(case, reason, detail=decided[key][1]))
                if want is not None and len(out) >= want:
                    return out
        if chunk is None or len(rows) < chunk:
            return out
        after_id = rows[-1].id


def _item(case, reason: str, due_at=None, detail: str = "", deadline_id=None, document_id=None) -> dict:
    return {"case_id": case.id, "workflow": case.workflow_key, "state": case.state, "reason": reason,
            "due_at": due_at, "title": case.title, "detail": detail, "deadline_id": deadline_id,
            "document_id": document_id}


def _start_after(reason: str, after: tuple | None) -> int | None:
    """Where a stream of owned cases (due_at: none) starts after the cursor: a case id, or None when the
    cursor is past every item of this reason."""
    if after is None or ORDER[reason] > after[0]:
        return 0
    if ORDER[reason] < after[0]:
        return None
    return after[2] if after[1] == _FAR else 0  # a cursor on a dated item of this reason precedes them all


def inbox_page(session: Session, engine, actor: Actor, now: datetime, after: tuple | None = None,
               limit: int | None = PAGE, horizon_days: int = 14) -> tuple[list[dict], tuple | None]:
    """One page of the inbox: the items after `after` (a `position`), and the position to start the next at
    (None: this was the last page). `limit` None: every item.

    A position, not an offset: an item that was done meanwhile shifts nothing on the following page. The
    dated items (deadlines) and the signatures are few by nature and read whole; the owned cases, which an
    opleider may have by the thousand, are read only as far as the page needs.
    """
    definitions = engine.latest(session)
    scope = engine.scope(session, actor)
    role_names = {role for role, *_ in actor.assignments}
    items: dict[tuple, dict] = {}

    def add(case: Case, reason: str, due_at=None, detail: str = "", deadline_id=None, document_id=None):
        items[(case.id, reason, deadline_id, document_id)] = _item(case, reason, due_at, detail, deadline_id,
                                                                   document_id)

    # Deadlines: due soon or passed, for their owner and (when passed) whoever may act on it; work from
    # the start (an agreed action) for its owner until it is met.
    shown = [Deadline.status == DeadlineStatus.OVERDUE, Deadline.due_at <= now + timedelta(days=horizon_days)]
    todo = _todo(definitions)
    if todo is not None:
        shown.append(todo)
    rows = session.execute(
        select(Deadline, Case).join(Case, Case.id == Deadline.case_id)
        .where(scope, Deadline.status.in_(DEADLINE_OPEN), or_(*shown))
        .order_by(Deadline.due_at)
    ).unique().all()
    for deadline, case in rows:
        definition = engine.definition(case.definition)
        roles = actor.roles_on(case)
        owner = deadline.owner_role
        if owner == "owner":
            owner = definition.state(case.state).get("owner") or ""
        overdue = is_late(deadline, now)
        mine = owner in roles
        if overdue and not mine:
            mine = bool(overdue_viewers(definition, case.state, deadline.kind) & roles)
        if not mine:
            continue
        if overdue or deadline.due_at <= now + timedelta(days=horizon_days):
            add(case, "deadline_overdue" if overdue else "deadline_due", deadline.due_at, deadline.label,
                deadline_id=deadline.id)
        else:  # an agreed action, not yet due: the owner's work all the same
            add(case, "action_required", deadline.due_at, deadline.label, deadline_id=deadline.id)

    for doc, case in awaiting_signature(session, scope, actor):
        title = engine.definition(case.definition).documents.get(doc.kind, {}).get("title", doc.kind)
        add(case, "signature_requested", detail=engine.text("inbox.document", title=title, version=doc.version),
            document_id=doc.id)

    found = [i for i in items.values() if after is None or position(i) > after]
    # Steps the user owns: levels owned by one of their roles, or cases they are responsible for.
    owned = _owned_states(definitions, role_names)
    ownership = or_(Case.responsible_id == actor.id,
                    *(and_(Case.workflow_key == key, Case.state.in_(states)) for key, states in owned))
    ladder = [and_(Case.workflow_key == key, Case.state.in_([s for s in states if s.startswith(LADDER_PREFIXES)]))
              for key, states in owned if any(s.startswith(LADDER_PREFIXES) for s in states)]
    want = None if limit is None else limit + 1
    for reason, where in (("escalation", or_(*ladder) if ladder else None), ("action_required", ownership)):
        start = _start_after(reason, after)
        if where is not None and start is not None:
            found += _owned_stream(session, engine, actor, scope, where, reason, start, want)
    found.sort(key=position)
    if limit is None:
        return found, None
    page = found[:limit]
    return page, (position(page[-1]) if len(found) > limit else None)


def inbox(session: Session, engine, actor: Actor, now: datetime, horizon_days: int = 14) -> list[dict]:
    """Every item of the user's inbox, most urgent first."""
    return inbox_page(session, engine, actor, now, limit=None, horizon_days=horizon_days)[0]


_FAR = datetime.max.replace(tzinfo=timezone.utc)


def position(item: dict) -> tuple:
    """Where an item stands in the inbox: most urgent first; unique, so that a page can start after one."""
    return (ORDER[item["reason"]], item["due_at"] or _FAR, item["case_id"], item["deadline_id"] or 0,
            item["document_id"] or 0)
