"""The HTML application: server-rendered pages for every role, usable without JavaScript.

One blueprint, `ui`. Views are thin like the API's: the engine decides, scope is applied
inside every case query, errors become friendly pages or inline messages.
"""
from __future__ import annotations

import os

from flask import Blueprint, Flask, g, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from engine import errors as e

from ..extensions import babel, csrf, db, login_manager
from ..services import engine, now
from . import i18n

ui = Blueprint("ui", __name__)


def register_views(app: Flask) -> None:
    """Sessions, CSRF, languages and the pages (called from create_app)."""
    # Flask's defaults exist as keys (None/False), so these are set unless configured otherwise.
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = app.config.get("SESSION_COOKIE_SAMESITE") or "Lax"
    if os.environ.get("SESSION_COOKIE_SECURE") == "1":  # behind HTTPS
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config.setdefault("REMEMBER_COOKIE_SECURE", True)
    app.config.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    app.config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")
    # The token lives as long as the session: a form left open over lunch still posts.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "nl")
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", app.config["TRAJECT_TIMEZONE"])

    csrf.init_app(app)
    from ..api import api

    csrf.exempt(api)  # bearer tokens, not cookies: nothing for a forged form to ride on
    i18n.compile_catalogs()
    babel.init_app(app, locale_selector=i18n.select_locale)
    login_manager.login_view = "ui.login"
    login_manager.login_message = _l("Please log in to see this page.")
    login_manager.login_message_category = "info"

    from . import admin, auth, cases, dashboard  # noqa: F401  (routes on `ui`)

    app.register_blueprint(ui)
    app.jinja_env.filters.update(
        datetime=i18n.fmt_datetime, date=i18n.fmt_date, role=i18n.role_label, choice=i18n.choice_label,
    )
    app.jinja_env.globals.update(pick=i18n.pick, label=i18n.label, title=i18n.title, state_label=i18n.state_label,
                                 role_label=i18n.role_label, is_english=i18n.is_english,
                                 remaining=i18n.remaining, label_deadline=i18n.deadline_label)


@ui.before_request
def _actor():
    if current_user.is_authenticated:
        g.user = current_user.user
        g.actor = engine().actor_for(g.user)


@ui.app_context_processor
def _context():
    from .data import regions_for

    actor = g.get("actor")
    return {"now": now(), "can_overview": bool(actor and regions_for(actor))}


def page_error(status: int, heading: str, message: str):
    return render_template("error.html", status=status, heading=heading, message=message), status


@ui.errorhandler(e.NotFound)
def _not_found(exc):
    db.session.rollback()
    return page_error(404, _("Not found"), _("This page does not exist, or it is not visible to you."))


@ui.errorhandler(e.Forbidden)
def _forbidden(exc):
    db.session.rollback()
    return page_error(403, _("Not allowed"), _("Your role may not do this."))


@ui.errorhandler(CSRFError)
def _csrf(exc):
    return page_error(400, _("The form has expired"),
                      _("For your safety the form was not sent. Go back, reload the page and try again."))


@ui.errorhandler(OperationalError)
def _database(exc):
    db.session.rollback()
    # The signed-in user cannot be loaded now either: render the page as for a visitor, or the
    # locale selector and the header would ask the database again inside this handler.
    g._login_user = login_manager.anonymous_user()
    html, status = page_error(503, _("Temporarily unavailable"), _("The database does not answer. Try again shortly."))
    return html, status, {"Retry-After": "5"}


@ui.errorhandler(Exception)
def _any(exc):
    if isinstance(exc, HTTPException):
        code = exc.code or 500
        headings = {
            404: _("Not found"), 403: _("Not allowed"), 405: _("Not possible"), 413: _("Too large"),
            429: _("Too many attempts"),
        }
        messages = {
            404: _("This page does not exist, or it is not visible to you."),
            429: _("Too many attempts. Wait a few minutes and try again."),
        }
        html, status = page_error(code, headings.get(code, _("Something went wrong")),
                                  messages.get(code, _("The request could not be handled.")))
        # as the API's 429: the login limit's window (15 minutes) is the longest a client waits
        return html, status, ({"Retry-After": "900"} if code == 429 else {})
    if isinstance(exc, e.TrajectError):
        db.session.rollback()
        return page_error(400, _("Something went wrong"), exc.message)
    from flask import current_app

    current_app.logger.exception("unhandled error on %s", request.path)
    db.session.rollback()
    return page_error(500, _("Something went wrong"), _("An unexpected error occurred. It has been logged."))
