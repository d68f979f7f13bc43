"""Terms without the app: a due day rolled to the next working day of the calendar the engine is given,
and a case's clock paused and resumed (pause_deadlines / resume_deadlines)."""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from engine.calendar import WorkingCalendar, local_date
from engine.definitions import parse, sync
from engine.models import Deadline, DeadlineStatus
from engine_world import START, clock, session, world  # noqa: F401  (the fixtures)

PAUSABLE = """
key: pausable
title: Pauze
visibility: {opleider: institution}
states:
  - {name: running, label: Loopt}
  - {name: paused, label: Gepauzeerd}
open:
  roles: [opleider]
  state: running
  input:
    end: {type: date, label: Einde}
  deadlines:
    - {kind: term, due: {after: {days: 5}}, roll: next_working_day, owner_role: opleider}
transitions:
  - trigger: pause
    source: running
    dest: paused
    roles: [opleider]
    input:
      since: {type: date, default: today}
    effects: [{effect: pause_deadlines}]
  - trigger: resume
    source: paused
    dest: running
    roles: [opleider]
    input:
      until: {type: date, default: today}
    requires: [{guard: not_before, field: until, other: since}]
    effects: [{effect: resume_deadlines, since: since, until: until, shift: {end_moved: data.end}}]
"""
TESTDAG = WorkingCalendar([{"date": "2026-03-09", "name": "Testdag", "name_en": "Test day"}])


def _world(world):
    sync(world.session, [parse(PAUSABLE, "pausable.yaml", world.engine.registry)], START)
    world.engine.forget_definitions()
    world.engine.config.calendar = TESTDAG
    return world


def _open(world):
    case = world.engine.open_case(world.session, world.actor("opleider"), workflow="pausable",
                                  institution="meander", data={"end": "2026-06-30"})
    world.session.flush()
    return case


def _deadlines(world, case):
    return list(world.session.scalars(select(Deadline).where(Deadline.case_id == case.id).order_by(Deadline.id)))


def test_it_rolls_past_the_weekend_and_a_holiday_it_was_given(world):
    case = _open(_world(world))
    [term] = _deadlines(world, case)
    # Monday 2 March + 5 days = Saturday 7 March; Monday 9 March is the given holiday.
    assert local_date(term.due_at, "Europe/Amsterdam") == date(2026, 3, 10) and term.rolled_from == date(2026, 3, 7)


def test_a_paused_case_holds_its_deadlines_and_resumes_them_moved(world, clock):
    world = _world(world)
    case = _open(world)
    clock.advance(days=2)
    world.engine.fire(world.session, world.actor("opleider"), case.id, "pause", case.version)
    [held] = _deadlines(world, case)
    assert held.status == DeadlineStatus.CANCELLED and case.data["held_deadlines"] == [held.id]
    clock.advance(days=7)  # paused from 4 to 11 March: 7 days
    world.engine.fire(world.session, world.actor("opleider"), case.id, "resume", case.version)
    world.session.flush()
    _, back = _deadlines(world, case)
    # 7 March + 7 = Saturday 14 March, rolled to Monday 16 March.
    assert back.status == DeadlineStatus.PENDING and local_date(back.due_at, "Europe/Amsterdam") == date(2026, 3, 16)
    assert case.data["paused_days"] == 7 and case.data["end_moved"] == (date(2026, 6, 30) + timedelta(days=7)).isoformat()
    assert case.data["held_deadlines"] == []
