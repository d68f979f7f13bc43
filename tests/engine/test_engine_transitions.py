"""The transition path without the app: open, fire, version conflict, not allowed, forbidden, guards."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine import audit, scope
from engine.errors import Forbidden, PreconditionFailed, TransitionNotAllowed, ValidationError, VersionConflict
from engine.models import AuditEvent, Notification
from engine_world import clock, session, world  # noqa: F401  (the fixtures)


def events(world, case):
    return list(world.session.scalars(select(AuditEvent).where(AuditEvent.case_id == case.id)
                                      .order_by(AuditEvent.seq)))


def test_it_opens_a_case_in_its_first_state_with_one_audit_event(world):
    case = world.open_drill()
    assert (case.state, case.version, case.workflow_key) == ("open", 1, "drill")
    [opened] = events(world, case)
    assert opened.type == "opened" and opened.to_state == "open" and opened.data["input"] == {"note": "ok"}
    assert (case.audit_seq, case.audit_head) == (1, opened.hash)


def test_it_refuses_to_open_for_a_role_the_definition_does_not_name(world):
    with pytest.raises(Forbidden) as refused:
        world.engine.open_case(world.session, world.actor("hr"), workflow="drill", institution="meander",
                               data={"note": "x"})
    assert refused.value.details == {"allowed_roles": ["opleider"]}


def test_it_refuses_an_unknown_workflow(world):
    with pytest.raises(ValidationError):
        world.engine.open_case(world.session, world.actor("opleider"), workflow="nope", institution="meander")


def test_it_fires_a_transition_and_moves_state_version_and_chain_together(world):
    case = world.open_drill()
    world.engine.fire(world.session, world.actor("opleider"), case.id, "submit", 1)
    world.session.flush()
    assert (case.state, case.version) == ("review", 2)
    moved = events(world, case)[-1]
    assert (moved.type, moved.trigger, moved.from_state, moved.to_state) == ("transition", "submit", "open", "review")
    assert audit.check_case(case, events(world, case)) is None


def test_it_raises_a_version_conflict_on_a_stale_expected_version(world):
    case = world.open_drill()
    world.engine.fire(world.session, world.actor("opleider"), case.id, "submit", 1)
    with pytest.raises(VersionConflict) as conflict:
        world.engine.fire(world.session, world.actor("coc"), case.id, "approve", 1, {"agreed": True})
    assert conflict.value.details == {"expected_version": 1, "current_version": 2}


def test_it_refuses_a_trigger_that_does_not_leave_the_current_state(world):
    case = world.open_drill()
    with pytest.raises(TransitionNotAllowed) as refused:
        world.engine.fire(world.session, world.actor("opleider"), case.id, "approve", 1, {"agreed": True})
    assert refused.value.details["available"] == ["submit"]


def test_it_refuses_an_unknown_trigger_as_invalid_input(world):
    case = world.open_drill()
    with pytest.raises(ValidationError):
        world.engine.fire(world.session, world.actor("opleider"), case.id, "explode", 1)


def test_it_forbids_a_role_the_step_does_not_name(world):
    case = world.open_drill()
    with pytest.raises(Forbidden):
        world.engine.fire(world.session, world.actor("coc"), case.id, "submit", 1)
    assert case.state == "open" and case.version == 1


def test_it_lets_the_owner_of_the_level_act_where_the_step_says_owner(world):
    case = world.open_drill()
    world.engine.fire(world.session, world.actor("opleider"), case.id, "submit", 1)
    with pytest.raises(Forbidden):
        world.engine.fire(world.session, world.actor("opleider"), case.id, "approve", 2, {"agreed": True})
    world.engine.fire(world.session, world.actor("coc"), case.id, "approve", 2, {"agreed": True})
    assert case.state == "done" and case.closed_at == world.clock.now()


def test_it_lists_every_unmet_condition_at_once(world):
    case = world.open_drill(note="not yet")
    world.engine.fire(world.session, world.actor("opleider"), case.id, "submit", 1)
    with pytest.raises(PreconditionFailed) as failed:
        world.engine.fire(world.session, world.actor("coc"), case.id, "approve", 2, {"agreed": False})
    unmet = failed.value.unmet
    assert [u["guard"] for u in unmet] == ["input.must_be", "field_equals"]
    assert unmet[0]["field"] == "data.agreed"
    assert unmet[0]["message"] == "Agreed must be yes" and unmet[0]["message_nl"] == "Akkoord moet ja zijn"
    assert case.state == "review" and case.version == 2


def test_it_reports_a_missing_required_input_in_both_languages(world):
    with pytest.raises(PreconditionFailed) as failed:
        world.engine.open_case(world.session, world.actor("opleider"), workflow="drill", institution="meander")
    [missing] = failed.value.unmet
    assert (missing["guard"], missing["message"], missing["message_nl"]) == (
        "input.required", "Note is required", "Notitie is verplicht")


def test_it_refuses_input_a_step_does_not_declare(world):
    case = world.open_drill()
    with pytest.raises(ValidationError) as refused:
        world.engine.fire(world.session, world.actor("opleider"), case.id, "submit", 1, {"state": "done"})
    assert "data.state" in refused.value.details


def test_it_tells_the_owner_when_the_case_reaches_their_level(world):
    case = world.open_drill()
    world.engine.fire(world.session, world.actor("opleider"), case.id, "submit", 1)
    world.session.flush()
    [told] = world.session.scalars(select(Notification).where(Notification.kind == "level_reached")).all()
    assert told.recipient_user_id == world.users["coc"].id
    assert told.subject == "Beoordeling: Oefenzaak" and told.status == "pending"
    assert told.idempotency_key == f"{case.id}:2:user:{world.users['coc'].id}:level_reached"


def test_it_offers_exactly_the_triggers_a_role_may_fire(world):
    definition = world.engine.latest(world.session)["drill"]
    assert scope.triggers_for(definition, "open", {"opleider"}) == ["submit"]
    assert scope.triggers_for(definition, "open", {"coc_chair"}) == []
    assert scope.triggers_for(definition, "review", {"coc_chair"}) == ["approve"]
    assert scope.permits(["*"], {"hr"}) and not scope.permits(["*"], set())


def test_it_makes_an_engine_at_a_moment_that_shares_the_stored_definitions(world):
    later = world.clock.now() + timedelta(days=3)
    at = world.engine.at(later)
    assert at.clock.now() == later and world.engine.clock.now() != later
    assert at.latest(world.session) is world.engine.latest(world.session)
    case = world.open_drill()
    at.fire(world.session, world.actor("opleider"), case.id, "submit", 1)
    assert case.updated_at == later


def test_it_never_commits_for_its_caller(world):
    world.open_drill()
    world.session.rollback()
    assert world.session.scalar(select(func.count()).select_from(AuditEvent)) == 0
