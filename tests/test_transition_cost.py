"""What one durable transition costs in SQL statements (DESIGN.md: at most 6)."""
from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event, select

from engine.models import Case, User
from flows import fire, open_internal, to_plan, sign
from web.extensions import db


@contextmanager
def counted(engine):
    statements = []

    def count(conn, cursor, statement, params, context, executemany):
        statements.append(statement.split()[0].upper())

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def fire_counted(app, user_id, case_id, trigger, data):
    with app.app_context():
        eng = app.extensions["traject"]
        actor = eng.actor_for(db.session.get(User, user_id))
        version = db.session.scalar(select(Case.version).where(Case.id == case_id))
        db.session.expire_all()
        with counted(db.engine) as statements:
            eng.fire(db.session, actor, case_id, trigger, version, data)
            db.session.commit()
    return statements


def test_a_plain_transition_takes_three_statements(app, world):
    case = open_internal(world.api("opleider"), world.users["aios"])
    statements = fire_counted(app, world.users["opleider"], case["id"], "analyse", {})
    # load (scoped, locked on PostgreSQL), compare-and-set update, audit insert
    assert statements == ["SELECT", "UPDATE", "INSERT"]


def test_a_transition_with_a_document_guard_and_a_deadline_takes_five(app, world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case, doc = to_plan(opleider, aios, open_internal(opleider, world.users["aios"]))
    sign(opleider, doc)
    sign(aios, doc)
    statements = fire_counted(app, world.users["opleider"], case["id"], "start_guidance", {"iop_updated": True})
    # + documents with their signatures in one query, + the deadline insert
    assert statements == ["SELECT", "SELECT", "UPDATE", "INSERT", "INSERT"]
