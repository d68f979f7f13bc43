"""What every benchmark shares: databases, the app, a small seed, timing and statement counting.

Nothing here is imported by the product or by tests/.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import create_engine, event, text

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
NOW = datetime(2026, 6, 1, 10, 0, tzinfo=timezone.utc)


# -- results -------------------------------------------------------------------------------


@dataclass
class Row:
    """One figure, always next to the baseline it is divided by (measured in the same run)."""

    bench: str  # "1 transition", ...
    backend: str  # sqlite | postgresql | -
    figure: str
    value: float
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    ratio: float | None = None  # value / baseline_value unless said otherwise
    target: str = ""
    met: bool | None = None
    detail: str = ""  # min/median, repetitions, ...
    extra: dict = field(default_factory=dict)

    def to_dict(self):
        return asdict(self)


def stats(samples: list[float]) -> dict:
    s = sorted(samples)
    return {"min": s[0], "median": statistics.median(s), "max": s[-1], "n": len(s)}


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    s = sorted(samples)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def repeat(fn, times: int) -> list[float]:
    out = []
    for _ in range(times):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


# -- databases -----------------------------------------------------------------------------


def database_url(backend: str, tag: str) -> str:
    """A fresh, empty database: a new SQLite file, or TEST_POSTGRES_URL with its public schema dropped."""
    if backend == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp(prefix=f'traject-bench-{tag}-')}/bench.db"
    url = os.environ.get("TEST_POSTGRES_URL")
    if not url:
        raise SystemExit("PostgreSQL benchmarks need TEST_POSTGRES_URL (run through scripts/with-postgres)")
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    eng.dispose()
    return url


def create_schema(url: str) -> None:
    """The schema from the models (tests/test_migrations.py keeps them equal to the migrations): a benchmark
    must not depend on a migration someone is writing at the same moment."""
    from engine.models import Base

    eng = create_engine(url)
    try:
        Base.metadata.create_all(eng)
    finally:
        eng.dispose()


def make_app(url: str, *, clock=None, extra_definitions: bool = True, **overrides):
    """The real app (create_app) on a fresh schema, plus the benchmark's own definitions (bench/definitions)."""
    os.environ["TRAJECT_ENV"] = "testing"
    from engine.clock import FixedClock
    from engine.definitions import load_directory
    from web.app import create_app
    from web.runtime import sync_definitions

    instance = overrides.pop("TRAJECT_INSTANCE", None) or tempfile.mkdtemp(prefix="traject-bench-instance-")
    create_schema(url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TRAJECT_INSTANCE": instance,
                      "CLOCK": clock or FixedClock(NOW), **overrides})
    if extra_definitions:
        app.extensions["traject.definitions"] = [
            *app.extensions["traject.definitions"],
            *load_directory(BENCH / "definitions", app.extensions["traject"].registry),
        ]
    with app.app_context():
        sync_definitions(app)
    return app


@dataclass
class World:
    region_id: int
    institution_id: int
    opleider_id: int
    aios_id: int


def seed(app) -> World:
    """One region, one hospital, an opleider and an aios."""
    from engine.models import Institution, Region, RoleAssignment, User
    from web.extensions import db

    with app.app_context():
        region = Region(code="bench", name="Bench")
        inst = Institution(code="bench", name="Bench MC", region=region)
        db.session.add_all([region, inst])
        db.session.flush()
        ids = []
        for role in ("opleider", "aios"):
            user = User(email=f"{role}@bench.invalid", name=role, active=True, created_at=NOW)
            user.roles.append(RoleAssignment(role=role, institution_id=inst.id, region_id=region.id))
            db.session.add(user)
            db.session.flush()
            ids.append(user.id)
        db.session.commit()
        return World(region.id, inst.id, ids[0], ids[1])


def server_facts(url: str) -> dict:
    """Version and durability settings of the database behind `url`."""
    eng = create_engine(url)
    try:
        with eng.connect() as conn:
            if eng.dialect.name == "postgresql":
                return {
                    "version": conn.execute(text("SHOW server_version")).scalar(),
                    "fsync": conn.execute(text("SHOW fsync")).scalar(),
                    "synchronous_commit": conn.execute(text("SHOW synchronous_commit")).scalar(),
                }
            import sqlite3

            return {"version": sqlite3.sqlite_version, "journal_mode": "wal", "synchronous": "NORMAL"}
    finally:
        eng.dispose()


# -- statements ----------------------------------------------------------------------------


@contextmanager
def counted(engine):
    """The SQL statements `engine` sends while the block runs (the first word of each)."""
    statements: list[str] = []

    def count(conn, cursor, statement, params, context, executemany):
        statements.append(statement.split(None, 1)[0].upper())

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def log(*args):
    print(*args, flush=True)
