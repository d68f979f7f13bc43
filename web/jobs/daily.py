"""The worker's daily jobs: verify every audit chain (alerting the admins once per break), apply retention,
and on SQLite check the database file itself (PRAGMA quick_check; /healthz reports a failure).

The first two are also commands: `traject audit verify` (read only) and `traject privacy retention`.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import datetime

from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError, IntegrityError

from engine import audit, privacy
from engine.models import Case, Notification, RoleAssignment, User

from ..extensions import db

log = logging.getLogger("web.worker")

ALERT_KIND = audit.BREAK_ALERT_KIND


def pseudonym_key(app: Flask) -> bytes:
    """TRAJECT_PSEUDONYM_KEY, else a key derived from SECRET_KEY (then a new SECRET_KEY makes new pseudonyms)."""
    configured = app.config.get("TRAJECT_PSEUDONYM_KEY")
    if configured:
        return configured.encode()
    return hmac.new(app.config["SECRET_KEY"].encode(), b"traject-pseudonym-key", hashlib.sha256).digest()


def admins(session) -> list[int]:
    return list(session.scalars(
        select(User.id).join(RoleAssignment, RoleAssignment.user_id == User.id)
        .where(RoleAssignment.role == "admin", User.active.is_(True)).distinct().order_by(User.id)))


def break_key(brk: audit.Break) -> str:
    ident = hashlib.sha256(f"{brk.case_id}:{brk.seq}:{brk.problem}".encode()).hexdigest()[:20]
    return f"audit-break:{ident}:"


def check_audit(app: Flask, now: datetime | None = None) -> dict:
    """Verify every chain; each break not reported before goes to every active admin (outbox) and the log."""
    session = db.session
    now = now or app.extensions["traject"].clock.now()
    cases, events, breaks = audit.find_breaks(session)
    session.rollback()
    alerted = known = 0
    for brk in breaks:
        prefix = break_key(brk)
        if session.scalar(select(Notification.id).where(Notification.idempotency_key.like(prefix + "%")).limit(1)):
            known += 1
            log.warning("audit chain still broken: %s (the admins were alerted before)", brk)
            continue
        recipients = admins(session)
        case_id = brk.case_id if session.get(Case, brk.case_id) is not None else None
        where = f"zaak {brk.case_id}" + (f", gebeurtenis {brk.seq}" if brk.seq is not None else "")
        body = (f"De dagelijkse controle van het audit-spoor vond een breuk: {where}.\n"
                f"Probleem: {brk.problem}\n\nControleer met `traject audit verify --case {brk.case_id}` en "
                "vergelijk met de laatste back-up. / The daily audit check found a broken chain.")
        for uid in recipients:
            session.add(Notification(
                idempotency_key=f"{prefix}user:{uid}", case_id=case_id, event_seq=None, recipient_user_id=uid,
                recipient_address=None, recipient_role="admin", kind=ALERT_KIND,
                subject=f"Audit-spoor verbroken: {where}", body_text=body, attachments=[], status="pending",
                attempts=0, next_attempt_at=now, created_at=now,
                data={"case_id": brk.case_id, "seq": brk.seq, "problem": brk.problem}))
        try:
            session.commit()
        except IntegrityError:  # another worker reported it at the same moment
            session.rollback()
            known += 1
            continue
        if recipients:
            alerted += 1
            log.error("AUDIT CHAIN BROKEN: %s; %d admin(s) alerted", brk, len(recipients))
        else:
            log.error("AUDIT CHAIN BROKEN: %s; no active admin to alert", brk)
    return {"cases": cases, "events": events, "breaks": len(breaks), "alerted": alerted, "known": known}


def integrity_problems(session) -> list[str] | None:
    """PRAGMA quick_check on SQLite: [] when the file is sound; None where there is no such check (PostgreSQL)."""
    if session.get_bind().dialect.name != "sqlite":
        return None
    found = list(session.execute(text("PRAGMA quick_check")).scalars())
    return [] if found == ["ok"] else [str(p) for p in found]


def check_integrity(app: Flask, now: datetime | None = None) -> dict | None:
    """The database file's own check; a failure is logged as an error (and kept in the heartbeat by the worker)."""
    now = now or app.extensions["traject"].clock.now()
    try:
        problems = integrity_problems(db.session)
    except DatabaseError as exc:  # "database disk image is malformed": the check itself cannot run
        db.session.rollback()
        problems = [str(getattr(exc, "orig", exc))]
    if problems is None:
        return None
    if problems:
        log.error("DATABASE integrity check FAILED (PRAGMA quick_check): %s; stop Traject and restore the latest "
                  "backup (traject restore FILE)", "; ".join(problems[:5]))
    return {"ok": not problems, "at": now.isoformat(), "problems": problems[:20]}


def run_retention(app: Flask, now: datetime | None = None, dry_run: bool = False,
                  case_ids=None) -> privacy.RetentionResult:
    now = now or app.extensions["traject"].clock.now()
    result = privacy.apply_retention(db.session, app.config.get("TRAJECT_RETENTION") or {}, now,
                                     pseudonym_key(app), dry_run=dry_run, case_ids=case_ids)
    if result.pseudonymised or result.erased or result.failed:
        log.info("retention%s: %s", " (dry run)" if dry_run else "", result.summary())
    return result
