"""Logging in and out (session cookie), the demo chooser, the password and the language."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select
from werkzeug.security import check_password_hash

from engine.models import User
from workflows.roles import CATALOGUE

from ..auth import (SessionUser, check_credentials, end_all_sessions, hash_password, login_limit, password_failed,
                    start_session_times)
from ..demo import DEMO_DOMAIN, INSTITUTIONS as DEMO_INSTITUTIONS, email as demo_email
from ..extensions import db
from ..runtime import now
from ..security import safe_target
from . import i18n
from .blueprint import ui

MIN_PASSWORD = 12


def _start_session(user: User) -> None:
    # A new session at login: nothing an attacker planted before survives (session fixation).
    lang = session.get("lang")
    session.clear()
    login_user(SessionUser(user))
    session["epoch"] = user.session_epoch or 0
    start_session_times(session, now())
    if lang in i18n.LANGUAGES:
        session["lang"] = lang


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
            error = _("Wrong e-mail address or password.")
        else:
            _start_session(user)
            return redirect(safe_target(request.form.get("next")), 303)
    return render_template("login.html", error=error, email=email, next=safe_target(request.args.get("next"), ""),
                           demo=_demo_choices())


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
    _start_session(user)
    return redirect(url_for("ui.dashboard"), 303)


@ui.post("/logout")
def logout():
    lang = session.get("lang")
    if current_user.is_authenticated:  # a copy of this cookie must not outlive the logout
        end_all_sessions(current_user.user)
        db.session.commit()
    logout_user()
    session.clear()
    if lang in i18n.LANGUAGES:
        session["lang"] = lang
    flash(_("You are logged out."), "info")
    return redirect(url_for("ui.login"), 303)


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
            errors["current"] = _("This is not your current password.")
        if len(new) < MIN_PASSWORD:
            errors["new"] = _("Choose a password of at least %(n)d characters.", n=MIN_PASSWORD)
        elif new == current:
            errors["new"] = _("Choose a password that differs from the current one.")
        if not errors.get("new") and new != repeat:
            errors["repeat"] = _("The two new passwords differ.")
        if not errors:
            user.password_hash = hash_password(new)
            end_all_sessions(user)  # sessions elsewhere (a stolen cookie) end; this one continues
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
