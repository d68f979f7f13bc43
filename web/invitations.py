"""Invitations: a one-time link (only its sha256 kept) to set a first password or to tie the account to SSO.

The e-mail goes through the outbox like every other message (kind `invitation`, the generic
template); a new invitation for the same account ends the earlier ones.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from engine import outbox
from engine.models import Invitation, User

from .extensions import db
from .runtime import now


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invite(user: User, actor: User | None, *, sso_name: str | None = None) -> str:
    """A new invitation and its e-mail (the caller commits); returns the link."""
    at = now()
    db.session.execute(update(Invitation).where(Invitation.user_id == user.id, Invitation.used_at.is_(None))
                       .values(used_at=at))
    token = secrets.token_urlsafe(32)
    days = current_app.config["TRAJECT_INVITE_DAYS"]
    row = Invitation(user_id=user.id, token_hash=_digest(token), created_by_id=actor.id if actor else None,
                     created_at=at, expires_at=at + timedelta(days=days))
    db.session.add(row)
    db.session.flush()
    link = f"{current_app.config['TRAJECT_BASE_URL'].rstrip('/')}/invite/{token}"
    how = (f"Kies daar een wachtwoord, of log in met {sso_name}." if sso_name else "Kies daar een wachtwoord.")
    body = (f"U hebt een account in Traject gekregen. Open binnen {days} dagen deze link (één keer te gebruiken):\n"
            f"{link}\n{how}")
    outbox.add(db.session, key=f"invitation:{row.id}", case_id=None, seq=None, uid=user.id, address=None,
               role="invitee", kind="invitation", subject="Uitnodiging voor Traject", now=at, body_text=body)
    return link


def find(token: str) -> Invitation | None:
    """The invitation this link belongs to, while it can still be used."""
    return usable(db.session.scalar(select(Invitation).where(Invitation.token_hash == _digest(token or ""))))


def usable(row: Invitation | None) -> Invitation | None:
    if row is None or row.used_at is not None or row.expires_at <= now():
        return None
    user = db.session.get(User, row.user_id)
    return row if user is not None and user.active else None


def use(row: Invitation) -> None:
    row.used_at = now()
