"""The worker: deadline sweeps and outbox delivery on a schedule, and one-off passes.

APScheduler runs two fixed interval jobs (sweep, drain) from an in-memory job store;
no business timer lives in the scheduler — every deadline and message is a row, so a
restarted worker simply finds them again. Each job runs at most once at a time and
missed runs coalesce into one. Any number of workers may run against one database.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from datetime import datetime, timedelta, timezone

from flask import Flask
from sqlalchemy import delete, select
from sqlalchemy.exc import OperationalError

from engine import deadlines
from engine.models import WorkerHeartbeat
from notifications import backends, outbox
from notifications.render import MailSettings

from .extensions import db

log = logging.getLogger(__name__)


def sweep_deadlines(app: Flask, now: datetime, batch: int = deadlines.BATCH) -> deadlines.SweepResult:
    """Every due deadline as of `now`: one transaction per batch, until a batch finds nothing more to do."""
    engine = app.extensions["traject"]
    total = deadlines.SweepResult()
    session = db.session
    while True:
        try:
            result = deadlines.sweep(session, engine, now, limit=batch)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.expunge_all()  # memory stays flat however many rows a pass handles
        total += result
        # A short batch means nothing more is due; a batch with no progress means the rest is
        # claimed by other workers (or their cases are busy): leave it to the next pass.
        if result.candidates < batch or result.processed == 0:
            return total


def drain_outbox(app: Flask, clock) -> outbox.DrainResult:
    return outbox.drain(db.session, mail_backend(app), clock, settings=MailSettings.from_config(app.config),
                        engine=app.extensions["traject"], lease=timedelta(seconds=app.config["TRAJECT_DELIVERY_LEASE"]))


def mail_backend(app: Flask):
    backend = app.extensions.get("traject.mail")
    if backend is None:
        backend = app.extensions["traject.mail"] = backends.from_config(app.config)
    return backend


def one_pass(app: Flask, now: datetime | None = None) -> dict:
    """Deadlines, then the outbox, as of `now` (default: the app's clock): what `traject sweep` prints."""
    clock = app.extensions["traject"].clock
    fixed = now is not None
    when = now or clock.now()
    swept = sweep_deadlines(app, when)
    drained = drain_outbox(app, (lambda: when) if fixed else clock.now)
    return {**swept.summary(), **drained.summary()}


# -- heartbeat ----------------------------------------------------------------------

def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def beat(app: Flask, name: str, started_at: datetime, info: dict) -> None:
    now = app.extensions["traject"].clock.now()
    session = db.session
    try:
        row = session.get(WorkerHeartbeat, name)
        if row is None:
            session.add(WorkerHeartbeat(name=name, started_at=started_at, seen_at=now, info=info))
        else:
            row.seen_at = now
            row.info = {**(row.info or {}), **info}
        session.commit()
    except BaseException:
        session.rollback()
        raise


def heartbeat_status(session, now: datetime) -> dict | None:
    """The most recent worker heartbeat: for /healthz and the admin page."""
    row = session.scalar(select(WorkerHeartbeat).order_by(WorkerHeartbeat.seen_at.desc()).limit(1))
    if row is None:
        return None
    return {"name": row.name, "seen_at": row.seen_at.isoformat(), "started_at": row.started_at.isoformat(),
            "age_seconds": round((now - row.seen_at).total_seconds(), 1), "last": row.info or {}}


# -- the scheduler --------------------------------------------------------------------

class Worker:
    """Two interval jobs on an APScheduler (Blocking for `traject worker`, Background for `traject run`)."""

    def __init__(self, app: Flask, interval: float | None = None, *, background: bool = False):
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.schedulers.blocking import BlockingScheduler

        # APScheduler logs every run at INFO, and a run skipped because the previous one is still busy
        # (coalescing, as intended) at WARNING: the worker logs what matters itself.
        logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
        self.app = app
        self.interval = float(interval or app.config["TRAJECT_WORKER_INTERVAL"])
        self.name = worker_name()
        self.started_at = app.extensions["traject"].clock.now()
        cls = BackgroundScheduler if background else BlockingScheduler
        self.scheduler = cls(timezone=timezone.utc)
        first = datetime.now(timezone.utc)
        # While the database is away every job backs off, then resumes (web/backoff.py).
        from .backoff import DatabaseBackoff

        self.backoff = DatabaseBackoff(app, self.interval)
        for job in (self.sweep, self.drain):
            # One run at a time; runs missed while one was busy collapse into one; late is never too late.
            self.scheduler.add_job(self.backoff.guard(job), "interval", seconds=self.interval, id=job.__name__,
                                   next_run_time=first, coalesce=True, max_instances=1, misfire_grace_time=None)
        # Daily: verify every audit chain (the admins are alerted once per break), apply retention.
        from .privacy_jobs import add_daily_jobs

        self.daily = add_daily_jobs(self, first, self.backoff.guard)
        self._stopping = threading.Event()

    def sweep(self) -> None:
        with self.app.app_context():
            try:
                result = sweep_deadlines(self.app, self.app.extensions["traject"].clock.now())
                if result.reminded or result.overdue:
                    log.info("sweep: %s", result.summary())
                beat(self.app, self.name, self.started_at, {"sweep": result.summary()})
            except Exception:
                log.exception("sweep failed; the rows stay due for the next pass")
            finally:
                db.session.remove()

    def drain(self) -> None:
        with self.app.app_context():
            try:
                result = drain_outbox(self.app, self.app.extensions["traject"].clock.now)
                if result.claimed:
                    log.info("drain: %s", result.summary())
                beat(self.app, self.name, self.started_at, {"drain": result.summary()})
            except Exception:
                log.exception("drain failed; the rows come back when their lease ends")
            finally:
                db.session.remove()

    def register(self) -> None:
        with self.app.app_context():
            cutoff = self.app.extensions["traject"].clock.now() - timedelta(days=7)
            try:
                # Forget workers not seen for a week; announce this one before its first pass.
                db.session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.seen_at < cutoff))
                db.session.commit()
                beat(self.app, self.name, self.started_at, {"interval": self.interval})
            except OperationalError as exc:  # the database is away: the first pass that reaches it beats
                db.session.rollback()
                self.backoff.failed(exc)
            finally:
                db.session.remove()

    def stop(self, *_args) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        log.info("worker %s stopping: finishing the running pass", self.name)
        # wait=True: a pass in progress finishes its transaction; nothing new starts.
        self.scheduler.shutdown(wait=True)

    def run_forever(self) -> None:
        """`traject worker`: blocks until SIGTERM or SIGINT, then stops cleanly."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        self.register()
        log.info("worker %s: sweep and drain every %s s", self.name, self.interval)
        self.scheduler.start()  # blocks until stop()
        log.info("worker %s stopped", self.name)

    def start_background(self) -> None:
        self.register()
        self.scheduler.start()
