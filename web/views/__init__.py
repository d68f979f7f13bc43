"""The HTML application: server-rendered pages for every role, usable without JavaScript.

One blueprint, `ui`. Views are thin like the API's: the engine decides, scope is applied
inside every case query, errors become friendly pages or inline messages.
"""
from __future__ import annotations

import os
from datetime import timedelta

from flask import Flask
from flask_babel import lazy_gettext as _l

from ..extensions import babel, csrf, login_manager
from . import account, admin, auth, cases, dashboard, i18n, listing, records, sso, users  # noqa: F401  (routes on `ui`)
from . import blueprint
from .blueprint import ui


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
    # The signed cookie itself is refused after the session's absolute lifetime (the app's clock
    # decides the idle and absolute ends: blueprint.py); Flask's default would be 31 days.
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=app.config["TRAJECT_SESSION_MAX_HOURS"])
    # The token lives as long as the session: a form left open over lunch still posts.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "nl")
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", app.config["TRAJECT_TIMEZONE"])

    csrf.init_app(app)
    i18n.compile_catalogs()
    babel.init_app(app, locale_selector=i18n.select_locale)
    login_manager.login_view = "ui.login"
    login_manager.login_message = _l("Please log in to see this page.")
    login_manager.login_message_category = "info"

    app.register_blueprint(ui)
    app.extensions["traject.page_error"] = blueprint.http_error_page
    app.jinja_env.filters.update(
        datetime=i18n.fmt_datetime, date=i18n.fmt_date, role=i18n.role_label, choice=i18n.choice_label,
    )
    app.jinja_env.globals.update(pick=i18n.pick, label=i18n.label, title=i18n.title, state_label=i18n.state_label,
                                 role_label=i18n.role_label, is_english=i18n.is_english,
                                 remaining=i18n.remaining, label_deadline=i18n.deadline_label)
