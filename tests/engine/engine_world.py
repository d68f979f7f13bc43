"""Fixtures for the engine tests (imported by them: a conftest.py here would shadow tests/conftest.py,
which other tests import by name). The engine on its own: a plain SQLAlchemy session on SQLite, no Flask
app, a fixed clock.

The shipped definitions (workflows/) plus `drill`, a small definition written for these
tests: open → review (owned by the coc_chair) → done, with one deadline that reminds,
turns overdue and tells the next level.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from engine.clock import FixedClock
from engine.commands import Engine, EngineConfig
from engine.definitions import parse, sync
from engine.models import Base, Institution, Region, RoleAssignment, User
from workflows import load_definitions, make_registry

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # a Monday

DRILL = """
key: drill
title: Oefening
title_en: Drill
visibility: {opleider: institution, coc_chair: institution}
states:
  - {name: open, label: Open, label_en: Open}
  - {name: review, label: Beoordeling, label_en: Review, owner: coc_chair}
  - {name: done, label: Klaar, label_en: Done, final: true}
open:
  roles: [opleider]
  state: open
  input:
    note: {type: text, required: true, label: Notitie, label_en: Note}
  deadlines:
    - kind: answer
      label: Antwoord
      label_en: Answer
      due: {after: {days: 10}}
      owner_role: opleider
      remind_days_before: [3]
      on_overdue:
        notify: [{to: coc_chair, kind: drill_overdue, subject: "Te laat: {deadline} in {title}",
                  subject_en: "Late: {deadline} in {title}"}]
transitions:
  - trigger: submit
    source: open
    dest: review
    roles: [opleider]
    escalates: true
    meets: [answer]
  - trigger: approve
    source: review
    dest: done
    roles: [owner]
    input:
      agreed: {type: boolean, required: true, must_be: true, label: Akkoord, label_en: Agreed}
    requires:
      - {guard: field_equals, field: data.note, value: ok, label: Notitie, label_en: Note}
"""


@dataclass
class World:
    session: Session
    engine: Engine
    clock: FixedClock
    users: dict  # name → User
    institution: Institution

    def actor(self, name: str):
        return self.engine.actor_for(self.users[name])

    def open_drill(self, note: str = "ok"):
        case = self.engine.open_case(self.session, self.actor("opleider"), workflow="drill",
                                     institution="meander", title="Oefenzaak", data={"note": note})
        self.session.flush()
        return case


@pytest.fixture
def clock():
    return FixedClock(START)


@pytest.fixture
def session(tmp_path):
    database = create_engine(f"sqlite:///{tmp_path / 'engine.db'}")
    Base.metadata.create_all(database)
    with Session(database) as session:
        yield session
    database.dispose()


@pytest.fixture
def world(session, clock):
    registry = make_registry()
    sync(session, [*load_definitions(registry), parse(DRILL, "drill.yaml", registry)], START)
    region = Region(code="utrecht", name="Utrecht")
    session.add(region)
    session.flush()
    institution = Institution(code="meander", name="Meander MC", region_id=region.id)
    session.add(institution)
    session.flush()
    users = {}
    for name, role in [("opleider", "opleider"), ("aios", "aios"), ("coc", "coc_chair"), ("hr", "hr")]:
        user = User(email=f"{name}@example.org", name=name.capitalize(), active=True, created_at=START)
        user.roles.append(RoleAssignment(role=role, institution_id=institution.id, region_id=region.id))
        session.add(user)
        session.flush()
        users[name] = user
    session.commit()
    engine = Engine(registry, EngineConfig(), clock)
    return World(session, engine, clock, users, institution)
