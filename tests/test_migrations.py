"""The migrations build exactly the schema the models describe."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine.models import Base
from web.extensions import db


def test_models_and_migrations_do_not_drift(app):
    with app.app_context():
        with db.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_the_database_enforces_signed_document_immutability(app, world):
    import pytest
    from sqlalchemy import text

    from flows import open_internal, sign, to_plan

    opleider, aios = world.api("opleider"), world.api("aios")
    _, doc = to_plan(opleider, aios, open_internal(opleider, world.users["aios"]))
    sign(opleider, doc)
    with app.app_context():
        for statement in (f"UPDATE document SET content = '{{}}' WHERE id = {doc['id']}",
                          f"UPDATE document SET sha256 = 'x' WHERE id = {doc['id']}",
                          f"DELETE FROM document WHERE id = {doc['id']}",
                          "UPDATE signature SET verdict = 'seen_not_agreed'"):
            with pytest.raises(Exception, match="immutable|cannot be deleted"):
                with db.engine.begin() as conn:
                    conn.execute(text(statement))
