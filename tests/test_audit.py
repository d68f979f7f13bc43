"""The audit chain detects any changed, deleted, inserted or reordered event, and names the first."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from engine import audit
from flows import fire, open_internal, to_guidance
from web.extensions import db


@pytest.fixture
def cases(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    first = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    second = fire(opleider, open_internal(opleider, world.users["aios2"]), "analyse")
    return first["id"], second["id"]


def tamper(app, *statements):
    """Edit rows by hand, as someone with database access would (PostgreSQL's guard trigger bypassed)."""
    with app.app_context():
        with db.engine.begin() as conn:
            pg = conn.dialect.name == "postgresql"
            if pg:
                conn.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_no_update"))
            for statement in statements:
                conn.execute(text(statement))
            if pg:
                conn.execute(text("ALTER TABLE audit_event ENABLE TRIGGER audit_event_no_update"))


def verify(app, case_id=None):
    with app.app_context():
        return audit.verify(db.session, case_id)


def test_it_passes_an_intact_trail(app, cases):
    checked, events, problem = verify(app)
    assert problem is None and checked == 2 and events > 8


def test_it_finds_a_changed_event(app, cases):
    tamper(app, f"UPDATE audit_event SET data = '{{\"input\": {{}}}}' WHERE case_id = {cases[0]} AND seq = 3")
    _, _, problem = verify(app)
    assert (problem.case_id, problem.seq) == (cases[0], 3) and "changed" in problem.problem
    assert verify(app, cases[1])[2] is None  # the other case's chain is intact


def test_it_finds_a_changed_actor_or_time(app, cases):
    tamper(app, f"UPDATE audit_event SET actor_id = NULL WHERE case_id = {cases[0]} AND seq = 2")
    assert verify(app)[2].seq == 2


def test_it_finds_a_deleted_event(app, cases):
    tamper(app, f"DELETE FROM audit_event WHERE case_id = {cases[0]} AND seq = 2")
    problem = verify(app)[2]
    assert (problem.case_id, problem.seq) == (cases[0], 3) and "missing" in problem.problem


def test_it_finds_a_deleted_last_event(app, cases):
    tamper(app, f"DELETE FROM audit_event WHERE case_id = {cases[1]} AND seq = 2")
    problem = verify(app)[2]
    assert problem.case_id == cases[1] and "deleted or appended" in problem.problem


def test_it_finds_an_inserted_event(app, cases):
    tamper(app, f"UPDATE audit_event SET seq = seq + 100 WHERE case_id = {cases[0]} AND seq >= 3",
           f"UPDATE audit_event SET seq = seq - 99 WHERE case_id = {cases[0]} AND seq >= 103",
           f"INSERT INTO audit_event (case_id, seq, at, type, data, prev_hash, hash) SELECT case_id, 3, at, type, "
           f"data, hash, hash FROM audit_event WHERE case_id = {cases[0]} AND seq = 2")
    problem = verify(app)[2]
    assert (problem.case_id, problem.seq) == (cases[0], 3)


def test_it_finds_reordered_events(app, cases):
    tamper(app, f"UPDATE audit_event SET seq = 1000 WHERE case_id = {cases[0]} AND seq = 2",
           f"UPDATE audit_event SET seq = 2 WHERE case_id = {cases[0]} AND seq = 3",
           f"UPDATE audit_event SET seq = 3 WHERE case_id = {cases[0]} AND seq = 1000")
    problem = verify(app)[2]
    assert (problem.case_id, problem.seq) == (cases[0], 2)


def test_the_cli_exits_non_zero_and_names_the_first_broken_event(app, runner, cases):
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0 and '"ok": true' in result.output
    tamper(app, f"UPDATE audit_event SET to_state = 'closed' WHERE case_id = {cases[1]} AND seq = 2")
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"case {cases[1]}, event 2" in result.output
    assert runner.invoke(args=["audit", "verify", "--case", str(cases[0])]).exit_code == 0
    assert runner.invoke(args=["audit", "verify", "--case", str(cases[1])]).exit_code == 1


def test_postgres_refuses_edits_of_audit_events(app, cases):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("the trigger guards PostgreSQL; SQLite relies on `audit verify`")
        with pytest.raises(Exception, match="append-only"):
            with db.engine.begin() as conn:
                conn.execute(text("UPDATE audit_event SET type = 'x'"))
        with pytest.raises(Exception, match="append-only"):
            with db.engine.begin() as conn:
                conn.execute(text("DELETE FROM audit_event"))
