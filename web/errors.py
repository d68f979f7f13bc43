"""The contract's error shape for every error: ours, Flask's and the libraries'."""
from __future__ import annotations

import logging

from flask import current_app, jsonify, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from engine import errors as e

log = logging.getLogger(__name__)

STATUS = {
    e.ValidationError: 422,
    e.NotFound: 404,
    e.Forbidden: 403,
    e.TransitionNotAllowed: 409,
    e.VersionConflict: 409,
    e.PreconditionFailed: 422,
    e.DefinitionError: 500,
}

# Where clients read JSON; everywhere else an error is a page (web/views/blueprint.py).
JSON_PATHS = ("/api/", "/healthz")

HTTP_CODES = {
    400: "validation_error",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "validation_error",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


def error_response(status: int, code: str, message: str, details: dict | None = None, headers=None):
    response = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def from_http_exception(exc: HTTPException):
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    details = {}
    message = exc.description or exc.name
    if "messages" in data:  # webargs: {"json": {...}} or {"query": {...}}
        for location, fields in data["messages"].items():
            details.update(fields if isinstance(fields, dict) else {location: fields})
        message = "invalid request: " + ", ".join(sorted(details)) if details else message
    code = HTTP_CODES.get(status, "internal_error" if status >= 500 else "error")
    if status == 429:
        message = "too many attempts; try again later"
        return error_response(status, code, message, details, {"Retry-After": "900"})
    headers = {k: v for k, v in (exc.get_headers() or []) if k.lower() in ("retry-after", "allow")}
    return error_response(status, code, message, details, headers)


def http_error(exc: HTTPException):
    """JSON for the API's clients; a page in the reader's language everywhere else (an unknown address too)."""
    page = current_app.extensions.get("traject.page_error")
    wants_json = request.path.startswith(JSON_PATHS) or request.path.endswith(".json") or \
        request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"
    if page is not None and not wants_json:
        return page(exc)
    return from_http_exception(exc)


def register(app) -> None:
    @app.errorhandler(e.TrajectError)
    def _traject_error(exc: e.TrajectError):
        status = STATUS.get(type(exc), 400)
        if status >= 500:
            log.error("definition error: %s", exc.message)
        details = exc.details
        if isinstance(exc, e.ValidationError):  # one shape for clients: {field: [messages]}
            details = {k: v if isinstance(v, list) else [v] for k, v in details.items()}
        return error_response(status, exc.code, exc.message, details)

    @app.errorhandler(OperationalError)
    def _database_down(exc):
        log.error("database unavailable: %s", exc)
        return error_response(503, "unavailable", "the database is unavailable; try again shortly",
                              headers={"Retry-After": "5"})

    @app.errorhandler(Exception)
    def _unexpected(exc):
        if isinstance(exc, HTTPException):
            return http_error(exc)
        log.exception("unhandled error")
        return error_response(500, "internal_error", "an unexpected error occurred")
