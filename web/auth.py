"""Passwords (scrypt via werkzeug), API tokens (only their sha256 stored, expiring, revocable).

A new password or a deactivation ends every API token and every browser session of the account,
whichever code path changed it (the password page, the command line, the admin's pages): a flush
of such a change revokes the tokens and raises the session epoch in the same transaction.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from flask import current_app, g, request
from sqlalchemy import bindparam, event, inspect, select, update
from sqlalchemy.orm import joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from engine.models import AuthToken, User

from .extensions import db, limiter
from .runtime import now as app_now

# Compared against when the e-mail is unknown, so both paths cost one KDF run.
_DUMMY_HASH = generate_password_hash("not-a-password")


def hash_password(password: str) -> str:
    return generate_password_hash(password)  # scrypt, salted


def check_credentials(email: str, password: str) -> User | None:
    email = email.strip().lower()
    if email.endswith("@demo.traject.nl") and not current_app.config["TRAJECT_DEMO"]:
        email = ""  # demo accounts work only in a demo instance
    user = db.session.scalar(select(User).where(User.email == email)) if email else None
    if user is None or not user.active or not user.password_hash:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


# CONTRACT.md: at most 10 failed password checks per account in 15 minutes, whichever door they come through.
LOGIN_LIMIT = "10 per 15 minutes"


def _account_key(email) -> str:
    email = str(email).strip().lower() if email else ""
    return f"login:{email}" if email else f"login-ip:{request.remote_addr}"


def login_limit(email_of):
    """The one budget of failed password checks per account, for a view that checks a password.

    Every such view (the API's tokens, the login form, the password page) shares the scope "login"
    and the key "login:<e-mail>", so guesses cannot be spread over the doors to get more of them.
    `email_of()` names the account the request is about; a failure is counted by `password_failed()`.
    """
    return limiter.shared_limit(LOGIN_LIMIT, scope="login", key_func=lambda: _account_key(email_of()),
                                methods=["POST"], deduct_when=lambda response: g.get("login_failed", False))


def password_failed() -> None:
    """Count this request against its account's login budget (see login_limit)."""
    g.login_failed = True


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user: User, now: datetime) -> tuple[str, datetime]:
    token = secrets.token_urlsafe(32)
    expires = now + timedelta(hours=current_app.config["TOKEN_TTL_HOURS"])
    db.session.add(AuthToken(user_id=user.id, token_hash=_digest(token), created_at=now, expires_at=expires))
    return token, expires


# Built once (every API request runs it), with the roles in the same statement: the actor needs them.
_TOKEN_USER = (select(AuthToken, User).join(User, User.id == AuthToken.user_id)
               .where(AuthToken.token_hash == bindparam("token_hash")).options(joinedload(User.roles)))


def user_for_token(token: str, now: datetime) -> User | None:
    row = db.session.execute(_TOKEN_USER, {"token_hash": _digest(token)}).unique().first()
    if row is None:
        return None
    tok, user = row
    if tok.revoked_at is not None or tok.expires_at <= now or not user.active:
        return None
    g.token_id = tok.id
    return user


def revoke_current(now: datetime) -> None:
    db.session.execute(update(AuthToken).where(AuthToken.id == g.token_id).values(revoked_at=now))


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


class SessionUser:
    """flask-login's view of a user; the engine's User model stays free of Flask."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, user: User):
        self.user = user

    @property
    def is_active(self) -> bool:
        return self.user.active

    def get_id(self) -> str:
        return str(self.user.id)

    def __getattr__(self, name):
        return getattr(self.user, name)


def load_session_user(user_id: str) -> SessionUser | None:
    from flask import session

    try:
        user = db.session.get(User, int(user_id))
    except (TypeError, ValueError):
        return None
    if user is None or not user.active or session.get("epoch", 0) != (user.session_epoch or 0):
        return None  # a session from before the last logout or password change
    return SessionUser(user)


# The login's and the last request's moments (app clock, POSIX seconds), kept in the signed session cookie.
SESSION_STARTED, SESSION_SEEN = "login_at", "seen_at"


def start_session_times(session, at: datetime) -> None:
    session[SESSION_STARTED] = session[SESSION_SEEN] = at.timestamp()


def session_expired(session, at: datetime, idle: timedelta, lifetime: timedelta) -> bool:
    """Idle too long, or logged in too long ago. A session without its times (signed before they
    existed, or forged without them) counts as expired: there is no knowing how old it is."""
    started, seen = session.get(SESSION_STARTED), session.get(SESSION_SEEN)
    if not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in (started, seen)):
        return True
    moment = at.timestamp()
    return moment - seen >= idle.total_seconds() or moment - started >= lifetime.total_seconds()


def end_all_sessions(user: User) -> None:
    """Every browser session of this user signed so far stops working (the caller commits)."""
    user.session_epoch = (user.session_epoch or 0) + 1


def _credentials_changed(user: User) -> bool:
    state = inspect(user)
    return (state.attrs.password_hash.history.has_changes()
            or (state.attrs.active.history.has_changes() and not user.active))


@event.listens_for(db.session, "before_flush")
def _end_access_on_credential_change(session, _flush_context, _instances) -> None:
    # A thief's token or cookie must not outlive the password it was obtained with, nor come back
    # with a reactivated account: the user loader and the token check only see `active` today.
    changed = [obj for obj in session.dirty if isinstance(obj, User) and obj.id is not None
               and _credentials_changed(obj)]
    if not changed:
        return
    for user in changed:
        if not inspect(user).attrs.session_epoch.history.has_changes():
            end_all_sessions(user)
    session.execute(update(AuthToken).where(AuthToken.user_id.in_([u.id for u in changed]),
                                            AuthToken.revoked_at.is_(None)).values(revoked_at=app_now()))
