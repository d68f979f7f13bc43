"""Typed fields of a definition (transition input, document content): checking values.

A wrong type is a validation error (the client sent nonsense); a missing required value
is an unmet precondition (the case is not ready yet).
"""
from __future__ import annotations

import re
from datetime import date

MAX_TEXT = 20_000
MAX_ITEMS = 200
# Dates a procedure can mean: trajectories recorded afterwards reach back decades, none reaches past 2199.
FIRST_YEAR, LAST_YEAR = 1900, 2199
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # calendar dates only: no ISO week or ordinal dates
# A one-line text may end up in a mail header or a file name: no control characters at all.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # tabs and newlines are text


def parse_date(value) -> date | None:
    """A calendar date as YYYY-MM-DD in 1900-2199, else None."""
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None
    return day if FIRST_YEAR <= day.year <= LAST_YEAR else None


def control_characters(value: str, multiline: bool = False) -> bool:
    """Whether a text holds characters no reader can see (and a mail header must not carry)."""
    return bool((_CONTROL_IN_TEXT if multiline else _CONTROL).search(value))


def type_errors(spec: dict, value, path: str) -> dict[str, str]:
    """Problems with the *type* of a present value, keyed by field path."""
    if value is None:
        return {}
    kind = spec["type"]
    if kind in ("string", "text"):
        if not isinstance(value, str):
            return {path: "must be a string"}
        limit = 300 if kind == "string" else MAX_TEXT
        if len(value) > limit:
            return {path: f"must be at most {limit} characters"}
        if control_characters(value, multiline=kind == "text"):
            return {path: "must not contain control characters"}
    elif kind == "date":
        if parse_date(value) is None:
            return {path: f"must be a date as YYYY-MM-DD between {FIRST_YEAR} and {LAST_YEAR}"}
    elif kind == "boolean":
        if not isinstance(value, bool):
            return {path: "must be true or false"}
    elif kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return {path: "must be a whole number"}
    elif kind == "choice":
        if value not in spec["choices"]:
            return {path: f"must be one of {', '.join(spec['choices'])}"}
    elif kind == "list" and spec.get("items"):
        if not isinstance(value, list):
            return {path: "must be a list"}
        if len(value) > MAX_ITEMS:
            return {path: f"must have at most {MAX_ITEMS} items"}
        errors = {}
        for i, item in enumerate(value):
            errors.update(type_errors(spec["items"], item, f"{path}.{i}"))
        return errors
    elif kind == "list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return {path: "must be a list of strings"}
        if len(value) > MAX_ITEMS or any(len(v) > MAX_TEXT for v in value):
            return {path: f"must have at most {MAX_ITEMS} items of at most {MAX_TEXT} characters"}
    elif kind == "object":
        if not isinstance(value, dict):
            return {path: "must be an object"}
        errors = {f"{path}.{name}": "unknown field" for name in sorted(set(value) - set(spec["fields"]))}
        for name, sub in spec["fields"].items():
            errors.update(type_errors(sub, value.get(name), f"{path}.{name}"))
        return errors
    return {}


def path_label(specs: dict, path: str, key: str) -> str:
    """The words for a field path ("actions.0.owner_role" → "Acties 1: Eigenaar"), `key` "label" or "label_en"."""
    parts, words, node = path.split("."), [], {"fields": specs}
    for part in parts:
        if part.isdigit() and node.get("items") is not None:
            words[-1] = f"{words[-1]} {int(part) + 1}"
            node = node["items"]
            continue
        node = (node.get("fields") or {}).get(part)
        if node is None:
            return path if not words else f"{': '.join(words)}: {part}"
        words.append(node.get(key) or node.get("label") or part)
    return ": ".join(words)


def is_empty(value) -> bool:
    return value is None or (isinstance(value, (str, list, dict)) and len(value) == 0) or (
        isinstance(value, str) and not value.strip()
    )


def missing(spec: dict, value, path: str, required_default: bool) -> list[tuple[str, str]]:
    """(path, reason) for every required value that is absent, too short or not as it must be."""
    required = spec.get("required")
    if required is None:
        required = required_default
    out = []
    if is_empty(value):
        if required:
            out.append((path, "required"))
        return out
    if spec.get("min_items") and isinstance(value, list) and len(value) < spec["min_items"]:
        out.append((path, f"min_items:{spec['min_items']}"))
    if spec.get("must_be") is not None and value != spec["must_be"]:
        out.append((path, f"must_be:{spec['must_be']}"))
    if spec["type"] == "object" and isinstance(value, dict):
        for name, sub in spec["fields"].items():
            out += missing(sub, value.get(name), f"{path}.{name}", True)
    if spec["type"] == "list" and spec.get("items") and isinstance(value, list):
        for i, item in enumerate(value):
            out += missing(spec["items"], item, f"{path}.{i}", True)
    return out


def check_document(spec: dict, content) -> dict[str, str]:
    """Every problem with a document's content; document fields are required unless said otherwise."""
    if not isinstance(content, dict):
        return {"content": "must be an object"}
    errors = {}
    unknown = set(content) - set(spec["fields"])
    for name in sorted(unknown):
        errors[f"content.{name}"] = "unknown field"
    for name, field_spec in spec["fields"].items():
        errors.update(type_errors(field_spec, content.get(name), f"content.{name}"))
    for path, reason in missing({"type": "object", "fields": spec["fields"], "required": True}, content, "content", True):
        errors.setdefault(path, "is required" if reason == "required" else reason.replace("min_items:", "needs at least ") + (" item(s)" if reason.startswith("min_items") else ""))
    return errors
