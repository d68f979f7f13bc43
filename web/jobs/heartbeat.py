"""The worker's heartbeat: one row per worker process, renewed after every pass (read by /healthz)."""
from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import delete

from engine.models import WorkerHeartbeat

from ..extensions import db

FORGET_AFTER = timedelta(days=7)


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


def forget_stale(app: Flask) -> None:
    """Workers not seen for a week are gone; their rows would only confuse /healthz."""
    cutoff = app.extensions["traject"].clock.now() - FORGET_AFTER
    db.session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.seen_at < cutoff))
    db.session.commit()
