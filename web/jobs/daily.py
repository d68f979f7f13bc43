"""The worker's daily jobs: verify every audit chain (alerting the admins once per break), apply retention,
write a signed checkpoint of every chain's head outside the database, and on SQLite check the
database file itself (PRAGMA quick_check; /healthz reports a failure).

They are also commands: `traject audit check` (and the read-only `traject audit verify`), `traject privacy
retention`, `traject audit checkpoint`. What a checkpoint holds and how to verify against one:
docs/evidence.md.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path

from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError, IntegrityError

from engine import audit, outbox, privacy
from engine.models import Case, Notification

from ..extensions import db

log = logging.getLogger("web.worker")

ALERT_KIND = audit.BREAK_ALERT_KIND
CHECKPOINT_KIND = "audit_checkpoint"
DEV_ENVS = ("development", "testing")


def pseudonym_key(app: Flask) -> bytes:
    """TRAJECT_PSEUDONYM_KEY, else a key derived from SECRET_KEY (then a new SECRET_KEY makes new pseudonyms)."""
    configured = app.config.get("TRAJECT_PSEUDONYM_KEY")
    if configured:
        return configured.encode()
    return hmac.new(app.config["SECRET_KEY"].encode(), b"traject-pseudonym-key", hashlib.sha256).digest()


def admins(session) -> list[int]:
    return outbox.active_holders(session, ("admin",))


def break_key(brk: audit.Break) -> str:
    ident = hashlib.sha256(f"{brk.case_id}:{brk.seq}:{brk.problem}".encode()).hexdigest()[:20]
    return f"audit-break:{ident}:"


def _alert(session, brk: audit.Break, now: datetime) -> str:
    """One break to every active admin (outbox) and the log, once: "alerted", "known" or "no_admin"."""
    prefix = break_key(brk)
    if session.scalar(select(Notification.id).where(Notification.idempotency_key.like(prefix + "%")).limit(1)):
        log.warning("audit chain still broken: %s (the admins were alerted before)", brk)
        return "known"
    recipients = admins(session)
    case_id = brk.case_id if brk.case_id is not None and session.get(Case, brk.case_id) is not None else None
    if brk.case_id is None:
        where, check = "checkpoint", "traject audit verify"
    else:
        where = f"zaak {brk.case_id}" + (f", gebeurtenis {brk.seq}" if brk.seq is not None else "")
        check = f"traject audit verify --case {brk.case_id}"
    body = (f"De dagelijkse controle van de audittrail vond een breuk: {where}.\n"
            f"Probleem: {brk.problem}\n\nControleer met `{check}` en "
            "vergelijk met de laatste back-up. / The daily audit check found a broken chain.")
    for uid in recipients:
        outbox.add(session, key=f"{prefix}{outbox.recipient_key(uid, None)}", case_id=case_id, seq=None, uid=uid,
                   address=None, role="admin", kind=ALERT_KIND, subject=f"Audittrail verbroken: {where}",
                   body_text=body, now=now, data={"case_id": brk.case_id, "seq": brk.seq, "problem": brk.problem})
    try:
        session.commit()
    except IntegrityError:  # another worker reported it at the same moment
        session.rollback()
        return "known"
    if recipients:
        log.error("AUDIT CHAIN BROKEN: %s; %d admin(s) alerted", brk, len(recipients))
        return "alerted"
    log.error("AUDIT CHAIN BROKEN: %s; no active admin to alert", brk)
    return "no_admin"


def check_audit(app: Flask, now: datetime | None = None) -> dict:
    """Verify every chain (and against the newest checkpoint); each break not reported before goes to every
    active admin (outbox) and the log."""
    session = db.session
    now = now or app.extensions["traject"].clock.now()
    path, checkpoint, refused = verified_checkpoint(app, newest_checkpoint(app))
    cases, events, breaks = audit.find_breaks(session, checkpoint=checkpoint)
    session.rollback()
    breaks = ([refused] if refused else []) + breaks
    outcomes = [_alert(session, brk, now) for brk in breaks]
    summary = {"cases": cases, "events": events, "breaks": len(breaks), "alerted": outcomes.count("alerted"),
               "known": outcomes.count("known")}
    if path is not None:
        summary["checkpoint"] = path.name
    return summary


# -- checkpoints ------------------------------------------------------------------------------------------


def audit_key(app: Flask) -> bytes | None:
    """TRAJECT_AUDIT_KEY; in development and testing a key derived from SECRET_KEY (said in the log);
    in production without it: None (no checkpoint is written or checked)."""
    configured = app.config.get("TRAJECT_AUDIT_KEY")
    if configured:
        return configured.encode()
    if app.config.get("TRAJECT_ENV") in DEV_ENVS:
        log.warning("TRAJECT_AUDIT_KEY is not set: audit checkpoints are signed with a key derived from "
                    "SECRET_KEY (%s only; set TRAJECT_AUDIT_KEY in production)", app.config.get("TRAJECT_ENV"))
        return hmac.new(app.config["SECRET_KEY"].encode(), b"traject-audit-key", hashlib.sha256).digest()
    return None


def checkpoint_dir(app: Flask) -> Path:
    return Path(app.config["TRAJECT_INSTANCE"]) / "checkpoints"


def newest_checkpoint(app: Flask) -> Path | None:
    # The names sort by time: checkpoint-<UTC moment>-<n>.json.
    found = sorted(checkpoint_dir(app).glob("checkpoint-*.json"))
    return found[-1] if found else None


def verified_checkpoint(app: Flask, path: Path | None) -> tuple[Path | None, dict | None, audit.Break | None]:
    """(path, the checkpoint if its HMAC is right, else a break saying what is wrong with it)."""
    if path is None:
        return None, None, None
    key = audit_key(app)
    if key is None:
        log.error("checkpoint %s not compared: TRAJECT_AUDIT_KEY is not set", path)
        return None, None, None
    try:
        checkpoint = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        problem = f"cannot be read ({exc})"
        checkpoint = None
    else:
        problem = audit.checkpoint_problem(checkpoint, key)
    if problem:
        return path, None, audit.Break(None, None, f"checkpoint {Path(path).name}: {problem}",
                                       {"item": "checkpoint", "checkpoint_file": str(path)})
    return path, checkpoint, None


def _write_private(path: Path, text: str, exclusive: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o600)  # an existing --out file keeps no wider mode


class CheckpointRefused(RuntimeError):
    pass


def write_checkpoint(app: Flask, now: datetime | None = None, out: str | None = None, force: bool = False) -> dict:
    """Sign the heads of every chain, write them to <instance>/checkpoints/ (0600) and mail them to the admins.

    The database must still match the previous checkpoint: otherwise signing its present heads would make
    a cut tail or a rewritten chain look like the newest truth. Then nothing is written, the admins are
    alerted, and `force` (an operator who knows why, e.g. after restoring a backup) overrides."""
    session = db.session
    now = now or app.extensions["traject"].clock.now()
    key = audit_key(app)
    if key is None:
        log.error("audit checkpoint refused: TRAJECT_AUDIT_KEY is not set (production needs a key kept apart "
                  "from the database)")
        raise CheckpointRefused("TRAJECT_AUDIT_KEY is not set: no checkpoint written")
    previous, checkpoint, refused = verified_checkpoint(app, newest_checkpoint(app))
    breaks = [refused] if refused else audit.compare_checkpoint(session, checkpoint) if checkpoint else []
    session.rollback()
    if breaks and not force:
        for brk in breaks:
            _alert(session, brk, now)
        log.error("audit checkpoint refused: the database no longer matches %s (%s)", previous.name, breaks[0])
        raise CheckpointRefused(f"the database no longer matches {previous.name}: {breaks[0]}")
    if breaks:
        log.warning("audit checkpoint forced although the database no longer matches %s: %s",
                    previous.name, breaks[0])
    signed = audit.sign_checkpoint(audit.checkpoint_payload(session, now), key)
    session.rollback()
    text = json.dumps(signed, indent=1, sort_keys=True) + "\n"
    folder = checkpoint_dir(app)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    n = len(list(folder.glob(f"checkpoint-{stamp}-*.json")))
    while True:
        path = folder / f"checkpoint-{stamp}-{n:03d}.json"
        try:
            _write_private(path, text, exclusive=True)
            break
        except FileExistsError:  # another worker wrote one at the same moment
            n += 1
    if out:
        _write_private(Path(out), text, exclusive=False)
    recipients = admins(session)
    body = (f"Het dagelijkse checkpoint van de audittrail: {signed['cases']} zaken, {signed['created_at']}.\n"
            f"Bewaar dit bericht buiten Traject; controleer later met `traject audit verify --checkpoint FILE`, "
            "met dit JSON-document als FILE. / The daily audit checkpoint: keep this message outside Traject.\n\n"
            + text)
    for uid in recipients:
        outbox.add(session, key=f"audit-checkpoint:{signed['hmac'][:32]}:{outbox.recipient_key(uid, None)}",
                   case_id=None, seq=None, uid=uid, address=None, role="admin", kind=CHECKPOINT_KIND,
                   subject=f"Audit-checkpoint {signed['created_at']}: {signed['cases']} zaken", body_text=body,
                   now=now, data={"checkpoint": path.name, "cases": signed["cases"], "hmac": signed["hmac"]})
    session.commit()
    if not recipients:
        log.warning("audit checkpoint %s written; no active admin to mail it to", path)
    else:
        log.info("audit checkpoint %s written (%d cases); mailed to %d admin(s)", path, signed["cases"],
                 len(recipients))
    return {"checkpoint": str(path), "cases": signed["cases"], "created_at": signed["created_at"],
            "mailed": len(recipients), **({"out": out} if out else {}), **({"forced": True} if breaks else {})}


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
