"""Logging in and out (session cookie), the demo chooser, the password and the language."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select
from werkzeug.security import check_password_hash

from engine.models import User
from workflows.roles import CATALOGUE

from .. import mfa, oidc, passwords, security_log
from ..auth import (SessionUser, check_credentials, end_all_sessions, hash_password, login_limit, password_failed,
                    start_session_times)
from ..demo import DEMO_DOMAIN, INSTITUTIONS as DEMO_INSTITUTIONS, email as demo_email
from ..extensions import db
from ..runtime import now
from ..security import safe_target
from . import i18n
from .blueprint import ui

# How long the second step of a login (the code) may follow the first (the password).
MFA_STEP_SECONDS = 300
PENDING = "mfa_pending"


def start_session(user: User, method: str, *, second_factor: bool = False) -> None:
    """Log `user` in (the caller commits): a new session, its times, and the security log's row."""
    # A new session at login: nothing an attacker planted before survives (session fixation).
    lang = session.get("lang")
    session.clear()
    login_user(SessionUser(user))
    session["epoch"] = user.session_epoch or 0
    session["mfa"] = second_factor  # the enrolment gate (account.py) reads it
    start_session_times(session, now())
    if lang in i18n.LANGUAGES:
        session["lang"] = lang
    security_log.record("login", user=user, method=method)


def password_problem(new: str, email: str | None) -> str | None:
    """The password policy's objection, translated (web/passwords.py), or None."""
    found = passwords.problem(new, email)
    return _(found[0], **found[1]) if found else None


def _signed_in_email() -> str | None:
    return current_user.email if current_user.is_authenticated else None


@ui.route("/login", methods=["GET", "POST"])
@login_limit(lambda: request.form.get("email"))
def login():
    if current_user.is_authenticated and request.method == "GET":
        return redirect(url_for("ui.dashboard"))
    error = None
    email = ""
    if request.method == "POST":
        email = (request.form.get("email") or "").strip()
        password = request.form.get("password") or ""
        user = check_credentials(email, password) if email and password else None
        if user is None:
            password_failed()
            security_log.record_failure("login", email=email.lower(), method="password",
                                        detail="wrong e-mail address or password")
            error = _("Wrong e-mail address or password.")
        elif mfa.enrolled(user):
            session[PENDING] = {"uid": user.id, "email": user.email, "at": now().timestamp(),
                                "next": safe_target(request.form.get("next"))}
            return render_template("login_mfa.html", error=None)
        else:
            start_session(user, "password")
            db.session.commit()
            return redirect(safe_target(request.form.get("next")), 303)
    return render_template("login.html", error=error, email=email, next=safe_target(request.args.get("next"), ""),
                           demo=_demo_choices(), sso_name=oidc.display_name() if oidc.enabled() else None)


def _pending_login() -> dict | None:
    pending = session.get(PENDING)
    if not isinstance(pending, dict) or not isinstance(pending.get("at"), (int, float)):
        return None
    return pending if now().timestamp() - pending["at"] < MFA_STEP_SECONDS else None


@ui.post("/login/mfa")
@login_limit(lambda: (_pending_login() or {}).get("email"))  # the password's budget: codes are guesses too
def login_mfa():
    pending = _pending_login()
    user = db.session.get(User, pending["uid"]) if pending else None
    if user is None or not user.active:
        session.pop(PENDING, None)
        flash(_("Your session has expired. Please log in again."), "info")
        return redirect(url_for("ui.login"), 303)
    method = mfa.verify(user, request.form.get("otp"))
    if method is None:
        password_failed()
        security_log.record_failure("login", user=user, method="password+otp", detail="wrong or reused code")
        return render_template("login_mfa.html", error=_("This code is not right. Try the next code.")), 422
    target = pending.get("next") or url_for("ui.dashboard")
    start_session(user, "password+" + method, second_factor=True)
    db.session.commit()
    return redirect(safe_target(target), 303)


# The demo roles in one click: only in a demo instance (TRAJECT_DEMO), only demo accounts.
# Every role of the catalogue: institutional roles at the first demo hospital, its first aios.
DEMO_CHOICES = [(r.key, None if r.regional else DEMO_INSTITUTIONS[0][0], 1 if r.key == "aios" else None)
                for r in CATALOGUE]


def _demo_choices() -> list[dict]:
    if not current_app.config.get("TRAJECT_DEMO"):
        return []
    wanted = {demo_email(role, code, n): role for role, code, n in DEMO_CHOICES}
    found = dict(db.session.execute(select(User.email, User.name).where(User.email.in_(wanted),
                                                                        User.active.is_(True))).all())
    return [{"email": address, "role": role, "name": found[address]}
            for address, role in wanted.items() if address in found]


@ui.post("/login/demo")
def demo_login():
    if not current_app.config.get("TRAJECT_DEMO"):
        abort(404)
    address = (request.form.get("email") or "").strip().lower()
    user = None
    if address.endswith("@" + DEMO_DOMAIN):
        user = db.session.scalar(select(User).where(User.email == address, User.active.is_(True)))
    if user is None:
        abort(404)
    start_session(user, "demo")
    db.session.commit()
    return redirect(url_for("ui.dashboard"), 303)


@ui.post("/logout")
def logout():
    lang = session.get("lang")
    id_token = session.get("sso_id_token")
    if current_user.is_authenticated:  # a copy of this cookie must not outlive the logout
        end_all_sessions(current_user.user)
        security_log.record("logout", user=current_user.user, method="sso" if id_token else "")
        db.session.commit()
    logout_user()
    session.clear()
    if lang in i18n.LANGUAGES:
        session["lang"] = lang
    flash(_("You are logged out."), "info")
    # A login through the provider ends there too, where it says how (its end_session_endpoint).
    elsewhere = oidc.logout_url(id_token, url_for("ui.login", _external=True)) if id_token else None
    return redirect(elsewhere or url_for("ui.login"), 303)


@ui.post("/language")
def language():
    lang = request.form.get("lang")
    if lang in i18n.LANGUAGES:
        session["lang"] = lang
        if current_user.is_authenticated:
            current_user.user.language = lang
            db.session.commit()
    return redirect(safe_target(request.form.get("next")), 303)


@ui.route("/account/password", methods=["GET", "POST"])
@login_required
@login_limit(_signed_in_email)  # a stolen session must not become a way to guess the password
def password():
    errors: dict[str, str] = {}
    if request.method == "POST":
        user: User = current_user.user
        current = request.form.get("current") or ""
        new = request.form.get("new") or ""
        repeat = request.form.get("repeat") or ""
        if not user.password_hash or not check_password_hash(user.password_hash, current):
            password_failed()
            security_log.record_failure("password.change", user=user, method="password",
                                        detail="wrong current password")
            user = db.session.get(User, user.id)
            errors["current"] = _("This is not your current password.")
        problem = password_problem(new, user.email)
        if problem:
            errors["new"] = problem
        elif new == current:
            errors["new"] = _("Choose a password that differs from the current one.")
        if not errors.get("new") and new != repeat:
            errors["repeat"] = _("The two new passwords differ.")
        if not errors:
            user.password_hash = hash_password(new)
            end_all_sessions(user)  # sessions elsewhere (a stolen cookie) end; this one continues
            security_log.record("password.change", user=user, actor=user, method="password")
            db.session.commit()
            session["epoch"] = user.session_epoch
            flash(_("Your password has been changed."), "success")
            return redirect(url_for("ui.dashboard"), 303)
    return render_template("password.html", errors=errors), (422 if errors else 200)


# The figures of the last axe-core run (tests/browser/test_accessibility.py), shown in the statement.
AXE = {"version": "4.14.1", "tested": "2026-12-02", "pages": 62, "roles": 10}


@ui.get("/toegankelijkheid")
def accessibility():
    """The accessibility statement (toegankelijkheidsverklaring): public, what was tested and what is known."""
    return render_template("accessibility.html", axe=AXE)
