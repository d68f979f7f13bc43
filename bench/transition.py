"""1. The durable transition against its floor: one INSERT + COMMIT of an audit-sized row.

Both run through the same SQLAlchemy engine (the app's), so the same driver, database file or
server, and durability settings: SQLite in WAL mode with the product's pragmas
(synchronous=NORMAL), PostgreSQL as configured (the throwaway cluster: fsync off). With
`durable=True` both are measured again with a flush to disk on every commit (SQLite
synchronous=FULL; PostgreSQL fsync=on, synchronous_commit=on), which only `make bench`
asks for on its own throwaway cluster.

The transition is Engine.fire + session.commit, exactly as the API calls it, on a fresh
case each time (no warm identity map): the `full` variant is bench_six's step1 (new state,
audit event, a deadline with two reminders, an outbox row), `plain` is internal_guidance's
`analyse` (state and audit event only).
"""
from __future__ import annotations

import json

from sqlalchemy import event, select, text

from .common import NOW, Row, counted, log, make_app, seed, stats

FLOOR_DDL = {
    "sqlite": """CREATE TABLE IF NOT EXISTS bench_floor (
        id INTEGER PRIMARY KEY, case_id INTEGER, seq INTEGER, at TIMESTAMP, actor_id INTEGER, type VARCHAR(40),
        trigger VARCHAR(64), from_state VARCHAR(64), to_state VARCHAR(64), data JSON, prev_hash VARCHAR(64),
        hash VARCHAR(64))""",
    "postgresql": """CREATE TABLE IF NOT EXISTS bench_floor (
        id BIGSERIAL PRIMARY KEY, case_id BIGINT, seq INTEGER, at TIMESTAMPTZ, actor_id INTEGER, type VARCHAR(40),
        trigger VARCHAR(64), from_state VARCHAR(64), to_state VARCHAR(64), data JSON, prev_hash VARCHAR(64),
        hash VARCHAR(64))""",
}


def _open_cases(app, world, workflow: str, n: int) -> list[int]:
    from web.extensions import db

    ids = []
    with app.app_context():
        eng = app.extensions["traject"]
        from engine.models import User

        actor = eng.actor_for(db.session.get(User, world.opleider_id))
        data = {"signal": "Bench"} if workflow == "internal_guidance" else {}
        for i in range(n):
            case = eng.open_case(db.session, actor, workflow=workflow, institution="bench",
                                 subject_id=world.aios_id, title=f"Bench {i}", data=data)
            ids.append(case)
            if len(ids) % 250 == 0:
                db.session.commit()
        db.session.commit()
        ids = [c.id for c in ids]
        db.session.remove()
    return ids


def _fire_loop(app, world, case_ids: list[int], trigger: str, data: dict) -> list[float]:
    """Per-transition seconds: fire + commit on each case, a fresh session state each time."""
    import time

    from engine.models import User
    from web.extensions import db

    out = []
    with app.app_context():
        eng = app.extensions["traject"]
        actor = eng.actor_for(db.session.get(User, world.opleider_id))
        db.session.expunge_all()
        for case_id in case_ids:
            start = time.perf_counter()
            eng.fire(db.session, actor, case_id, trigger, 1, data)
            db.session.commit()
            out.append(time.perf_counter() - start)
            db.session.expunge_all()
        db.session.remove()
    return out


def _audit_row(app) -> dict:
    """A real audit event of a full transition: the floor writes a row of the same size."""
    from engine.models import AuditEvent
    from web.extensions import db

    with app.app_context():
        ev = db.session.scalars(select(AuditEvent).where(AuditEvent.type == "transition")
                                .order_by(AuditEvent.case_id.desc()).limit(1)).one()
        row = {c: getattr(ev, c) for c in ("case_id", "seq", "actor_id", "type", "trigger", "from_state",
                                           "to_state", "prev_hash", "hash")}
        row["data"] = json.dumps(ev.data)
        row["at"] = NOW.replace(tzinfo=None) if db.engine.dialect.name == "sqlite" else NOW
        db.session.remove()
    return row


def _floor_loop(app, row: dict, n: int) -> list[float]:
    """One INSERT + COMMIT per iteration on a pooled DBAPI connection of the app's engine."""
    import time

    from web.extensions import db

    with app.app_context():
        dialect = db.engine.dialect.name
        with db.engine.begin() as conn:
            conn.exec_driver_sql(FLOOR_DDL[dialect])
        sql = ("INSERT INTO bench_floor (case_id, seq, at, actor_id, type, trigger, from_state, to_state, data, "
               "prev_hash, hash) VALUES (%s)")
        marks = ", ".join(["?"] * 11) if dialect == "sqlite" else ", ".join(["%s"] * 11)
        sql = sql % marks
        values = (row["case_id"], row["seq"], row["at"], row["actor_id"], row["type"], row["trigger"],
                  row["from_state"], row["to_state"], row["data"], row["prev_hash"], row["hash"])
        raw = db.engine.raw_connection()
        try:
            cur = raw.cursor()
            out = []
            for _ in range(n):
                start = time.perf_counter()
                cur.execute(sql, values)
                raw.commit()
                out.append(time.perf_counter() - start)
            cur.close()
        finally:
            raw.close()
    return out


def _statements(app, world, case_id: int, trigger: str, data: dict) -> list[str]:
    from engine.models import User
    from web.extensions import db

    with app.app_context():
        eng = app.extensions["traject"]
        actor = eng.actor_for(db.session.get(User, world.opleider_id))
        db.session.expunge_all()
        with counted(db.engine) as statements:
            eng.fire(db.session, actor, case_id, trigger, 1, data)
            db.session.commit()
        db.session.remove()
    return statements


def _make_durable(app, backend: str) -> None:
    from web.extensions import db

    with app.app_context():
        if backend == "sqlite":
            db.engine.dispose()

            @event.listens_for(db.engine, "connect")
            def _full(dbapi_connection, record):  # runs after the product's pragmas
                cur = dbapi_connection.cursor()
                cur.execute("PRAGMA synchronous=FULL")
                cur.close()
        else:
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ALTER SYSTEM SET fsync = on")
                conn.exec_driver_sql("ALTER SYSTEM SET synchronous_commit = on")
                conn.exec_driver_sql("SELECT pg_reload_conf()")
            db.engine.dispose()


def _undo_durable(app, backend: str) -> None:
    from web.extensions import db

    if backend != "postgresql":
        return
    with app.app_context():
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ALTER SYSTEM RESET fsync")
            conn.exec_driver_sql("ALTER SYSTEM RESET synchronous_commit")
            conn.exec_driver_sql("SELECT pg_reload_conf()")
        db.engine.dispose()


def settings(app) -> str:
    from web.extensions import db

    with app.app_context():
        with db.engine.connect() as conn:
            if db.engine.dialect.name == "sqlite":
                sync = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[conn.exec_driver_sql("PRAGMA synchronous").scalar()]
                mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
                return f"journal_mode={mode}, synchronous={sync}"
            fsync = conn.execute(text("SHOW fsync")).scalar()
            sc = conn.execute(text("SHOW synchronous_commit")).scalar()
            return f"fsync={fsync}, synchronous_commit={sc}"


def run(url: str, backend: str, quick: bool, durable: bool = False) -> list[Row]:
    runs, per_run = (3, 60) if quick else (5, 200)
    app = make_app(url)
    world = seed(app)
    variants = [("full", "bench_six", "step1", {"note": "Bench"}),
                ("plain", "internal_guidance", "analyse", {})]
    modes = [("as configured", False)] + ([("fsync on every commit", True)] if durable else [])
    cases = {}
    for name, workflow, _, _ in variants:
        total = runs * per_run * len(modes) + 2
        log(f"  [{backend}] opening {total} {workflow} cases")
        cases[name] = _open_cases(app, world, workflow, total)
    rows: list[Row] = []
    for name, workflow, trigger, data in variants:
        statements = _statements(app, world, cases[name].pop(), trigger, data)
        _fire_loop(app, world, [cases[name].pop()], trigger, data)  # warm: machine, caches, pool
        rows.append(Row("1 transition", backend, f"SQL statements per transition ({name}: {workflow}.{trigger})",
                        len(statements), "statements", target="≤ 6", met=len(statements) <= 6,
                        detail=" ".join(statements)))
    row = _audit_row(app)
    for mode, make in modes:
        if make:
            _make_durable(app, backend)
        try:
            conf = settings(app)
            log(f"  [{backend}] {mode}: {conf}")
            _floor_loop(app, row, 50)  # warm
            floor_runs, fire_runs = {}, {name: [] for name, *_ in variants}
            floor_runs = []
            for r in range(runs):
                # Interleaved so that drift (cache, checkpoints) hits both alike.
                floor_runs.append(stats(_floor_loop(app, row, per_run))["median"])
                for name, workflow, trigger, data in variants:
                    ids = [cases[name].pop() for _ in range(per_run)]
                    fire_runs[name].append(stats(_fire_loop(app, world, ids, trigger, data))["median"])
            floor = stats(floor_runs)
            for name, workflow, trigger, data in variants:
                t = stats(fire_runs[name])
                ratio = t["median"] / floor["median"]
                # Issue 19: against a durable floor, ≤ 3× on PostgreSQL and ≤ 4× on SQLite (synchronous=FULL).
                limit = (3 if backend == "postgresql" else 4) if make else None
                rows.append(Row(
                    "1 transition", backend, f"{name} transition, {mode} ({conf})",
                    t["median"] * 1e3, "ms", baseline="INSERT+COMMIT of an audit-sized row",
                    baseline_value=floor["median"] * 1e3, ratio=ratio,
                    target=f"≤ {limit}× floor" if limit else "- (floor not durable)",
                    met=ratio <= limit if limit else None,
                    detail=(f"median of {runs} runs × {per_run} (per-run medians; min {t['min'] * 1e3:.3f} ms, "
                            f"floor min {floor['min'] * 1e3:.3f} ms)")))
        finally:
            if make:
                _undo_durable(app, backend)
    with app.app_context():
        from web.extensions import db

        db.session.remove()
        db.engine.dispose()
    return rows
