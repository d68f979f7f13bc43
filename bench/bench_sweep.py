"""Deadline sweep and outbox drain: throughput, the idle sweep, memory. Prints figures and ratios.

    .venv/bin/python bench/bench_sweep.py                       # SQLite in a temporary folder
    scripts/with-postgres .venv/bin/python bench/bench_sweep.py --postgres   # TEST_POSTGRES_URL (its schema is dropped!)

Targets (issue 6): 10,000 deadlines due at once fired within 10 s; an idle sweep under
5 ms; worker memory flat whether 100 or 100,000 deadlines are pending. Baselines are
measured in the same run: a `SELECT 1` round trip for the idle sweep, and bulk-inserting
the same number of outbox rows for the sweep itself (the least any sweep must write).
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from dataclasses import astuple
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, delete, func, select, text, update  # noqa: E402

from bench.common import seed  # noqa: E402

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def make_app(url: str, instance: Path):
    os.environ.setdefault("TRAJECT_ENV", "testing")
    from flask_migrate import upgrade

    from engine.clock import FixedClock
    from web.app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TRAJECT_INSTANCE": str(instance), "CLOCK": FixedClock(NOW)})
    with app.app_context():
        upgrade()
    from web.runtime import sync_definitions

    with app.app_context():
        sync_definitions(app)
    return app


def add_deadlines(app, ids, n: int, due: bool, per_case: int = 10):
    """n deadlines on n/per_case cases; due now (remind_at in the past) or far ahead."""
    from engine.models import Case, Deadline
    from web.extensions import db

    region_id, inst_id, opleider, aios = ids
    with app.app_context():
        definition = app.extensions["traject"].latest(db.session)["internal_guidance"]
        n_cases = max(1, n // per_case)
        base = dict(workflow_key="internal_guidance", definition_id=definition.row_id, region_id=region_id,
                    institution_id=inst_id, subject_id=aios, opened_by_id=opleider, responsible_id=opleider,
                    parent_id=None, title="Bench", state="guidance", version=1, data={}, opened_at=NOW,
                    updated_at=NOW, closed_at=None, audit_seq=0, audit_head="")
        first = (db.session.scalar(select(func.max(Case.id))) or 0) + 1
        db.session.execute(Case.__table__.insert(), [base] * n_cases)
        case_ids = list(range(first, first + n_cases))
        due_at = NOW - timedelta(hours=1) if due else NOW + timedelta(days=365)
        rows = [dict(case_id=case_ids[i % n_cases], kind=f"k{i}", label="Bench", due_at=due_at, remind_at=due_at,
                     status="pending", owner_role="responsible", reminder_days=[], created_at=NOW, resolved_at=None)
                for i in range(n)]
        for start in range(0, n, 5000):
            db.session.execute(Deadline.__table__.insert(), rows[start:start + 5000])
        db.session.commit()


def empty(app):
    from engine.models import AuditEvent, Case, Deadline, Notification
    from web.extensions import db

    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("TRUNCATE notification, deadline, audit_event, case_file RESTART IDENTITY CASCADE"))
        else:
            for model in (Notification, Deadline, AuditEvent, Case):
                db.session.execute(delete(model))
        db.session.commit()


def timed(fn, repeat=1):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(url: str, n: int, label: str):
    """Benchmark the sweep and the drain against a fresh database at `url`, printing each figure:

    1. set up: the app, empty tables, a seeded region;
    2. fire n due deadlines, against bulk-inserting n outbox rows (_fire_due);
    3. deliver up to 2,000 of the outbox rows with the file backend (_deliver);
    4. the idle sweep, against a `SELECT 1` round trip (_idle_sweep);
    5. worker memory with 100 pending deadlines against 100,000 (_idle_memory);
    6. memory while firing 5,000 due against 20,000 (_firing_memory);
    7. release the database.
    """
    from web.extensions import db

    instance = Path(tempfile.mkdtemp(prefix="traject-bench-"))
    app = make_app(url, instance)
    empty(app)
    ids = astuple(seed(app))  # (region, institution, opleider, aios)
    print(f"\n== {label}: {n:,} deadlines due at once")
    _fire_due(app, ids, n)
    _deliver(app, n)
    _idle_sweep(app)
    _idle_memory(app, ids)
    _firing_memory(app, ids)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _fire_due(app, ids, n: int):
    """Fire n due deadlines at once, against a baseline: bulk-inserting n outbox rows (what the sweep must write
    at the very least)."""
    from engine.models import Deadline, Notification
    from web.extensions import db
    from web.jobs.passes import sweep_deadlines

    def baseline_insert():
        with app.app_context():
            db.session.execute(Notification.__table__.insert(), [dict(
                idempotency_key=f"b{i}", case_id=None, event_seq=None, recipient_user_id=ids[2],
                recipient_address=None, recipient_role="x", kind="x", subject="x", body_text="", attachments=[],
                status="sent", attempts=0, next_attempt_at=None, last_error=None, created_at=NOW, sent_at=NOW,
                data={}) for i in range(n)])
            db.session.commit()
            db.session.execute(delete(Notification))
            db.session.commit()

    base = timed(baseline_insert)
    add_deadlines(app, ids, n, due=True)
    with app.app_context():
        fire = timed(lambda: sweep_deadlines(app, NOW))
        fired = db.session.scalar(select(func.count()).select_from(Deadline).where(Deadline.status == "overdue"))
    assert fired == n, fired
    print(f"fire {n:,} due deadlines (reminder rows, audit events, outbox rows): {fire:.2f} s "
          f"({n / fire:,.0f}/s; target < 10 s) — {fire / base:.1f}x bulk-inserting {n:,} outbox rows ({base:.2f} s)")


def _deliver(app, n: int):
    """Deliver the first min(n, 2,000) outbox rows with the file backend (the rest are marked sent)."""
    from engine.models import Notification
    from web.extensions import db
    from web.jobs.passes import drain_outbox

    app.config["MAIL_BACKEND"] = "file"
    deliver = min(n, 2000)
    with app.app_context():
        keep = select(Notification.id).order_by(Notification.id).limit(deliver).scalar_subquery()
        db.session.execute(update(Notification).where(Notification.id.not_in(keep)).values(status="sent"))
        db.session.commit()
        drain = timed(lambda: drain_outbox(app, lambda: NOW))
    print(f"deliver {deliver:,} of them with the file backend (render, .eml, mark sent): {drain:.2f} s "
          f"({deliver / drain:,.0f}/s)")


def _idle_sweep(app):
    """The idle sweep, against a `SELECT 1` round trip."""
    from web.extensions import db
    from web.jobs.passes import sweep_deadlines

    with app.app_context():
        sweep_deadlines(app, NOW)
        one = timed(lambda: db.session.execute(text("SELECT 1")).scalar(), repeat=200)
        idle = timed(lambda: sweep_deadlines(app, NOW), repeat=200)
    print(f"idle sweep: {idle * 1000:.2f} ms (target < 5 ms) — {idle / one:.1f}x a SELECT 1 ({one * 1000:.3f} ms)")


def _idle_memory(app, ids):
    """Memory: an idle pass over 100 pending deadlines against one over 100,000."""
    from web.jobs.passes import drain_outbox, sweep_deadlines

    peaks = {}
    for pending in (100, 100_000):
        empty(app)
        add_deadlines(app, ids, pending, due=False)
        with app.app_context():
            sweep_deadlines(app, NOW)
            gc.collect()
            tracemalloc.start()
            for _ in range(20):
                sweep_deadlines(app, NOW)
                drain_outbox(app, lambda: NOW)
            peaks[pending] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    print(f"worker pass memory peak: {peaks[100] / 1024:.0f} KiB with 100 pending, {peaks[100_000] / 1024:.0f} KiB "
          f"with 100,000 — ratio {peaks[100_000] / peaks[100]:.2f} (flat: about 1)")


def _firing_memory(app, ids):
    """Memory while firing: 5,000 due against 20,000 due (batches of 500 keep it flat; both fill
    whole batches with deadlines of 500 different cases)."""
    from web.jobs.passes import sweep_deadlines

    fire_peaks = {}
    for due in (5_000, 20_000):
        empty(app)
        add_deadlines(app, ids, due, due=True)
        with app.app_context():
            gc.collect()
            tracemalloc.start()
            sweep_deadlines(app, NOW)
            fire_peaks[due] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    print(f"firing memory peak: {fire_peaks[5000] / 1024:.0f} KiB for 5,000 due, {fire_peaks[20_000] / 1024:.0f} KiB "
          f"for 20,000 — ratio {fire_peaks[20_000] / fire_peaks[5000]:.2f} (flat: about 1)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true", help="use TEST_POSTGRES_URL (its public schema is dropped)")
    parser.add_argument("-n", type=int, default=10_000)
    args = parser.parse_args()
    if args.postgres:
        url = os.environ["TEST_POSTGRES_URL"]
        eng = create_engine(url)
        with eng.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        eng.dispose()
        run(url, args.n, "PostgreSQL")
    else:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='traject-bench-')}/bench.db"
        run(url, args.n, "SQLite")


if __name__ == "__main__":
    main()
