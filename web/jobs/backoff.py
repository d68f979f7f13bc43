"""The worker while the database is away: back off, keep the rows, resume.

Every worker job runs behind one gate. Before a job touches the database the gate asks it
a trivial question (SELECT 1). When that fails the job is skipped and the gate closes for
interval × 2^(failures-1) seconds, at most `ceiling`; passes that fall in that window are
skipped without a connection attempt. The first failure is logged as an error, later ones
as warnings, the recovery once. Nothing is lost meanwhile: deadlines and messages are rows,
and a sweep after the outage takes every row whose moment has passed (engine/deadlines.py).
"""
from __future__ import annotations

import logging
import threading
import time
from functools import wraps

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from ..extensions import db

log = logging.getLogger("web.worker")


class DatabaseBackoff:
    def __init__(self, app, interval: float, ceiling: float | None = None, clock=time.monotonic):
        self.app = app
        self.interval = max(float(interval), 0.05)
        self.ceiling = float(ceiling if ceiling is not None else max(60.0, 4 * self.interval))
        self.clock = clock
        self.failures = 0  # consecutive
        self.attempts = 0  # connection attempts made while down (for tests and the log)
        self.outages = 0
        self.retry_at = 0.0
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        return self.failures > 0

    def delay(self) -> float:
        return min(self.ceiling, self.interval * 2 ** max(self.failures - 1, 0))

    def guard(self, job):
        """The job, run only when the gate is open and the database answers."""

        @wraps(job)
        def gated():
            with self._lock:
                if self.clock() < self.retry_at:
                    return  # backing off: this pass is skipped without touching the database
            if self.ping():
                job()

        return gated

    def ping(self) -> bool:
        with self.app.app_context():
            try:
                db.session.execute(text("SELECT 1"))
                db.session.rollback()
            except (OperationalError, DBAPIError) as exc:
                self.failed(exc)
                return False
            finally:
                db.session.remove()
        self.recovered()
        return True

    def failed(self, exc: Exception) -> None:
        with self._lock:
            self.failures += 1
            self.attempts += 1
            wait = self.delay()
            self.retry_at = self.clock() + wait
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
            if self.failures == 1:
                self.outages += 1
                log.error("database unavailable (%s): deadlines and messages wait in their rows; "
                          "retrying in %.1f s", reason, wait)
            else:
                log.warning("database still unavailable after %d attempts; next attempt in %.1f s",
                            self.failures, wait)

    def recovered(self) -> None:
        with self._lock:
            if self.failures:
                log.info("database reachable again after %d failed attempt(s): resuming", self.failures)
            self.failures = 0
            self.retry_at = 0.0
