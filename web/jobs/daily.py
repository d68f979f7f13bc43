"""The worker's daily jobs: verify every audit chain (alerting the admins once per break) and apply retention.

Both are also commands: `traject audit verify` (read only) and `traject privacy retention`.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import datetime

from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from engine import audit, outbox, privacy
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
            outbox.add(session, key=f"{prefix}{outbox.recipient_key(uid, None)}", case_id=case_id, seq=None, uid=uid,
                       address=None, role="admin", kind=ALERT_KIND, subject=f"Audit-spoor verbroken: {where}",
                       body_text=body, now=now, data={"case_id": brk.case_id, "seq": brk.seq, "problem": brk.problem})
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


def run_retention(app: Flask, now: datetime | None = None, dry_run: bool = False,
                  case_ids=None) -> privacy.RetentionResult:
    """Pseudonymise or erase every case that is due and not held: one transaction per case, so one
    case's trouble never stops the others and each finished case stays done."""
    now = now or app.extensions["traject"].clock.now()
    session, policies, key = db.session, app.config.get("TRAJECT_RETENTION") or {}, pseudonym_key(app)
    result = privacy.RetentionResult()
    decisions = privacy.plan(session, policies, now, case_ids)
    session.rollback()
    for d in decisions:
        if d.held:
            result.held[d.case_id] = d.held
        elif dry_run:
            privacy.record(result, d)
        else:
            _retain(session, policies, d, now, key, result)
    if result.pseudonymised or result.erased or result.failed:
        log.info("retention%s: %s", " (dry run)" if dry_run else "", result.summary())
    return result


def _retain(session, policies, d: privacy.Decision, now: datetime, key: bytes, result) -> None:
    try:
        # Checked again under the case's lock: a hold placed meanwhile wins.
        if privacy.redact_case(session, policies, d.case_id, d.stage, now, key):
            privacy.record(result, d)
        session.commit()
    except privacy.RetentionRefused as exc:
        session.rollback()
        log.error("retention of case %s refused: %s", d.case_id, exc)
        result.failed[d.case_id] = str(exc)[:300]
    except Exception as exc:  # one case's trouble never stops the others
        session.rollback()
        log.exception("retention of case %s failed", d.case_id)
        result.failed[d.case_id] = str(exc)[:300]
