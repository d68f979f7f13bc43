"""/healthz: the database answers and passed its last integrity check; the worker's heartbeat for an admin.

A stranger learns only "ok" or 503 `unavailable`: the worker's host name, PID and passes are for an
administrator's bearer token.
"""
from __future__ import annotations

from datetime import datetime

from flask import Flask, jsonify
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from engine.models import WorkerHeartbeat

from . import auth, errors
from .extensions import db
from .runtime import now


def heartbeat_status(session, at: datetime) -> dict | None:
    """The most recent worker heartbeat: for /healthz and the admin page."""
    row = session.scalar(select(WorkerHeartbeat).order_by(WorkerHeartbeat.seen_at.desc()).limit(1))
    if row is None:
        return None
    return {"name": row.name, "seen_at": row.seen_at.isoformat(), "started_at": row.started_at.isoformat(),
            "age_seconds": round((at - row.seen_at).total_seconds(), 1), "last": row.info or {}}


def latest_integrity(session) -> dict | None:
    """The newest result of a worker's integrity check (jobs/daily.py), whichever worker ran it."""
    results = [row.info["integrity"] for row in session.scalars(select(WorkerHeartbeat))
               if isinstance((row.info or {}).get("integrity"), dict)]
    return max(results, key=lambda r: str(r.get("at", "")), default=None)


def _caller_is_admin() -> bool:
    token = auth.bearer_token()
    user = auth.user_for_token(token, now()) if token else None
    return user is not None and any(r.role == "admin" for r in user.roles)


def register(app: Flask) -> None:
    @app.get("/healthz")
    def healthz():
        try:
            db.session.execute(text("SELECT 1"))
        except SQLAlchemyError:
            db.session.rollback()
            return errors.error_response(503, "unavailable", "the database does not answer")
        # A stale worker is no reason for a 503 (the web still serves); a damaged database file is.
        try:
            worker = heartbeat_status(db.session, now())
            integrity = latest_integrity(db.session)
        except SQLAlchemyError:
            db.session.rollback()
            worker = integrity = None
        admin = _caller_is_admin()
        if integrity is not None and not integrity.get("ok", True):
            return errors.error_response(503, "unavailable", "the database failed its integrity check",
                                         {"integrity": integrity, "worker": worker} if admin else None)
        return jsonify({"status": "ok", **({"worker": worker} if worker and admin else {})})
