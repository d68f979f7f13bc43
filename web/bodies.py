"""Request bodies are checked before any view sees them: a clear 400, never a 500.

json.loads alone lets through NaN/Infinity (not JSON), lone surrogates and NUL (which neither
the hashes nor PostgreSQL can store), nesting deep enough to exhaust the stack, and integers
too long to convert.
"""
from __future__ import annotations

import json

from flask import abort, request

from .errors import error_response

MAX_DEPTH = 20


class BadBody(ValueError):
    pass


def _reject_constant(name):
    raise BadBody(f"{name} is not JSON")


def _walk(value, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise BadBody(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _walk(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _walk(item, depth + 1)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**63:
        raise BadBody("integer out of range")


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise BadBody("text may not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadBody("text contains an unpaired surrogate") from None


def _text_problem(location: str, pairs) -> str | None:
    for key, value in pairs:
        try:
            _check_text(key)
            _check_text(value)
        except BadBody as exc:
            return f"{location} parameter {key[:50]!r}: {exc}"
    return None


def check_text_fields():
    """Query parameters and form fields: NUL cannot be stored (PostgreSQL refuses it in text and JSON)."""
    problem = _text_problem("query", request.args.items(multi=True))
    location = "query"
    if problem is None and request.method in ("POST", "PUT", "PATCH") and request.mimetype in (
            "application/x-www-form-urlencoded", "multipart/form-data"):
        problem, location = _text_problem("form", request.form.items(multi=True)), "form"
    if problem is None:
        return None
    if request.path.startswith("/api/"):
        return error_response(400, "validation_error", f"invalid request: {problem}", {location: [problem]})
    abort(400, problem)  # the pages' error handler renders it
    return None


def check_json_body():
    """before_request: 400 for a JSON body, query or form that cannot be stored faithfully."""
    refused = check_text_fields()
    if refused is not None:
        return refused
    if request.method not in ("POST", "PUT", "PATCH") or not request.is_json:
        return None
    raw = request.get_data(cache=True)
    if not raw:
        return None
    try:
        _walk(json.loads(raw, parse_constant=_reject_constant))
    except (BadBody, ValueError, RecursionError) as exc:
        reason = str(exc) if isinstance(exc, BadBody) else "malformed JSON body"
        return error_response(400, "validation_error", f"invalid JSON body: {reason}", {"json": [reason]})
    return None
