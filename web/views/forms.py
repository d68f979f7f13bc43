"""Forms generated from a definition's field specs, and the posted values turned back into data.

A spec is {type: string|text|date|boolean|integer|list|object|choice, label, label_en,
required, must_be, choices, fields}. Posted names are paths: `data.core_problem`,
`data.evaluation.date`, `content.learning_goals`, so that the engine's unmet conditions
and validation errors (keyed by the same paths) land next to the right input.

Empty inputs are left out of the data: the engine then reports them as unmet
preconditions in plain language ("Kernprobleem is verplicht"), exactly as for API clients.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from flask import g
from flask_babel import gettext as _
from sqlalchemy import select

from engine.fields import parse_date
from engine.models import Institution, RoleAssignment, User

from ..extensions import db
from .i18n import choice_label, is_english, label, role_label

_DMY = re.compile(r"^\s*(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})\s*$")


@dataclass
class Field:
    name: str
    id: str
    type: str
    widget: str
    label: str
    help: str = ""
    required: bool = False
    choices: list = field(default_factory=list)
    value: object = ""
    errors: list = field(default_factory=list)
    children: list = field(default_factory=list)

    @property
    def describedby(self) -> str:
        ids = []
        if self.help:
            ids.append(self.id + "-help")
        if self.errors:
            ids.append(self.id + "-error")
        return " ".join(ids)


def _object_items(spec: dict) -> dict | None:
    """A list whose items are objects (e.g. actions with owner and due date): their fields."""
    items = spec.get("items") or {}
    return items.get("fields") if spec["type"] == "list" and items.get("type") == "object" else None


def _widget(spec: dict) -> str:
    kind = spec["type"]
    if _object_items(spec):
        return "rows"
    if kind == "boolean":
        return "checkbox" if spec.get("must_be") is True else "yesno"
    if spec.get("choices_from"):  # one of the case's open items (an agreed action): chosen, never typed
        return "select"
    return {"text": "textarea", "list": "lines", "date": "date", "integer": "number", "choice": "select",
            "object": "fieldset"}.get(kind, "text")


def _required(spec: dict, default: bool) -> bool:
    if spec.get("required_on_pages"):
        return True
    required = spec.get("required")
    return default if required is None else bool(required)


def build(specs: dict, prefix: str, id_prefix: str, values, errors: dict, required_default: bool,
          options: dict | None = None) -> list[Field]:
    """Fields for a form; `values` maps posted names to strings (a request.form or initial values);
    `options`: field name → [(value, label)] for fields whose choices come from the case (`choices_from`)."""
    out = []
    for name, spec in specs.items():
        path = f"{prefix}.{name}"
        dom_id = f"{id_prefix}-{name}".replace(".", "-").replace("_", "-")
        widget = _widget(spec)
        item = Field(name=path, id=dom_id, type=spec["type"], widget=widget, label=label(spec, name),
                     help=spec.get("help", "") if not _english_help_missing(spec) else "",
                     required=_required(spec, required_default), errors=list(errors.get(path, [])))
        if widget == "rows":
            used = _indices(values, path)
            count = max(ROWS, (max(used) + 2) if used else 0)
            item.children = [build(_object_items(spec), f"{path}.{i}", f"{dom_id}-{i}", values, errors, False)
                             for i in range(count)]
        elif widget == "fieldset":
            item.children = build(spec["fields"], path, dom_id, values, errors, True)
            # an error about a sub-field's absence (e.g. data.evaluation.date) stays with the sub-field
        elif widget == "select":
            item.choices = (list((options or {}).get(name, [])) if spec.get("choices_from")
                            else [(c, choice_label(c)) for c in spec["choices"]])
            item.value = values.get(path, "")
        elif widget == "number" and name.endswith("_user_id"):
            # A person, never a number to type: a picker of the people who hold a role here.
            item.widget, item.choices = "select", _people()
            item.value = values.get(path, "")
        elif widget == "checkbox":
            item.value = values.get(path) in ("1", "true", "on", True)
        else:
            item.value = values.get(path, "")
        out.append(item)
    return out


def _people() -> list[tuple[str, str]]:
    """Staff of the reader's region (no aios, no administrators): (id, "name — role, institution")."""
    regions = {r for _role, _inst, r, *_ in g.actor.assignments}
    rows = db.session.execute(
        select(User.id, User.name, RoleAssignment.role, Institution.name)
        .join(RoleAssignment, RoleAssignment.user_id == User.id)
        .outerjoin(Institution, Institution.id == RoleAssignment.institution_id)
        .where(User.active.is_(True), RoleAssignment.region_id.in_(regions),
               RoleAssignment.role.not_in(("aios", "admin"))).order_by(User.name)).all()
    return [(str(uid), f"{name} — {role_label(role)}{', ' + inst if inst else ''}") for uid, name, role, inst in rows]


ROWS = 3  # empty rows offered for a list of objects; leave unused rows empty


def _indices(values, path: str) -> list[int]:
    out = set()
    for key in values.keys():
        if key.startswith(path + "."):
            head = key[len(path) + 1:].split(".", 1)[0]
            if head.isdigit() and int(head) < 100:
                out.add(int(head))
    return sorted(out)


def _english_help_missing(spec: dict) -> bool:
    """Help texts exist only in Dutch in the definitions; English pages leave them out."""
    return is_english() and not spec.get("help_en")


def parse(specs: dict, prefix: str, form) -> tuple[dict, dict]:
    """(data, errors): typed values from the posted strings; empty inputs are left out."""
    data, errors = {}, {}
    for name, spec in specs.items():
        path = f"{prefix}.{name}"
        value, problem = _parse_one(spec, path, form, errors)
        if value is None and not problem and spec.get("required_on_pages"):
            # The API may leave it out (the contract does not ask for it); a person on the page may not.
            problem = _("Fill this in: it is recorded with the decision.")
        if problem:
            errors.setdefault(path, []).append(problem)
        elif value is not None:
            data[name] = value
    return data, errors


def _parse_one(spec: dict, path: str, form, errors: dict):
    kind = spec["type"]
    if _object_items(spec):
        rows = []
        for i in _indices(form, path):
            sub, sub_errors = parse(_object_items(spec), f"{path}.{i}", form)
            if sub:
                rows.append(sub)
                for key, msgs in sub_errors.items():
                    errors.setdefault(key, []).extend(msgs)
        return (rows or None), None
    if kind == "object":
        sub, sub_errors = parse(spec["fields"], path, form)
        for key, msgs in sub_errors.items():
            errors.setdefault(key, []).extend(msgs)
        return (sub or None), None
    raw = form.get(path)
    if kind == "boolean":
        if _widget(spec) == "checkbox":
            return (True if raw in ("1", "true", "on") else None), None
        return {"true": True, "false": False}.get(raw), None
    text = (raw or "").strip()
    if kind == "list":
        items = [line.strip() for line in (raw or "").splitlines() if line.strip()]
        return (items or None), None
    if not text:
        return None, None
    if kind == "date":
        parsed = to_iso_date(text)
        return (parsed, None) if parsed else (None, _("Enter a date as DD-MM-YYYY."))
    if kind == "integer":
        try:
            return int(text), None
        except ValueError:
            return None, _("Enter a whole number.")
    if kind == "choice":
        return (text, None) if text in spec["choices"] else (None, _("Choose one of the options."))
    if kind == "string" and len(text) > 300:
        return None, _("At most 300 characters.")
    return text, None


def to_iso_date(text: str) -> str | None:
    """YYYY-MM-DD (what a date input sends) or DD-MM-YYYY (what a person types)."""
    if parse_date(text):
        return text
    m = _DMY.match(text)
    if m:
        try:
            return date(int(m.group(3)), int(m.group(2)), int(m.group(1))).isoformat()
        except ValueError:
            return None
    return None


def initial(specs: dict, prefix: str, content: dict | None) -> dict:
    """Posted-name → string for prefilling a form from stored content (e.g. the latest document)."""
    out = {}
    for name, spec in specs.items():
        path = f"{prefix}.{name}"
        value = (content or {}).get(name)
        if value is None:
            continue
        kind = spec["type"]
        if kind == "object" and isinstance(value, dict):
            out.update(initial(spec["fields"], path, value))
        elif kind == "list" and isinstance(value, list):
            out[path] = "\n".join(str(v) for v in value)
        elif kind == "boolean":
            out[path] = ("1" if value else "") if _widget(spec) == "checkbox" else ("true" if value else "false")
        else:
            out[path] = str(value)
    return out


# -- the engine's errors, for people ----------------------------------------------------

_KNOWN = {
    "is required": lambda: _("This field is required."),
    "must be a string": lambda: _("Enter text."),
    "must be a date as YYYY-MM-DD between 1900 and 2199": lambda: _("Enter a date as DD-MM-YYYY."),
    "must not contain control characters": lambda: _("Remove the invisible characters (such as a line break)."),
    "must not be in the future": lambda: _("This date cannot lie in the future."),
    "must be true or false": lambda: _("Choose yes or no."),
    "must be a whole number": lambda: _("Enter a whole number."),
    "must be a list of strings": lambda: _("Enter one item per line."),
    "must be an object": lambda: _("Fill in the fields below."),
    "unknown field": lambda: _("This field is not part of the form."),
}


def human_error(message) -> str:
    """An engine validation message in the page's language (never a code)."""
    if isinstance(message, list):
        return "; ".join(human_error(m) for m in message)
    text = str(message)
    if text in _KNOWN:
        return _KNOWN[text]()
    m = re.match(r"^needs at least (\d+) item", text)
    if m:
        return _("Enter at least %(n)s item(s), one per line.", n=m.group(1))
    if text.startswith("must be one of"):
        return _("Choose one of the options.")
    if " / " in text:  # bilingual validator messages: "english / nederlands"
        en, nl = text.split(" / ", 1)
        return en if is_english() else nl
    return text


def field_errors(details: dict) -> dict[str, list[str]]:
    return {key: [human_error(msg)] for key, msg in (details or {}).items()}
