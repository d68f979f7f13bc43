"""The worker: deadline sweeps and outbox delivery on a schedule; daily, the audit check, retention,
the audit checkpoint and (SQLite) the database file's integrity check.

APScheduler runs fixed interval jobs from an in-memory job store; no business timer lives in
the scheduler — every deadline and message is a row, so a restarted worker simply finds them
again. Each job runs at most once at a time and missed runs coalesce into one. Any number of
workers may run against one database.
"""
from __future__ import annotations

import logging
import signal
import threading
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask
from sqlalchemy.exc import OperationalError

from ..extensions import db
from .backoff import DatabaseBackoff
from .daily import CheckpointRefused, check_audit, check_integrity, run_retention, write_checkpoint
from .heartbeat import beat, forget_stale, worker_name
from .passes import drain_outbox, sweep_deadlines

log = logging.getLogger("web.worker")  # the name operators filter on


class Worker:
    """Interval jobs on an APScheduler (Blocking for `traject worker`, Background for `traject run`)."""

    def __init__(self, app: Flask, interval: float | None = None, *, background: bool = False):
        # APScheduler logs every run at INFO, and a run skipped because the previous one is still busy
        # (coalescing, as intended) at WARNING: the worker logs what matters itself.
        logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
        self.app = app
        self.interval = float(interval or app.config["TRAJECT_WORKER_INTERVAL"])
        self.name = worker_name()
        self.started_at = self._now()
        self.scheduler = (BackgroundScheduler if background else BlockingScheduler)(timezone=timezone.utc)
        # While the database is away every job backs off, then resumes (jobs/backoff.py).
        self.backoff = DatabaseBackoff(app, self.interval)
        first = datetime.now(timezone.utc)
        daily = float(app.config.get("TRAJECT_DAILY_INTERVAL") or 86400)
        for job in (self.sweep, self.drain):
            self._schedule(job, self.interval, first)
        # The daily jobs start a minute after the worker, not with its first pass.
        for job in (self.audit_check, self.retention, self.checkpoint, self.integrity_check):
            self._schedule(job, daily, first + timedelta(seconds=min(daily, 60.0)))
        self._stopping = threading.Event()

    def _now(self) -> datetime:
        return self.app.extensions["traject"].clock.now()

    def _schedule(self, job, seconds: float, first: datetime) -> None:
        # One run at a time; runs missed while one was busy collapse into one; late is never too late.
        self.scheduler.add_job(self.backoff.guard(job), "interval", seconds=seconds, id=job.__name__,
                               next_run_time=first, coalesce=True, max_instances=1, misfire_grace_time=None)

    def _run(self, failure: str, job) -> None:
        """The one job wrapper: an app context, the job, its failure logged and rolled back, the session removed."""
        with self.app.app_context():
            try:
                job()
            except Exception:
                db.session.rollback()
                log.exception(failure)
            finally:
                db.session.remove()

    def sweep(self) -> None:
        def job():
            result = sweep_deadlines(self.app, self._now())
            if result.reminded or result.overdue:
                log.info("sweep: %s", result.summary())
            beat(self.app, self.name, self.started_at, {"sweep": result.summary()})
        self._run("sweep failed; the rows stay due for the next pass", job)

    def drain(self) -> None:
        def job():
            result = drain_outbox(self.app, self.app.extensions["traject"].clock.now)
            if result.claimed:
                log.info("drain: %s", result.summary())
            beat(self.app, self.name, self.started_at, {"drain": result.summary()})
        self._run("drain failed; the rows come back when their lease ends", job)

    def audit_check(self) -> None:
        self._run("the audit check failed; it runs again at the next interval", lambda: check_audit(self.app))

    def retention(self) -> None:
        self._run("retention failed; it runs again at the next interval", lambda: run_retention(self.app))

    def checkpoint(self) -> None:
        def job():
            try:
                write_checkpoint(self.app)
            except CheckpointRefused:
                pass  # logged, and the admins alerted, by write_checkpoint
        self._run("the audit checkpoint failed; it runs again at the next interval", job)

    def integrity_check(self) -> None:
        def job():
            result = check_integrity(self.app, self._now())
            if result is not None:  # /healthz reads the newest result from the heartbeats
                beat(self.app, self.name, self.started_at, {"integrity": result})
        self._run("the integrity check failed; it runs again at the next interval", job)

    def register(self) -> None:
        """Forget workers not seen for a week; announce this one before its first pass."""
        with self.app.app_context():
            try:
                forget_stale(self.app)
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
