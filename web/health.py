"""/healthz: the database answers, and the newest worker heartbeat (informational)."""
from __future__ import annotations

from datetime import datetime

from flask import Flask, jsonify
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from engine.models import WorkerHeartbeat

from . import errors
from .extensions import db
from .runtime import now


def heartbeat_status(session, at: datetime) -> dict | None:
    """The most recent worker heartbeat: for /healthz and the admin page."""
    row = session.scalar(select(WorkerHeartbeat).order_by(WorkerHeartbeat.seen_at.desc()).limit(1))
    if row is None:
        return None
    return {"name": row.name, "seen_at": row.seen_at.isoformat(), "started_at": row.started_at.isoformat(),
            "age_seconds": round((at - row.seen_at).total_seconds(), 1), "last": row.info or {}}


def register(app: Flask) -> None:
    @app.get("/healthz")
    def healthz():
        try:
            db.session.execute(text("SELECT 1"))
        except SQLAlchemyError:
            db.session.rollback()
            return errors.error_response(503, "unavailable", "the database does not answer")
        # A stale worker is no reason for a 503 (the web still serves).
        try:
            worker = heartbeat_status(db.session, now())
        except SQLAlchemyError:
            db.session.rollback()
            worker = None
        return jsonify({"status": "ok", **({"worker": worker} if worker else {})})
