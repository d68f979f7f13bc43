"""The pages' blueprint `ui`: who is logged in, what every page knows, and errors as friendly pages."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, logout_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from engine import errors as e

from ..auth import SESSION_SEEN, session_expired
from ..extensions import db, login_manager
from ..runtime import engine, now
from .data import regions_for

ui = Blueprint("ui", __name__)


@ui.before_request
def _actor():
    if "_user_id" in session:
        at = now()
        if session_expired(session, at, timedelta(minutes=current_app.config["TRAJECT_SESSION_IDLE_MINUTES"]),
                           timedelta(hours=current_app.config["TRAJECT_SESSION_MAX_HOURS"])):
            return _session_ended()
        session[SESSION_SEEN] = at.timestamp()
    if current_user.is_authenticated:
        g.user = current_user.user
        g.actor = engine().actor_for(g.user)
    return None


def _session_ended():
    """Log the expired session out and send its owner to the login page, saying why."""
    lang = session.get("lang")
    logout_user()
    session.clear()
    if lang:
        session["lang"] = lang
    flash(_("Your session has expired. Please log in again."), "info")
    if request.endpoint == "ui.login":
        return None  # the login page itself, now for a visitor
    if request.method == "GET":
        return redirect(url_for("ui.login", next=request.full_path.rstrip("?")))
    return redirect(url_for("ui.login"), 303)  # a form posted after the session ended is not carried out


@ui.app_context_processor
def _context():
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


@ui.errorhandler(e.VersionConflict)
@ui.errorhandler(e.TransitionNotAllowed)
def _stale(exc):
    """A form from a tab left open: say what happened and lead back to the case as it is now."""
    db.session.rollback()
    case_id = (request.view_args or {}).get("case_id")
    back = url_for("ui.case", case_id=case_id) if case_id else None
    return render_template("error.html", status=409, heading=_("The case has changed"), back=back,
                           message=_("Someone changed this case after you opened the page (or it was already done), "
                                     "so nothing was saved. Open the case to see its current state and try again.")), 409


def http_error_page(exc: HTTPException):
    """Every HTTP error of a page, also for an address no route knows (the app's handler calls this)."""
    code = exc.code or 500
    headings = {
        404: _("Not found"), 403: _("Not allowed"), 405: _("Not possible"), 409: _("The case has changed"),
        413: _("Too large"), 429: _("Too many attempts"),
    }
    messages = {
        404: _("This page does not exist, or it is not visible to you."),
        429: _("Too many attempts. Wait a few minutes and try again."),
    }
    html, status = page_error(code, headings.get(code, _("Something went wrong")),
                              messages.get(code, _("The request could not be handled.")))
    # as the API's 429: the login limit's window (15 minutes) is the longest a client waits
    return html, status, ({"Retry-After": "900"} if code == 429 else {})


@ui.errorhandler(Exception)
def _any(exc):
    if isinstance(exc, HTTPException):
        return http_error_page(exc)
    if isinstance(exc, e.TrajectError):
        db.session.rollback()
        return page_error(400, _("Something went wrong"), exc.message)
    current_app.logger.exception("unhandled error on %s", request.path)
    db.session.rollback()
    return page_error(500, _("Something went wrong"), _("An unexpected error occurred. It has been logged."))
