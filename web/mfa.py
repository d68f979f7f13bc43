"""Multi-factor authentication for local accounts: TOTP (RFC 6238, pyotp) and one-time recovery codes.

Which accounts need it: those holding a role of `TRAJECT_MFA_ROLES` (the roles that read personal
trajectories of others, by default). Demo accounts in a demo instance are exempt: their password is
printed for everyone and their one-click login is the demo's point (docs/identity.md).

TOTP codes come from the user's phone, which runs on real time: codes are checked against the
wall clock (`wall_clock`), not the app's clock (which tests fix and a demo may shift). A code is
accepted once: the time step used is kept, and an older or equal step is refused (ASVS 2.8.4).
Recovery codes are kept as HMAC-SHA256 under the app's secret key, each usable once.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time

import pyotp
import segno
from flask import current_app
from sqlalchemy import delete, select

from engine.models import RecoveryCode, User

from .demo import DEMO_DOMAIN
from .extensions import db
from .runtime import now

ISSUER = "Traject"
RECOVERY_CODES = 10
STEP = 30
wall_clock = time.time  # a seam for the tests


def _demo_account(user: User) -> bool:
    return bool(current_app.config.get("TRAJECT_DEMO")) and user.email.endswith("@" + DEMO_DOMAIN)


def required(user: User) -> bool:
    """Must this account pass a second factor to log in?"""
    wanted = set(current_app.config.get("TRAJECT_MFA_ROLES") or ())
    return bool(wanted & {a.role for a in user.roles}) and not _demo_account(user)


def enrolled(user: User) -> bool:
    return bool(user.totp_secret)


def new_secret() -> str:
    return pyotp.random_base32()


def uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_svg(text: str) -> str:
    """The QR code as inline SVG markup (no script, no style attribute: the CSP stays strict)."""
    return segno.make(text, error="m").svg_inline(scale=5, dark="#000", light="#fff", title="QR")


def matching_step(secret: str, code: str) -> int | None:
    """The time step `code` belongs to: the current one or a neighbour (a phone's clock drifts)."""
    step = int(wall_clock()) // STEP
    totp = pyotp.TOTP(secret)
    return next((c for c in (step - 1, step, step + 1) if hmac.compare_digest(totp.at(c * STEP), code)), None)


def _check_totp(user: User, code: str) -> bool:
    step = matching_step(user.totp_secret, code)
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        return False  # wrong, or this code (or a later one) was used already
    user.totp_last_step = step
    return True


def _digest(code: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, code.strip().lower().replace("-", "").encode(), hashlib.sha256).hexdigest()


def _use_recovery_code(user: User, code: str) -> bool:
    row = db.session.scalar(select(RecoveryCode).where(RecoveryCode.user_id == user.id,
                                                       RecoveryCode.code_hash == _digest(code),
                                                       RecoveryCode.used_at.is_(None)))
    if row is None:
        return False
    row.used_at = now()
    return True


def verify(user: User, code: str | None) -> str | None:
    """'totp' or 'recovery' when the code is good (the caller commits), else None."""
    code = (code or "").strip().replace(" ", "")
    if not code or not enrolled(user):
        return None
    if code.isdigit() and len(code) == 6:
        return "totp" if _check_totp(user, code) else None
    return "recovery" if _use_recovery_code(user, code) else None


def enrol(user: User, secret: str, *, used_step: int | None = None) -> list[str]:
    """Store the secret; returns fresh recovery codes (shown once, kept only as hashes). `used_step`:
    the time step of the code the user confirmed the enrolment with, which may then not log in again."""
    user.totp_secret = secret
    user.totp_last_step = used_step
    user.mfa_enrolled_at = now()
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODES)]
    db.session.add_all(RecoveryCode(user_id=user.id, code_hash=_digest(c)) for c in codes)
    return codes


def reset(user: User) -> None:
    user.totp_secret = None
    user.totp_last_step = None
    user.mfa_enrolled_at = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
