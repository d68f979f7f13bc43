"""Definitions are data: validated on load, stored by key/version/sha256, cases pinned to their version."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.definitions import Definition, parse, sync
from engine.errors import DefinitionError
from flows import empty_tables
from engine.models import WorkflowDefinition
from flows import fire, open_internal
from web.extensions import db
from workflows import DEFINITIONS_DIR, load_definitions, make_registry

MINIMAL = """
key: tiny
title: Klein
states: [{name: a}, {name: b, final: true}]
open: {roles: [opleider], state: a}
transitions:
  - {trigger: go, source: a, dest: b, roles: [opleider]}
"""


def test_it_loads_every_shipped_definition():
    keys = {d.key for d in load_definitions()}
    assert {"internal_guidance", "intensified_guidance"} <= keys


@pytest.mark.parametrize("broken, where", [
    (MINIMAL.replace("dest: b", "dest: nowhere"), "transitions.0.dest: unknown state 'nowhere'"),
    (MINIMAL.replace("source: a", "source: [a, q]"), "transitions.0.source: unknown state 'q'"),
    (MINIMAL.replace("roles: [opleider]}", "roles: []}"), "transitions.0.roles"),
    (MINIMAL.replace("state: a}", "state: z}"), "open.state: unknown state 'z'"),
    (MINIMAL.replace("{trigger: go,", "{trigger: go, requires: [{guard: no_such_guard}],"),
     "transitions.0.requires.0: unknown guard 'no_such_guard'"),
    (MINIMAL.replace("{trigger: go,", "{trigger: go, requires: [{guard: document_signed}],"),
     "transitions.0.requires.0: guard 'document_signed' needs kind"),
    (MINIMAL.replace("{trigger: go,", "{trigger: go, input: {x: {type: colour}},"), "transitions.0.input.x"),
    (MINIMAL.replace("title: Klein", "title: [Klein"), "not valid YAML"),
    (MINIMAL.replace("key: tiny", "key: Tiny Thing"), "key"),
])
def test_it_names_the_file_the_path_and_the_problem(broken, where):
    with pytest.raises(DefinitionError) as info:
        parse(broken, "tiny.yaml", make_registry())
    assert str(info.value).startswith("tiny.yaml: ")
    assert where in str(info.value)


def test_it_reports_every_problem_at_once():
    broken = MINIMAL.replace("dest: b", "dest: nowhere").replace("state: a}", "state: z}")
    with pytest.raises(DefinitionError) as info:
        parse(broken, "tiny.yaml", make_registry())
    assert len(info.value.details["errors"]) == 2


def test_it_builds_one_machine_per_version_and_reuses_it(app):
    with app.app_context():
        eng = app.extensions["traject"]
        row = db.session.scalar(select(WorkflowDefinition).where(WorkflowDefinition.key == "internal_guidance"))
        first = eng.definition(row)
        assert eng.definition(row) is first and first.machine is first.machine
        assert first.machine.get_triggers("plan") == ["start_guidance"]


def test_a_changed_definition_is_a_new_version_and_running_cases_keep_theirs(app, world, clock, tmp_path):
    opleider = world.api("opleider")
    old_case = open_internal(opleider, world.users["aios"])
    assert old_case["workflow_version"] >= 1
    source = (DEFINITIONS_DIR / "internal_guidance.yaml").read_text()
    changed = source.replace("    label: Analyse starten", "    label: Analyse starten\n"
                             "    input: {analysis_note: {type: text, required: true}}")
    with app.app_context():
        before = db.session.scalars(select(WorkflowDefinition).where(WorkflowDefinition.key == "internal_guidance")
                                    ).all()
        new = parse(changed, "internal_guidance.yaml", app.extensions["traject"].registry)
        added = sync(db.session, [new], clock.now())
        assert sync(db.session, [new], clock.now()) == []  # idempotent
        db.session.commit()
        app.extensions["traject"].forget_definitions()
        assert [r.version for r in added] == [max(r.version for r in before) + 1]
        assert added[0].sha256 == new.sha256 != before[-1].sha256
    try:
        new_case = open_internal(opleider, world.users["aios"])
        assert new_case["workflow_version"] == added[0].version
        # The old case keeps its version: analyse needs no note there; the new one does.
        assert fire(opleider, old_case, "analyse")["state"] == "analysis"
        body = fire(opleider, new_case, "analyse", status=422)
        assert body["error"]["details"]["unmet"][0]["field"] == "data.analysis_note"
    finally:
        with app.app_context():
            db.session.remove()
            empty_tables(db.engine)  # cases first: they point at the new version
            db.session.query(WorkflowDefinition).filter_by(id=added[0].id).delete()
            db.session.commit()
        Definition._cache.pop(added[0].id, None)
