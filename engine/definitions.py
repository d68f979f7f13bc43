"""Workflow definitions are data: YAML validated on load, stored by key, version and sha256.

A definition never changes once stored; a case points at the version it was opened
with, and `Definition.for_row` rebuilds (and caches) exactly that version.
"""
from __future__ import annotations

import copy
import inspect
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import ClassVar

import yaml
from marshmallow import Schema, ValidationError as MarshmallowError, validate, validates_schema
from marshmallow import fields as f
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .calendar import ROLLS
from .canonical import sha256_hex
from .errors import DefinitionError
from .machine import build_machine
from .models import WorkflowDefinition

FIELD_TYPES = ("string", "text", "date", "boolean", "integer", "list", "object", "choice")
PSEUDO_ROLES = ("subject", "opener", "responsible")


class FieldSpecSchema(Schema):
    type = f.String(required=True, validate=validate.OneOf(FIELD_TYPES))
    label = f.String(load_default="")
    label_en = f.String(load_default="")
    help = f.String(load_default="")
    required = f.Boolean(load_default=None)  # None: the context decides (document fields: required)
    must_be = f.Raw(load_default=None)
    min_items = f.Integer(load_default=None)
    choices = f.List(f.String(), load_default=None)
    fields = f.Dict(keys=f.String(), values=f.Nested(lambda: FieldSpecSchema()), load_default=None)
    items = f.Nested(lambda: FieldSpecSchema(), load_default=None)  # a list of these instead of strings
    # When the client leaves the field out: "today" (the region's date), "field:<name>" (another input's value),
    # "documents.<kind>.<field>" (the latest document's value), "=<text>" or true/false (a fixed value).
    default = f.Raw(load_default=None, validate=lambda v: isinstance(v, bool) or bool(
        isinstance(v, str) and re.fullmatch(r"today|field:[a-z_][a-z0-9_]*|documents\.[a-z_]+\.[a-z_]+|=.+", v)))
    not_future = f.Boolean(load_default=False)  # a date: never after today (a decision cannot be dated ahead)
    # Optional for API clients (the contract does not ask for it), required on the pages' forms.
    required_on_pages = f.Boolean(load_default=False)
    # A list of objects whose items the engine gives a stable `id` (never their position): a later step
    # names an item by it, e.g. the agreed action that is done.
    item_ids = f.Boolean(load_default=False)
    # A string naming one of the case's open per-item deadlines of this kind (the item's id): forms offer
    # those as the choices, e.g. the open actions.
    choices_from = f.String(load_default=None)

    @validates_schema
    def _choices(self, data, **kwargs):
        if data["type"] == "choice" and not data.get("choices"):
            raise MarshmallowError("a choice field needs choices", "choices")
        if data["type"] == "object" and not data.get("fields"):
            raise MarshmallowError("an object field needs fields", "fields")


class TermSchema(Schema):
    months = f.Integer(load_default=0, validate=validate.Range(min=0))
    weeks = f.Integer(load_default=0, validate=validate.Range(min=0))
    days = f.Integer(load_default=0, validate=validate.Range(min=0))
    working_days = f.Integer(load_default=0, validate=validate.Range(min=0))


class DueSchema(Schema):
    """Exactly one way to compute a due date."""

    date = f.String()  # a path: "data.x" or "documents.kind.field"
    after = f.Nested(TermSchema)  # a term from the moment of the transition
    after_date = f.String()  # a path, plus `after`
    midpoint = f.List(f.String(), validate=validate.Length(equal=2))

    @validates_schema
    def _one(self, data, **kwargs):
        ways = [k for k in ("date", "midpoint", "after_date") if k in data]
        if len(ways) > 1 or (not ways and "after" not in data):
            raise MarshmallowError("give one of date, midpoint, after or after_date (+ after)")


class DeadlineSpecSchema(Schema):
    kind = f.String(required=True)
    label = f.String(load_default="")
    label_en = f.String(load_default="")
    due = f.Nested(DueSchema, required=True)
    owner_role = f.String(required=True)  # a role, or "item.<field>" with for_each
    # One deadline per item of a list in the data (e.g. each agreed action); paths may then use "item.".
    for_each = f.String(load_default=None)
    remind_days_before = f.List(f.Integer(validate=validate.Range(min=1)), load_default=list)
    # `next_working_day`: a due day that is not a working day (engine/calendar.py) moves to the next one.
    roll = f.String(load_default="none", validate=validate.OneOf(ROLLS))
    # When the deadline passes (engine/deadlines.py): it turns overdue and its owner is told; nothing
    # changes state by itself. `on_overdue` adds who else is told, e.g. the next level.
    on_overdue = f.Nested(lambda: OnOverdueSchema(), load_default=lambda: {"notify": []})
    # The level's own response term: only this one gives `when_overdue` roles their rights, and whoever
    # its passing is told to (unless `informational`) may act on it (tests/test_told_may_act.py).
    level = f.Boolean(load_default=False)
    # Work for its owner from the start (an agreed action): in the owner's inbox until met, not only
    # when due soon.
    todo = f.Boolean(load_default=False)


class NamedTermSchema(Schema):
    """A term a procedure names (e.g. the dispute window): letters quote it, a guard or a page counts it."""

    after = f.Nested(TermSchema, required=True)
    roll = f.String(load_default="none", validate=validate.OneOf(ROLLS))
    # The registered anchor (Registry.anchors) that gives the day the term is counted from.
    start = f.String(load_default=None)
    label = f.String(load_default="")
    label_en = f.String(load_default="")
    # The states in which the case page shows the term's last day.
    shown_in = f.List(f.String(), load_default=list)


class NotifySchema(Schema):
    # subject | opener | responsible | <role> | <role>@employer | <role>@placement | external:<name>
    to = f.String(required=True)
    kind = f.String(required=True)
    subject = f.String(required=True)
    subject_en = f.String(load_default="")
    # Told for information only: they need not be able to act (e.g. the R-COC chair, who watches the
    # procedure, when the RSO board lets a signal wait).
    informational = f.Boolean(load_default=False)
    # Only when this data path is true ("zo nodig": the RvB is told when the board decides so).
    when = f.String(load_default=None)


class OnOverdueSchema(Schema):
    notify = f.List(f.Nested(NotifySchema), load_default=list)
    # Automatic escalation, only where a region enables it: fire this trigger as the system.
    fire = f.String(load_default=None)


class StepSchema(Schema):
    """What opening a case and each transition have in common."""

    roles = f.List(f.String(), required=True, validate=validate.Length(min=1))
    label = f.String(load_default="")
    label_en = f.String(load_default="")
    input = f.Dict(keys=f.String(), values=f.Nested(FieldSpecSchema), load_default=dict)
    requires = f.List(f.Dict(), load_default=list)
    collect = f.Dict(keys=f.String(), values=f.String(), load_default=dict)
    deadlines = f.List(f.Nested(DeadlineSpecSchema), load_default=list)
    meets = f.List(f.String(), load_default=list)
    # Open deadlines of these kinds (and their per-item deadlines, kind_<id>) are cancelled.
    cancels = f.List(f.String(), load_default=list)
    notify = f.List(f.Nested(NotifySchema), load_default=list)
    effects = f.List(f.Dict(), load_default=list)


class OpenSchema(StepSchema):
    state = f.String(required=True)


class TransitionSchema(StepSchema):
    trigger = f.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]*$"))
    # Roles that may also fire this while the current level's response deadline is overdue.
    when_overdue = f.List(f.String(), load_default=list)
    # This move takes a ladder's case to the next level: a passed deadline shows in the inbox of
    # that level's owner too (engine/inbox.py).
    escalates = f.Boolean(load_default=False)
    source = f.Raw(required=True)  # one state or a list
    dest = f.String(required=True)


class StateSchema(Schema):
    name = f.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]*$"))
    label = f.String(load_default="")
    label_en = f.String(load_default="")
    final = f.Boolean(load_default=False)
    # Who owns the case in this state (a ladder's level): the `owner` pseudo-role in a
    # transition's roles means this role; the owner is told on arrival.
    owner = f.String(load_default=None)
    # Routing skips a level nobody can own (e.g. its only holder is the subject of the signal).
    skip_if_unowned = f.Boolean(load_default=False)
    notify_owner = f.Boolean(load_default=True)


class DocumentSpecSchema(Schema):
    title = f.String(required=True)
    title_en = f.String(load_default="")
    authors = f.List(f.String(), required=True, validate=validate.Length(min=1))
    signers = f.List(f.String(validate=validate.OneOf(PSEUDO_ROLES)), load_default=list)
    fields = f.Dict(keys=f.String(), values=f.Nested(FieldSpecSchema), required=True)
    validators = f.List(f.Dict(), load_default=list)
    # A letter its signers sign after the step that wrote it closed the case (an outcome report).
    sign_after_close = f.Boolean(load_default=False)


class SubjectSchema(Schema):
    required = f.Boolean(load_default=False)
    # False: the case is never about one person (a ladder is about the training): subject_id → 422.
    allowed = f.Boolean(load_default=True)
    role = f.String(load_default=None)
    default = f.String(load_default=None, validate=validate.OneOf(("opener",)))


class DefinitionSchema(Schema):
    key = f.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]*$"))
    title = f.String(required=True)
    title_en = f.String(load_default="")
    description = f.String(load_default="")
    category = f.String(load_default="organisational", validate=validate.OneOf(("personal", "organisational")))
    subject = f.Nested(SubjectSchema, load_default=lambda: {"required": False, "role": None, "default": None,
                                                             "allowed": True})
    visibility = f.Dict(
        keys=f.String(), values=f.String(validate=validate.OneOf(("institution", "region", "employer"))),
        load_default=dict
    )
    states = f.List(f.Nested(StateSchema), required=True, validate=validate.Length(min=1))
    open = f.Nested(OpenSchema, required=True)
    transitions = f.List(f.Nested(TransitionSchema), load_default=list)
    documents = f.Dict(keys=f.String(), values=f.Nested(DocumentSpecSchema), load_default=dict)
    # The role that sees a passed deadline in its inbox when a state names no next level.
    next_rung = f.String(load_default=None)
    # A data field holding the id of a user the case is about: that user never sees the case
    # and routing skips them (conflict of interest).
    exclude_field = f.String(load_default=None)
    # Data fields readable only by the listed roles (e.g. the signaller's identity).
    confidential = f.Dict(keys=f.String(), values=f.List(f.String()), load_default=dict)
    terms = f.Dict(keys=f.String(), values=f.Nested(NamedTermSchema), load_default=dict)
    region_overrides = f.Dict(load_default=dict)


def _flatten(messages, prefix="") -> list[str]:
    out = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                path = prefix or "(top)"
            out += _flatten(value, path)
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out += [f"{prefix or '(top)'}: {m}" for m in messages]
    elif isinstance(messages, list):
        for m in messages:
            out += _flatten(m, prefix)
    else:
        out.append(f"{prefix or '(top)'}: {messages}")
    return out


@dataclass(frozen=True)
class Step:
    roles: tuple[str, ...]
    label: str
    label_en: str
    input: dict
    requires: list
    collect: dict
    deadlines: list
    meets: list
    notify: list
    effects: list
    trigger: str | None = None
    cancels: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    dest: str = ""
    when_overdue: tuple[str, ...] = ()
    escalates: bool = False


@dataclass
class Definition:
    key: str
    title: str
    title_en: str
    description: str
    category: str
    subject: dict
    visibility: dict
    states: list[dict]
    open: Step
    transitions: list[Step]
    documents: dict
    next_rung: str | None = None
    exclude_field: str | None = None
    confidential: dict = field(default_factory=dict)
    terms: dict = field(default_factory=dict)
    sha256: str = ""
    source: str = ""
    row_id: int | None = None
    version: int | None = None

    @cached_property
    def state_names(self) -> list[str]:
        return [s["name"] for s in self.states]

    @cached_property
    def final_states(self) -> frozenset[str]:
        return frozenset(s["name"] for s in self.states if s["final"])

    def state(self, name: str) -> dict:
        return next(s for s in self.states if s["name"] == name)

    @cached_property
    def triggers(self) -> frozenset[str]:
        return frozenset(t.trigger for t in self.transitions)

    def step(self, trigger: str, source: str) -> Step | None:
        for t in self.transitions:
            if t.trigger == trigger and source in t.sources:
                return t
        return None

    def entering(self, state: str) -> list[Step]:
        """The steps that bring a case into `state` (opening included), not those that stay in it."""
        steps = [self.open] if self.open.dest == state else []
        return steps + [t for t in self.transitions if t.dest == state and state not in t.sources]

    def level_terms(self, state: str) -> list[dict]:
        """The deadline specs of `state`'s own response term (`level: true`), written on arrival."""
        return [spec for step in self.entering(state) for spec in step.deadlines if spec.get("level")]

    def level_kinds(self, state: str) -> frozenset[str]:
        return frozenset(spec["kind"] for spec in self.level_terms(state))

    def deadline_spec(self, kind: str, state: str | None = None) -> dict:
        """The spec a deadline row was made from: by its kind, or a per-item one's (`<kind>_<id>`).

        Several levels may name their term alike ("response"): the spec of a step that entered `state`
        (the case's current one) comes first, so each level's term tells its own recipients."""
        arrived = self.entering(state) if state in self.state_names else []
        specs = [spec for step in [*arrived, self.open, *self.transitions] for spec in step.deadlines]
        exact = next((spec for spec in specs if spec["kind"] == kind), None)
        return exact or next((spec for spec in specs if spec.get("for_each") and kind.startswith(spec["kind"] + "_")),
                             {})

    def told_when_overdue(self, kind: str, state: str | None = None) -> tuple[set[str], set[str]]:
        """(who is told to act, who is told for information) when a deadline of `kind` passes while the case
        is at `state`, its owner aside."""
        notify = (self.deadline_spec(kind, state).get("on_overdue") or {}).get("notify") or []
        act = {entry["to"] for entry in notify if not entry.get("informational")}
        return act, {entry["to"] for entry in notify if entry.get("informational")} - act

    @cached_property
    def todo_kinds(self) -> frozenset[str]:
        return frozenset(spec["kind"] for step in [self.open, *self.transitions] for spec in step.deadlines
                         if spec.get("todo"))

    @cached_property
    def informational_notices(self) -> frozenset[tuple[str, str]]:
        """(kind, recipient role) of the step notices that ask nothing of their reader (docs/digest.md).

        A notice is informational when its recipient, in the state the step leads to, owns neither
        the state nor a deadline the step sets and may fire no trigger from it; never for the case's
        subject (news about one's own training is not batched). A kind that is informational in one
        step and not in another, or that also carries a letter (an effect's `notify_kind`), is not."""
        told, acting = set(), set()
        for step in [self.open, *self.transitions]:
            dest = step.dest
            owner = self.state(dest).get("owner") if dest in self.state_names else None
            act = {owner} | {spec["owner_role"] for spec in step.deadlines}
            for t in self.transitions:
                if dest in t.sources:
                    act |= {owner if role == "owner" else role for role in t.roles}
            for spec in step.notify:
                role = spec["to"].partition("@")[0]
                pair = (spec["kind"], role)
                (acting if role == "subject" or role in act or "*" in act else told).add(pair)
            for effect in step.effects:
                for to in effect.get("to") or ():
                    acting.add((effect.get("notify_kind"), str(to).partition("@")[0]))
        return frozenset(told - acting)

    def escalation(self, state: str) -> Step | None:
        """The move that takes the case from `state` to the next level of its ladder, if there is one."""
        return next((t for t in self.transitions if t.escalates and state in t.sources), None)

    @cached_property
    def machine(self):
        return build_machine(self)

    # -- the cache of stored versions: one parsed definition (and machine) per row

    _cache: ClassVar[dict[int, "Definition"]] = {}

    @classmethod
    def for_row(cls, row: WorkflowDefinition, registry) -> "Definition":
        cached = cls._cache.get(row.id)
        if cached is not None and cached.sha256 == row.sha256:
            return cached
        definition = parse(row.source, f"{row.key} v{row.version}", registry)
        definition.row_id, definition.version = row.id, row.version
        cls._cache[row.id] = definition
        return definition


def _step(data: dict, trigger=None, sources=(), dest="") -> Step:
    return Step(
        roles=tuple(data["roles"]),
        label=data["label"],
        label_en=data["label_en"],
        input=data["input"],
        requires=data["requires"],
        collect=data["collect"],
        deadlines=data["deadlines"],
        meets=data["meets"],
        notify=data["notify"],
        effects=data["effects"],
        trigger=trigger,
        sources=tuple(sources),
        dest=dest,
        when_overdue=tuple(data.get("when_overdue", ())),
        cancels=tuple(data.get("cancels", ())),
        escalates=data.get("escalates", False),
    )


def _check_callable_args(kind: str, entry: dict, registry_map: dict, where: str, errors: list[str]) -> None:
    name = entry.get(kind)
    if name not in registry_map:
        errors.append(f"{where}: unknown {kind} {name!r} (known: {', '.join(sorted(registry_map))})")
        return
    params = inspect.signature(registry_map[name]).parameters
    given = {k for k in entry if k != kind}
    accepted = {p for p in params if p not in ("ctx", "content")}
    needed = {p for p, v in params.items() if p in accepted and v.default is inspect.Parameter.empty}
    if given - accepted:
        errors.append(f"{where}: {kind} {name!r} takes no argument {', '.join(sorted(given - accepted))}")
    if needed - given:
        errors.append(f"{where}: {kind} {name!r} needs {', '.join(sorted(needed - given))}")


_PARSED: dict[tuple[str, int], Definition] = {}
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 10x faster


def parse(source: str, filename: str, registry) -> Definition:
    """Parse and validate one definition; every problem is reported with file and path.

    The same source against the same set of guard names parses once per process; each caller
    gets its own copy (row id and version are set per database).
    """
    key = (sha256_hex(source), hash(registry.names()))
    if key in _PARSED:
        return copy.copy(_PARSED[key])
    definition = _parse(source, filename, registry)
    _PARSED[key] = definition
    return copy.copy(definition)


def _parse(source: str, filename: str, registry) -> Definition:
    try:
        raw = yaml.load(source, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise DefinitionError(f"{filename}: not valid YAML: {exc}", {"file": filename}) from exc
    if not isinstance(raw, dict):
        raise DefinitionError(f"{filename}: a definition is a mapping", {"file": filename})
    raw = apply_overrides(raw, raw.get("region_overrides") or {})
    try:
        data = DefinitionSchema().load(raw)
    except MarshmallowError as exc:
        problems = _flatten(exc.messages)
        raise DefinitionError(f"{filename}: " + "; ".join(problems), {"file": filename, "errors": problems}) from exc

    errors: list[str] = []
    names = [s["name"] for s in data["states"]]
    if len(set(names)) != len(names):
        errors.append("states: duplicate state names")
    if data["open"]["state"] not in names:
        errors.append(f"open.state: unknown state {data['open']['state']!r}")
    steps = []
    seen = set()
    for i, t in enumerate(data["transitions"]):
        sources = t["source"] if isinstance(t["source"], list) else [t["source"]]
        for s in sources:
            if s not in names:
                errors.append(f"transitions.{i}.source: unknown state {s!r}")
            if (t["trigger"], s) in seen:
                errors.append(f"transitions.{i}: trigger {t['trigger']!r} leaves {s!r} twice")
            seen.add((t["trigger"], s))
        if t["dest"] not in names:
            errors.append(f"transitions.{i}.dest: unknown state {t['dest']!r}")
        steps.append(_step(t, t["trigger"], sources, t["dest"]))
    for where, step in [("open", data["open"])] + [(f"transitions.{i}", t) for i, t in enumerate(data["transitions"])]:
        for j, req in enumerate(step["requires"]):
            _check_callable_args("guard", req, registry.guards, f"{where}.requires.{j}", errors)
        for j, eff in enumerate(step["effects"]):
            _check_callable_args("effect", eff, registry.effects, f"{where}.effects.{j}", errors)
    for kind, spec in data["documents"].items():
        for j, val in enumerate(spec["validators"]):
            _check_callable_args("validator", val, registry.validators, f"documents.{kind}.validators.{j}", errors)
    for name, term in data["terms"].items():
        if term["start"] and term["start"] not in registry.anchors:
            errors.append(f"terms.{name}.start: unknown anchor {term['start']!r}")
        errors += [f"terms.{name}.shown_in: unknown state {s!r}" for s in term["shown_in"] if s not in names]
    if errors:
        raise DefinitionError(f"{filename}: " + "; ".join(errors), {"file": filename, "errors": errors})

    return Definition(
        key=data["key"],
        title=data["title"],
        title_en=data["title_en"] or data["title"],
        description=data["description"],
        category=data["category"],
        subject=data["subject"],
        visibility=data["visibility"],
        states=data["states"],
        open=_step(data["open"], dest=data["open"]["state"]),
        transitions=steps,
        documents=data["documents"],
        next_rung=data["next_rung"],
        exclude_field=data["exclude_field"],
        confidential=data["confidential"],
        terms=data["terms"],
        sha256=sha256_hex(source),
        source=source,
    )


def _deadline_specs(raw: dict):
    steps = [raw.get("open") or {}] + list(raw.get("transitions") or [])
    for step in steps:
        for spec in (step.get("deadlines") or []) if isinstance(step, dict) else []:
            if isinstance(spec, dict):
                yield spec


def apply_overrides(raw: dict, overrides: dict) -> dict:
    """A region's terms, reminder offsets and overdue behaviour, by deadline kind.

    overrides = {"deadlines": {kind: {"after": {...}, "remind_days_before": [...], "on_overdue": {...},
                                      "roll": "next_working_day"}},
                 "terms": {name: {"after": {...}, "roll": ...}}}
    """
    for name, change in (overrides.get("terms") or {}).items():
        term = (raw.get("terms") or {}).get(name)
        if isinstance(term, dict) and isinstance(change, dict):
            term.update({k: v for k, v in change.items() if k in ("after", "roll")})
    for spec in _deadline_specs(raw):
        change = (overrides.get("deadlines") or {}).get(spec.get("kind"))
        if not isinstance(change, dict):
            continue
        if "after" in change and isinstance(spec.get("due"), dict):
            spec["due"] = {**{k: v for k, v in spec["due"].items() if k not in ("after",)}, "after": change["after"]}
        for key in ("remind_days_before", "on_overdue", "owner_role", "roll"):
            if key in change:
                spec[key] = change[key]
    return raw


def with_region(source: str, overrides: dict | None) -> str:
    """The stored source: the shipped YAML plus the region's overrides for it, so the hash covers both."""
    if not overrides:
        return source
    block = yaml.safe_dump({"region_overrides": overrides}, allow_unicode=True, sort_keys=True)
    return source.rstrip("\n") + "\n\n# Region configuration (workflows/region.yaml), applied on load:\n" + block


def _unlabelled_fields(specs: dict, where: str, registry) -> list[str]:
    out = []
    for name, spec in (specs or {}).items():
        out += [f"{where}.{name}: no {k}" for k in ("label", "label_en") if not spec.get(k)]
        out += [f"{where}.{name}: choice {c!r} has no words in the vocabulary" for c in spec.get("choices") or []
                if registry.labels and registry.choice_word(c) is None]
        out += _unlabelled_fields(spec.get("fields"), f"{where}.{name}", registry)
        out += _unlabelled_fields((spec.get("items") or {}).get("fields"), f"{where}.{name}.items", registry)
    return out


def _step_roles(definition: Definition) -> set[str]:
    named = {r for step in [definition.open, *definition.transitions] for r in (*step.roles, *step.when_overdue)}
    named |= {s["owner"] for s in definition.states if s.get("owner")} | set(definition.visibility)
    named |= {spec["owner_role"] for step in [definition.open, *definition.transitions] for spec in step.deadlines
              if not spec["owner_role"].startswith("item.")}
    named |= {r for spec in definition.documents.values() for r in (*spec["authors"], *spec["signers"])}
    return named - {"*", "system"}


def missing_labels(definition: Definition, registry) -> list[str]:
    """Every code of the definition a person would read without words for it (label and label_en).

    States, steps (their triggers), fields, documents and deadlines carry their words in the YAML;
    choice values and roles take theirs from the registry's vocabulary (when it has one).
    """
    out = []
    for s in definition.states:
        out += [f"states.{s['name']}: no {k}" for k in ("label", "label_en") if not s.get(k)]
    for where, step in [("open", definition.open)] + [(f"transitions.{t.trigger}", t) for t in definition.transitions]:
        out += [f"{where}: no {k}" for k in ("label", "label_en") if not getattr(step, k)]
        out += _unlabelled_fields(step.input, f"{where}.input", registry)
        out += [f"{where}.deadlines.{d['kind']}: no {k}" for d in step.deadlines for k in ("label", "label_en")
                if not d.get(k)]
        out += [f"{where}.requires.{r['guard']}: no {k}" for r in step.requires for k in ("label", "label_en")
                if "label" in inspect.signature(registry.guards[r["guard"]]).parameters and not r.get(k)]
    for kind, spec in definition.documents.items():
        out += [] if spec.get("title_en") else [f"documents.{kind}: no title_en"]
        out += _unlabelled_fields(spec["fields"], f"documents.{kind}.fields", registry)
    if any(k.startswith("role.") for k in registry.labels):
        out += [f"roles: {r!r} has no words in the vocabulary" for r in sorted(_step_roles(definition))
                if registry.word("role", r) is None]
    return out


def load_directory(directory: Path, registry, region: dict | None = None) -> list[Definition]:
    """Every definition of the folder, validated; a code without words for people is an error too."""
    definitions = []
    for path in sorted(Path(directory).glob("*.yaml")):
        source = with_region(path.read_text(encoding="utf-8"), ((region or {}).get("workflows") or {}).get(path.stem))
        definition = parse(source, path.name, registry)
        if definition.key != path.stem:
            raise DefinitionError(f"{path.name}: key {definition.key!r} does not match the file name")
        unlabelled = missing_labels(definition, registry)
        if unlabelled:
            raise DefinitionError(f"{path.name}: words missing: " + "; ".join(unlabelled),
                                  {"file": path.name, "errors": unlabelled})
        definitions.append(definition)
    return definitions


def sync(session: Session, definitions: list[Definition], now: datetime) -> list[WorkflowDefinition]:
    """Store each definition whose source is new as the next version of its key.

    Returns the rows that were added. Does not commit.
    """
    added = []
    for d in definitions:
        exists = session.scalar(
            select(WorkflowDefinition.id).where(WorkflowDefinition.key == d.key, WorkflowDefinition.sha256 == d.sha256)
        )
        if exists:
            continue
        latest = session.scalar(select(func.max(WorkflowDefinition.version)).where(WorkflowDefinition.key == d.key))
        row = WorkflowDefinition(
            key=d.key, version=(latest or 0) + 1, sha256=d.sha256, title=d.title, source=d.source, loaded_at=now
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            continue  # another process stored the same source at the same moment
        added.append(row)
    return added


def latest_rows(session: Session) -> dict[str, WorkflowDefinition]:
    """The newest stored version of every key: what new cases are opened with."""
    newest = (
        select(WorkflowDefinition.key, func.max(WorkflowDefinition.version).label("v"))
        .group_by(WorkflowDefinition.key)
        .subquery()
    )
    rows = session.scalars(
        select(WorkflowDefinition).join(
            newest, (WorkflowDefinition.key == newest.c.key) & (WorkflowDefinition.version == newest.c.v)
        )
    )
    return {r.key: r for r in rows}
