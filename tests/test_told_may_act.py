"""One rule for every ladder level (CONTRACT.md section 8): whoever is told that a level's response term
passed may act on it, and whoever may act is told and sees it in the inbox.

The matrix is generated from the definitions: every non-final state of every ladder × every role of the
catalogue. Each state is reached by walking the real engine from the opening, the level's term is
swept overdue by the real sweep, and then, for each role's holder, three things are read from the
engine: the outbox rows the sweep wrote (told), the inbox items (sees it), the permitted triggers
(may act). Recipients the definition marks `informational` are told but need not act.
States without a response term of their own give nobody overdue rights.
"""
from __future__ import annotations

from collections import deque
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.deadlines import sweep
from engine.inbox import inbox
from engine.models import Case, Deadline, Notification, User
from flows import with_rso_chair
from web.extensions import db
from workflows import load_definitions


@pytest.fixture
def world(world):
    """conftest's world with a voorzitter RSO, the owner of escalated_rso_chair."""
    return with_rso_chair(world)


LADDERS = ("escalation", "rso_quality", "rso_obligations", "rso_consultation")
# The test world's holder of each role (tests/conftest.py): the hospital roles at meander, the case's institution.
HOLDERS = {"opleider": "opleider", "aios": "aios", "coc_chair": "coc", "hr": "hr", "rvb": "rvb", "rso_board": "rso",
           "rso_chair": "rso_chair", "r_coc_chair": "rcoc", "regio_bestuur": "regio", "vertrouwenspersoon": "vp",
           "admin": "admin"}
OPENERS = {"escalation": {"description": "Supervisie 's avonds onvoldoende"},
           "rso_quality": {"shortcoming": "Supervisie voldoet niet"},
           "rso_obligations": {"shortcoming": "Rooster niet aangeleverd"},
           "rso_consultation": {"shortcoming": "Supervisie voldoet niet", "requirement": "quality"}}


def _value(spec: dict):
    """A plausible value for a step's input field (every field, required or not)."""
    kind = spec["type"]
    if spec.get("must_be") is not None:
        return spec["must_be"]
    if kind == "boolean":
        return True
    if kind == "date":
        return "2026-06-01"
    if kind == "choice":
        return spec["choices"][0]
    if kind == "list" and (spec.get("items") or {}).get("type") == "object":
        return [{name: _value(sub) for name, sub in spec["items"]["fields"].items()}]
    if kind == "list":
        return ["x"]
    return "Vastgelegd in de test"


def _inputs(step) -> dict:
    # integers name people (concerns_user_id) and choices_from fields name items: neither is needed to move on
    return {name: _value(spec) for name, spec in step.input.items()
            if spec["type"] != "integer" and not spec.get("choices_from")}


def _paths(definition) -> dict[str, list[str]]:
    """The shortest walk (triggers) from the opening to every state, moving only between states."""
    start = definition.open.dest
    paths, queue = {start: []}, deque([start])
    while queue:
        state = queue.popleft()
        for step in definition.transitions:
            if state in step.sources and step.dest != state and step.dest not in paths:
                paths[step.dest] = paths[state] + [(step.trigger, state)]
                queue.append(step.dest)
    return paths


def _cells():
    for definition in load_definitions():
        if definition.key in LADDERS:
            for state, path in _paths(definition).items():
                if state not in definition.final_states:
                    yield pytest.param(definition.key, state, path, id=f"{definition.key}-{state}")


def _walk(world, key: str, path) -> int:
    eng = world.app.extensions["traject"]
    with world.app.app_context():
        opener = eng.actor_for(db.session.get(User, world.users["rso"]))
        case = eng.open_case(db.session, opener, workflow=key, institution="meander", title="Ladder",
                             data=OPENERS[key])
        definition = eng.definition(case.definition)
        holders = _holders(world)
        for trigger, source in path:
            # any holder the step allows: the walk is about arriving, not about who
            actor = next(a for a in holders.values() if trigger in eng.available_triggers(case, a))
            eng.fire(db.session, actor, case.id, trigger, case.version, _inputs(definition.step(trigger, source)))
        db.session.commit()
        return case.id


def _holders(world) -> dict[str, object]:
    eng = world.app.extensions["traject"]
    return {role: eng.actor_for(db.session.get(User, world.users[name])) for role, name in HOLDERS.items()}


@pytest.mark.parametrize("key,state,path", list(_cells()))
def test_whoever_is_told_a_level_term_passed_may_act_and_sees_it_and_the_other_way_round(world, key, state, path):
    case_id = _walk(world, key, path)
    eng = world.app.extensions["traject"]
    with world.app.app_context():
        case = db.session.get(Case, case_id)
        assert case.state == state
        definition = eng.definition(case.definition)
        holders = _holders(world)
        kinds = definition.level_kinds(state)
        if not kinds:  # no response term of its own: a passed date elsewhere gives nobody extra rights
            for role, actor in holders.items():
                assert eng.available_triggers(case, actor, overdue=True) == eng.available_triggers(case, actor), role
            return
        [term] = db.session.scalars(select(Deadline).where(Deadline.case_id == case_id, Deadline.kind.in_(kinds),
                                                           Deadline.status.in_(("pending", "reminded")))).all()
        moment = term.due_at + timedelta(minutes=1)
        sweep(db.session, eng, moment)
        db.session.commit()
        rows = db.session.scalars(select(Notification).where(
            Notification.idempotency_key.like(f"deadline:{term.id}:overdue:%"))).all()
        _act, informational = definition.told_when_overdue(term.kind)
        told = {n.recipient_user_id for n in rows if n.recipient_role not in informational}
        case = db.session.get(Case, case_id)
        overdue = {d.kind for d in db.session.scalars(select(Deadline).where(Deadline.case_id == case_id,
                                                                             Deadline.status == "overdue"))}
        matrix = {}
        for role, actor in holders.items():
            may_act = bool(eng.available_triggers(case, actor, overdue=overdue))
            sees = any(item["deadline_id"] == term.id and item["reason"] == "deadline_overdue"
                       for item in inbox(db.session, eng, actor, moment))
            matrix[role] = (actor.id in told, may_act, sees)
        wrong = {role: cell for role, cell in matrix.items() if len(set(cell)) != 1}
        assert not wrong, f"{key}/{state}: (told, may act, sees it) per role: {wrong}"
        assert any(all(cell) for cell in matrix.values())  # somebody can act on every level
        # informational recipients are told, and are not among those who act
        got = {n.recipient_role for n in rows}
        assert informational <= got and not any(matrix[r][1] for r in informational if r in matrix)


def test_only_the_current_levels_term_gives_the_r_coc_chair_overdue_rights(world):
    """An agreed action's passed date (an old deadline on the case) does not let the R-COC chair skip a level."""
    case_id = _walk(world, "escalation", [("discuss", "signalled"), ("agree_actions", "discussion")])
    eng = world.app.extensions["traject"]
    with world.app.app_context():
        case = db.session.get(Case, case_id)
        [action] = db.session.scalars(select(Deadline).where(Deadline.case_id == case_id,
                                                             Deadline.kind.like("action_%"))).all()
        sweep(db.session, eng, action.due_at + timedelta(minutes=1))
        eng.fire(db.session, _holders(world)["rso_board"], case_id, "escalate", case.version,
                 {"reason": "Blijvende zorg"})
        db.session.commit()
        rcoc = eng.actor_for(db.session.get(User, world.users["rcoc"]))
        assert case.state == "escalated_rso_chair" and eng.has_overdue(db.session, case) is False
        assert eng.available_triggers(case, rcoc, overdue={"action_x", "review"}) == []
    from flows import fire, ok

    case = ok(world.api("rcoc").get(f"/cases/{case_id}"))
    assert case["available_triggers"] == []
    assert fire(world.api("rcoc"), case, "escalate", {"reason": "x"}, status=403)["error"]["code"] == "forbidden"
