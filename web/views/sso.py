"""Logging in through the organisation's identity provider (OpenID Connect, web/oidc.py).

Who the provider's user is here: first the account holding the provider's stable subject (issuer +
sub). Without one: the account an invitation link was opened for (the link's session), or else the
account whose e-mail address or employee number (OIDC_USER_FIELD) equals the configured claim
(OIDC_CLAIM) and that has no subject yet; that account then keeps the subject, and from then on the
subject alone decides (a changed address at the provider changes nothing here). Never by a name.
Unknown: refused, or with OIDC_JIT=1 created without roles, for an administrator to approve.
"""
from __future__ import annotations

from flask import abort, current_app, redirect, render_template, session, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from engine.models import Invitation, User

from .. import invitations, mfa, oidc, security_log
from ..extensions import db
from ..runtime import now
from .auth import start_session
from .blueprint import ui

INVITED = "sso_invitation_user"


@ui.post("/auth/oidc/login")
def oidc_login():
    if not oidc.enabled():
        abort(404)
    try:
        return oidc.begin()
    except (OSError, ValueError) as exc:  # the provider's discovery document does not answer
        return _refused(503, _("Login not completed"),
                        _("The login through your organisation could not be verified. Try again."),
                        detail=f"provider unreachable: {type(exc).__name__}")


def _refused(status: int, heading: str, message: str, *, detail: str, email: str = "", user=None):
    security_log.record_failure("login", method="sso", email=email, user=user, detail=detail)
    return render_template("sso_refused.html", heading=heading, message=message), status


def _linked(issuer: str, claims: dict) -> User | None:
    user = db.session.scalar(select(User).where(User.oidc_issuer == issuer, User.oidc_subject == claims["sub"]))
    if user is not None:
        return user
    invitation = invitations.usable(db.session.get(Invitation, session.pop(INVITED, 0) or 0))
    if invitation is not None:
        invitations.use(invitation)
        user = db.session.get(User, invitation.user_id)
    else:
        field = current_app.config["OIDC_USER_FIELD"]
        value = claims.get(current_app.config["OIDC_CLAIM"])
        if not isinstance(value, str) or not value.strip() or field not in ("email", "employee_number"):
            return None
        if field == "email" and claims.get("email_verified") is False:
            return None  # an address the provider did not verify cannot claim an account
        value = value.strip().lower() if field == "email" else value.strip()
        user = db.session.scalar(select(User).where(getattr(User, field) == value))
    if user is None or user.oidc_subject is not None:
        return None  # an account tied to another subject is never taken over
    user.oidc_issuer, user.oidc_subject = issuer, claims["sub"]
    security_log.record("sso.linked", user=user, method="sso", detail=f"{issuer} {claims['sub']}"[:500])
    return user


def _created(issuer: str, claims: dict) -> User | None:
    if not current_app.config["OIDC_JIT"]:
        return None
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    if not email or claims.get("email_verified") is False:
        return None
    email = email.strip().lower()
    if db.session.scalar(select(User.id).where(User.email == email)):
        return None
    user = User(email=email, name=str(claims.get("name") or email)[:200], active=True, created_at=now(),
                oidc_issuer=issuer, oidc_subject=claims["sub"], language="nl")
    db.session.add(user)
    db.session.flush()
    security_log.record("user.created", user=user, method="sso", detail="just in time, without roles")
    db.session.commit()
    return user


@ui.get("/auth/oidc/callback")
def oidc_callback():
    if not oidc.enabled():
        abort(404)
    try:
        claims, token = oidc.complete()
    except oidc.SsoRefused as exc:
        return _refused(400, _("Login not completed"),
                        _("The login through your organisation could not be verified. Try again."), detail=exc.reason)
    issuer = claims["iss"]
    user = _linked(issuer, claims) or _created(issuer, claims)
    email = str(claims.get(current_app.config["OIDC_CLAIM"]) or "")
    if user is None:
        return _refused(403, _("No account for you yet"),
                        _("Your organisation knows you, but Traject does not. Ask the administrator of Traject "
                          "or your COC chair for an invitation."), detail=f"unknown subject {claims['sub']}"[:500],
                        email=email)
    if not user.active:
        return _refused(403, _("Account deactivated"), _("This account has been deactivated."),
                        detail="inactive", user=user)
    if not user.roles:
        db.session.commit()
        return _refused(403, _("Waiting for approval"),
                        _("Your account exists but has no role yet. An administrator will approve it."),
                        detail="no roles yet", user=user)
    second = oidc.has_mfa(claims)
    if mfa.required(user) and not second:
        return _refused(403, _("Two-step verification required"),
                        _("Your role requires that you log in with a second factor at your organisation. "
                          "Log in again with it."), detail=f"no second factor: amr={claims.get('amr')} "
                        f"acr={claims.get('acr')}"[:500], user=user)
    start_session(user, "sso", second_factor=second)
    session["sso_id_token"] = token["id_token"]
    db.session.commit()
    return redirect(url_for("ui.dashboard"), 303)
