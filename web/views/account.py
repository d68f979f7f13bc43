"""The account's own pages: two-step verification (enrolment with a QR code, and the gate that requires
it) and the e-mail settings (the daily digest).

An account whose roles require a second factor (web/mfa.py) and whose session did not pass one
sees only the enrolment page (when not enrolled yet) or is logged out to log in again with its
code (when enrolled since: a role added during the session).
"""
from __future__ import annotations

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, logout_user

from notifications import digest

from .. import mfa, security_log
from ..extensions import db
from .blueprint import ui

SETUP = "mfa_setup"
# What a session without its required second factor may still reach.
OPEN_ENDPOINTS = {"ui.mfa_enrol", "ui.logout", "ui.language", "static", "ui.login"}


@ui.before_request
def _second_factor_gate():
    if not current_user.is_authenticated or session.get("mfa") or request.endpoint in OPEN_ENDPOINTS:
        return None
    user = g.user
    if not mfa.required(user):
        return None
    if mfa.enrolled(user):
        logout_user()
        session.clear()
        return redirect(url_for("ui.login"), 303 if request.method != "GET" else 302)
    return redirect(url_for("ui.mfa_enrol"), 303 if request.method != "GET" else 302)


@ui.route("/account/mfa", methods=["GET", "POST"])
@login_required
def mfa_enrol():
    user = g.user
    if mfa.enrolled(user):
        return render_template("mfa.html", enrolled=user.mfa_enrolled_at, codes=None)
    secret = session.get(SETUP) or mfa.new_secret()
    session[SETUP] = secret
    error = None
    if request.method == "POST":
        step = mfa.matching_step(secret, (request.form.get("otp") or "").strip())
        if step is not None:
            codes = mfa.enrol(user, secret, used_step=step)
            security_log.record("mfa.enrolled", user=user, actor=user, method="totp")
            db.session.commit()
            session.pop(SETUP, None)
            session["mfa"] = True
            return render_template("mfa.html", codes=codes, enrolled=user.mfa_enrolled_at)
        error = _("This code is not right. Try the next code.")
    link = mfa.uri(user, secret)
    return render_template("mfa.html", codes=None, enrolled=None, secret=secret, qr=mfa.qr_svg(link),
                           required=mfa.required(user), error=error), (422 if error else 200)


@ui.route("/account/mail", methods=["GET", "POST"])
@login_required
def mail_settings():
    """Informational mail one by one (the default) or once a day in one digest (docs/digest.md)."""
    user = g.user
    if request.method == "POST":
        choice = request.form.get("delivery")
        if choice not in ("immediately", "daily"):
            return render_template("mail_settings.html", user=user, error=_("Choose how you want to receive it."),
                                   hour=current_app.config["TRAJECT_DIGEST_HOUR"]), 422
        user.mail_digest = choice == "daily"
        if not user.mail_digest:  # what waits for the digest leaves now, one by one
            digest.release(db.session, user.id, current_app.extensions["traject"].clock.now())
        db.session.commit()
        flash(_("Your e-mail settings have been saved."), "success")
        return redirect(url_for("ui.mail_settings"), 303)
    return render_template("mail_settings.html", user=user, error=None,
                           hour=current_app.config["TRAJECT_DIGEST_HOUR"])
