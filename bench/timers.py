"""3. Timers: N deadlines due at once, and the worker's memory with few or many pending.

Traject: every deadline is a row; the worker's sweep (web/worker.py: sweep_deadlines, batches
of engine/deadlines.py) claims the due rows and, per deadline, marks it overdue, appends a
`deadline_overdue` event to the case's audit chain and writes an outbox row to its owner.

The naive design, measured in the same run on the same database: APScheduler 3 with one
`date` job per deadline in a SQLAlchemyJobStore (its own table), a thread pool of 10, and a
job that does less than the sweep does (UPDATE the deadline + INSERT one outbox row, one
transaction). Time starts when the scheduler is resumed with all jobs stored and due, and
stops when the last job has run.

Memory: a real `traject worker` process (interval 0.2 s) against a database with 100, then
100,000 pending deadlines that are not yet due; its peak RSS over about 25 passes.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import bindparam, create_engine, func, select, text

from .common import ROOT, Row, log, make_app, percentile, seed, stats

# -- data ---------------------------------------------------------------------------------


def add_deadlines(app, world, n: int, due_at: datetime, per_case: int = 10) -> list[int]:
    """n pending deadlines on n/per_case bench_six cases (bulk inserts: this is setup, not measured)."""
    from engine.models import Case, Deadline
    from web.extensions import db

    with app.app_context():
        definition = app.extensions["traject"].latest(db.session)["bench_six"]
        n_cases = max(1, n // per_case)
        first = (db.session.scalar(select(func.max(Case.id))) or 0) + 1
        now = app.extensions["traject"].clock.now()
        base = dict(workflow_key="bench_six", definition_id=definition.row_id, region_id=world.region_id,
                    institution_id=world.institution_id, subject_id=world.aios_id, opened_by_id=world.opleider_id,
                    responsible_id=world.opleider_id, parent_id=None, title="Bench", state="s1", version=2,
                    data={}, opened_at=now, updated_at=now, closed_at=None, audit_seq=0, audit_head="")
        cases = [dict(base, id=first + i) for i in range(n_cases)]
        for start in range(0, n_cases, 5000):
            db.session.execute(Case.__table__.insert(), cases[start:start + 5000])
        rows = [dict(case_id=first + (i % n_cases), kind=f"t{i // n_cases}", label="Bench", due_at=due_at,
                     remind_at=due_at, status="pending", owner_role="responsible", reminder_days=[],
                     created_at=now, resolved_at=None) for i in range(n)]
        for start in range(0, n, 5000):
            db.session.execute(Deadline.__table__.insert(), rows[start:start + 5000])
        db.session.commit()
        ids = list(db.session.scalars(select(Deadline.id).where(Deadline.status == "pending")
                                      .order_by(Deadline.id.desc()).limit(n)))
        db.session.remove()
    return ids


def clear(app) -> None:
    from engine.models import AuditEvent, Case, Deadline, Notification
    from web.extensions import db

    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("TRUNCATE notification, deadline, audit_event, access_log, case_file CASCADE"))
        else:
            for model in (Notification, Deadline, AuditEvent, Case):
                db.session.execute(model.__table__.delete())
        db.session.commit()
        db.session.remove()


# -- the naive design -----------------------------------------------------------------------

_NAIVE: dict = {}


def naive_fire(deadline_id: int) -> None:
    """One APScheduler job: the deadline is overdue; tell its owner (one transaction)."""
    engine, now = _NAIVE["engine"], _NAIVE["now"]
    with engine.begin() as conn:
        conn.execute(text("UPDATE deadline SET status = 'overdue', remind_at = NULL WHERE id = :i AND status = 'pending'"),
                     {"i": deadline_id})
        conn.execute(text(
            "INSERT INTO notification (idempotency_key, recipient_role, kind, subject, body_text, attachments, status, "
            "attempts, next_attempt_at, created_at, data) VALUES (:k, 'responsible', 'deadline_overdue', 'Termijn "
            "verstreken', '', '[]', 'pending', 0, :now, :now, '{}')"), {"k": f"naive:{deadline_id}", "now": now})
    with _NAIVE["lock"]:
        _NAIVE["done"] += 1
        if _NAIVE["done"] == _NAIVE["total"]:
            _NAIVE["finished"].set()


def naive(app, ids: list[int]) -> tuple[float, float]:
    """(seconds until every job has run, seconds it took to store the jobs)."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from web.extensions import db

    with app.app_context():
        engine = db.engine
    _NAIVE.update(engine=engine, now=app.extensions["traject"].clock.now()
                  if engine.dialect.name == "postgresql" else app.extensions["traject"].clock.now().replace(tzinfo=None),
                  lock=threading.Lock(), done=0, total=len(ids), finished=threading.Event())
    store = SQLAlchemyJobStore(engine=engine, tablename="apscheduler_jobs")
    scheduler = BackgroundScheduler(jobstores={"default": store}, executors={"default": ThreadPoolExecutor(10)},
                                    timezone=timezone.utc)
    scheduler.start(paused=True)
    store.remove_all_jobs()
    due = datetime.now(timezone.utc) - timedelta(seconds=1)
    start = time.perf_counter()
    for deadline_id in ids:
        scheduler.add_job(naive_fire, "date", run_date=due, args=[deadline_id], id=f"deadline-{deadline_id}",
                          misfire_grace_time=None)
    stored = time.perf_counter() - start
    start = time.perf_counter()
    scheduler.resume()
    finished = _NAIVE["finished"].wait(timeout=600)
    seconds = time.perf_counter() - start
    scheduler.shutdown(wait=True)
    assert finished, f"naive design: only {_NAIVE['done']} of {len(ids)} jobs ran in 600 s"
    return seconds, stored


# -- memory --------------------------------------------------------------------------------


def worker_rss(url: str, instance: str, seconds: float = 5.0) -> dict:
    """Peak and final RSS (bytes) of a `traject worker --interval 0.2` process over `seconds`."""
    import psutil

    env = {**os.environ, "TRAJECT_ENV": "testing", "TRAJECT_INSTANCE": instance, "DATABASE_URL": url,
           "MAIL_BACKEND": "file"}
    traject = str(Path(sys.executable).with_name("traject"))
    proc = subprocess.Popen([traject, "worker", "--interval", "0.2"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        p = psutil.Process(proc.pid)
        time.sleep(1.5)  # imports, app, first passes
        samples = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited: {proc.stderr.read().decode()[-2000:]}")
            samples.append(p.memory_info().rss)
            time.sleep(0.1)
        return {"peak": max(samples), "last": samples[-1]}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the benchmark -------------------------------------------------------------------------


def run(url: str, backend: str, quick: bool) -> list[Row]:
    from engine.models import Deadline
    from web.extensions import db
    from web.jobs.passes import sweep_deadlines

    n = 2_000 if quick else 10_000
    # The naive design is the slow one (storing its jobs alone takes longer than the sweep): fewer runs.
    reps, naive_reps = (1, 1) if quick else (3, 1)
    app = make_app(url)
    world = seed(app)
    now = app.extensions["traject"].clock.now()
    traject_times, naive_times, stored = [], [], []
    for rep in range(reps):
        clear(app)
        add_deadlines(app, world, n, now - timedelta(hours=1))
        with app.app_context():
            start = time.perf_counter()
            result = sweep_deadlines(app, now)
            traject_times.append(time.perf_counter() - start)
            overdue = db.session.scalar(select(func.count()).select_from(Deadline).where(Deadline.status == "overdue"))
            db.session.remove()
        assert overdue == n and result.overdue == n, (overdue, result)
        log(f"  [{backend}] {n} due: traject {traject_times[-1]:.2f} s")
        if rep >= naive_reps:
            continue
        clear(app)
        ids = add_deadlines(app, world, n, now - timedelta(hours=1))
        seconds, store_seconds = naive(app, ids)
        naive_times.append(seconds)
        stored.append(store_seconds)
        with app.app_context():
            overdue = db.session.scalar(select(func.count()).select_from(Deadline).where(Deadline.status == "overdue"))
            db.session.remove()
        assert overdue == n, overdue
        log(f"  [{backend}] {n} due: APScheduler {seconds:.2f} s (+{store_seconds:.1f} s to store the jobs)")
    t, b = stats(traject_times), stats(naive_times)
    rows = [Row("3 timers", backend, f"{n:,} deadlines due at once: all fired (sweep)", t["median"], "s",
                baseline="APScheduler, one job per deadline, SQLAlchemyJobStore", baseline_value=b["median"],
                ratio=t["median"] / b["median"], target="< 10 s" + ("" if n == 10_000 else " (at 10,000)"),
                met=t["median"] < (10 if n == 10_000 else 10 * n / 10_000),
                detail=(f"median of {reps} (min {t['min']:.2f} s; APScheduler {len(naive_times)} run(s), min {b['min']:.2f} s, and "
                        f"{stats(stored)['median']:.1f} s to store its {n:,} jobs beforehand); per deadline the "
                        f"sweep writes an audit event too, the naive job does not"))]
    rows.append(lateness(url, backend, quick, app, world))
    if quick and backend != "sqlite":
        return rows
    # Memory: a real worker process.
    instance = app.config["TRAJECT_INSTANCE"]
    rss = {}
    for pending in (100, 100_000):
        clear(app)
        add_deadlines(app, world, pending, datetime.now(timezone.utc) + timedelta(days=365))
        rss[pending] = worker_rss(url, instance, 2.0 if quick else 3.0)
        log(f"  [{backend}] worker with {pending:,} pending: peak RSS {rss[pending]['peak'] / 2**20:.1f} MiB")
    ratio = rss[100_000]["peak"] / rss[100]["peak"]
    rows.append(Row("3 timers", backend, "worker peak RSS with 100,000 pending deadlines", rss[100_000]["peak"] / 2**20,
                    "MiB", baseline="the same worker with 100 pending", baseline_value=rss[100]["peak"] / 2**20,
                    ratio=ratio, target="flat (ratio ≈ 1)", met=ratio < 1.1,
                    detail="traject worker --interval 0.2, RSS sampled every 0.1 s"))
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return rows


# -- lateness: real workers on deadlines that fall due while they run ------------------------


def add_spread(app, world, n: int, first_due: datetime, window: float, per_case: int = 10) -> dict[int, datetime]:
    """n pending deadlines due one after another over `window` seconds from `first_due`: {id: due_at}."""
    add_deadlines(app, world, n, first_due, per_case)
    from engine.models import Deadline
    from web.extensions import db

    with app.app_context():
        ids = sorted(db.session.scalars(select(Deadline.id).where(Deadline.status == "pending")))
        due = {i: first_due + timedelta(seconds=window * k / n) for k, i in enumerate(ids)}
        table = Deadline.__table__
        statement = table.update().where(table.c.id == bindparam("i")).values(due_at=bindparam("d"),
                                                                                remind_at=bindparam("d"))
        pairs = [{"i": i, "d": d} for i, d in due.items()]
        for start in range(0, n, 5000):
            db.session.connection().execute(statement, pairs[start:start + 5000])
        db.session.commit()
        db.session.remove()
    return due


def lateness(url: str, backend: str, quick: bool, app, world) -> Row:
    """4 `traject worker` processes, deadlines falling due over a window: p99 of (seen overdue − due).

    "Seen" is when an observer polling every 0.1 s first reads the deadline as overdue, i.e. after the
    sweep's commit: what a user would see, not the moment the pass started."""
    from engine.models import AuditEvent
    from web.extensions import db

    n, window, workers, interval = (2_000, 10.0, 4, 1.0) if quick else (10_000, 30.0, 4, 1.0)
    clear(app)
    first_due = datetime.now(timezone.utc) + timedelta(seconds=8)  # the workers start meanwhile
    due = add_spread(app, world, n, first_due, window)
    env = {**os.environ, "TRAJECT_ENV": "testing", "TRAJECT_INSTANCE": app.config["TRAJECT_INSTANCE"],
           "DATABASE_URL": url, "MAIL_BACKEND": "file"}
    traject = str(Path(sys.executable).with_name("traject"))
    procs = [subprocess.Popen([traject, "worker", "--interval", str(interval)], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(workers)]
    seen: dict[int, float] = {}
    observer = create_engine(url)
    try:
        stop_at = time.time() + 8 + window + 60
        query = text("SELECT id FROM deadline WHERE status = 'overdue'")
        while len(seen) < n and time.time() < stop_at:
            with observer.connect() as conn:
                ids = conn.execute(query).scalars().all()
            moment = time.time()
            for i in ids:
                seen.setdefault(i, moment)
            for proc in procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"a worker exited: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        observer.dispose()
    with app.app_context():
        fired = db.session.scalar(select(func.count()).select_from(AuditEvent)
                                  .where(AuditEvent.type == "deadline_overdue"))
        db.session.remove()
    assert len(seen) == n, f"only {len(seen)} of {n} deadlines fired within the window + 60 s"
    late = [seen[i] - due[i].timestamp() for i in due]
    p99, p50 = percentile(late, 99), percentile(late, 50)
    bound = interval + 1.0
    log(f"  [{backend}] lateness with {workers} workers, {n:,} due over {window:.0f} s: p50 {p50:.2f} s, "
        f"p99 {p99:.2f} s, max {max(late):.2f} s; {fired} overdue events for {n} deadlines")
    return Row("3 timers", backend, f"lateness, {workers} workers, {n:,} deadlines due over {window:.0f} s: p99",
               p99, "s", baseline="the worker interval + 1 s", baseline_value=bound, ratio=p99 / bound,
               target=f"≤ {bound:.0f} s, none twice", met=p99 <= bound and fired == n,
               detail=(f"p50 {p50:.2f} s, max {max(late):.2f} s; fired − due as an observer polling every 0.1 s "
                       f"first saw the commit; {fired} deadline_overdue events for {n} deadlines "
                       f"(each fired exactly once: {fired == n})"),
               extra={"p50": p50, "max": max(late), "events": fired})


