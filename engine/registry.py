"""Named guards, effects and document validators that definitions refer to by name.

A guard returns None when met, or one unmet condition (or a list of them):
    {"guard": name, "field": path-or-None, "message": English, "message_nl": Dutch}
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from .calendar import local_date
from .models import AuditEvent, Case, Document, User
from .outbox import safe_format


@dataclass
class Registry:
    guards: dict[str, Callable] = field(default_factory=dict)
    effects: dict[str, Callable] = field(default_factory=dict)
    validators: dict[str, Callable] = field(default_factory=dict)
    # Named days a definition's terms are counted from: fn(case, tz_name) -> date | None.
    anchors: dict[str, Callable] = field(default_factory=dict)
    # How a term ({months, weeks, days, working_days}) is written in a language: fn(term, lang) -> str.
    term_words: Callable = field(default=lambda term, lang="": ", ".join(f"{n} {k}" for k, n in term.items() if n))
    # Named texts the engine writes into messages, events and unmet conditions. English ones under
    # the bare name (engine/builtins.py); the Dutch ones under `<name>.nl` (workflows/texts.py).
    texts: dict[str, str] = field(default_factory=dict)
    # What people call the codes definitions share (choice values, roles): "choice.<v>" / "role.<key>"
    # → (Dutch, English), from the workflow package (workflows/vocabulary.py). Empty: not checked.
    labels: dict[str, tuple[str, str]] = field(default_factory=dict)

    def word(self, kind: str, code, lang: str = "") -> str | None:
        """The Dutch (lang "nl") or English word for a shared code, or None when there is none."""
        pair = self.labels.get(f"{kind}.{code}")
        return None if pair is None else pair[0 if lang == "nl" else 1]

    def choice_word(self, code, lang: str = "") -> str | None:
        """A choice value's word; a choice among roles (an action's owner) takes the role's."""
        return self.word("choice", code, lang) or self.word("role", code, lang)

    def text(self, name: str, lang: str = "", /, **values) -> str:
        """The text `name` in `lang` (falling back to the English one), its {fields} filled in."""
        template = self.texts.get(f"{name}.{lang}") if lang else None
        return safe_format(template if template is not None else self.texts[name], **values)

    def names(self) -> tuple:
        return (tuple(sorted(self.guards)), tuple(sorted(self.effects)), tuple(sorted(self.validators)),
                tuple(sorted(self.anchors)))

    def guard(self, name: str):
        def register(fn):
            self.guards[name] = fn
            return fn

        return register

    def effect(self, name: str):
        def register(fn):
            self.effects[name] = fn
            return fn

        return register

    def anchor(self, name: str):
        def register(fn):
            self.anchors[name] = fn
            return fn

        return register

    def validator(self, name: str):
        def register(fn):
            self.validators[name] = fn
            return fn

        return register


def unmet(guard: str, message: str, message_nl: str, field: str | None = None, **extra) -> dict:
    return {"guard": guard, "field": field, "message": message, "message_nl": message_nl, **extra}


@dataclass
class Context:
    """What a guard, effect or validator may look at. Built once per command."""

    session: Session
    case: Case
    definition: Any
    actor: Any
    now: datetime
    data: dict  # the case's data with this step's input merged in
    input: dict
    config: Any = None
    trigger: str | None = None
    engine: Any = None
    item: Any = None  # the current element while a deadline is made per item (for_each)
    # Data an effect works out (e.g. a moved end date): stored with the step's input, recorded as derived.
    derived: dict = field(default_factory=dict)

    @cached_property
    def documents(self) -> dict[str, Document]:
        """The latest version of each document kind on the case (one query)."""
        if self.case.id is None:
            return {}
        rows = self.session.scalars(
            select(Document).options(joinedload(Document.signatures))
            .where(Document.case_id == self.case.id).order_by(Document.kind, Document.version)
        ).unique()
        latest: dict[str, Document] = {}
        for doc in rows:
            latest[doc.kind] = doc
        return latest

    def history(self) -> list[dict]:
        """The case's steps so far, for a letter that tells its story: [{date, step, note}].

        `step` names the state reached (or the step, when the case stayed where it was); `note` holds the
        step's text inputs (reasons, decisions), never a confidential field."""
        out = []
        hidden = set(self.definition.confidential)
        for event in self.session.scalars(select(AuditEvent).where(AuditEvent.case_id == self.case.id,
                                                                   AuditEvent.type.in_(("opened", "transition")))
                                          .order_by(AuditEvent.seq)):
            step = self.definition.open if event.type == "opened" else self.definition.step(event.trigger,
                                                                                            event.from_state)
            if step is None:
                continue
            same = event.type == "transition" and event.from_state == event.to_state
            name = step.label if same else self.definition.state(event.to_state).get("label") or event.to_state
            given = (event.data or {}).get("input") or {}
            notes = [given[k] for k, spec in step.input.items()
                     if spec["type"] == "text" and k not in hidden and isinstance(given.get(k), str) and given[k]]
            out.append({"date": local_date(event.at, self.config.timezone).isoformat(), "step": name,
                        "note": " — ".join(notes)})
        return out

    def document_is_signed(self, kind: str) -> bool:
        doc = self.documents.get(kind)
        if doc is None:
            return False
        signed = {s.signer_id for s in doc.signatures}
        return set(doc.required_signer_ids) <= signed

    def term_value(self, name: str, what: str):
        """A named term of the definition (or a deadline kind's `after`), for a letter:

        `text` the term in Dutch words ("4 weken"); `end` its last day counted from its anchor,
        `end_today` counted from the day of this step (a decision taken now), both ISO dates.
        """
        engine = self.engine
        if what == "text":
            term = engine.term_spec(self.session, self.case, name)
            return engine.registry.term_words(term["after"], engine.config.language) if term else None
        start = local_date(self.now, self.config.timezone) if what == "end_today" else None
        end = engine.term(self.session, self.case, name, start=start)
        return end.day.isoformat() if end else None

    def value(self, path: str):
        """Resolve "data.x.y", "documents.kind.field", "case.attr", "subject.name", "opener.name",
        "responsible.name", "actor.name", "institution.name", "region.<fact>" (EngineConfig.region_facts),
        "terms.name[.text|.end|.end_today]", "today" or "history" (or a bare data key)."""
        parts = path.split(".")
        if path == "today":
            return local_date(self.now, self.config.timezone).isoformat()
        if path == "history":
            return self.history()
        if parts[0] == "terms" and len(parts) > 1:
            return self.term_value(parts[1], parts[2] if len(parts) > 2 else "text")
        if parts[0] in ("subject", "opener", "responsible", "actor"):
            uid = {"subject": self.case.subject_id, "opener": self.case.opened_by_id,
                   "responsible": self.case.responsible_id, "actor": self.actor.id}[parts[0]]
            user = self.session.get(User, uid) if uid else None
            return getattr(user, parts[1], None) if user is not None and len(parts) > 1 else None
        if parts[0] == "item":
            node = self.item
            for part in parts[1:]:
                node = node.get(part) if isinstance(node, dict) else None
            return node
        if parts[0] == "institution":
            return getattr(self.case.institution, parts[1], None) if len(parts) > 1 else None
        if parts[0] == "region":
            return (getattr(self.config, "region_facts", None) or {}).get(parts[1]) if len(parts) > 1 else None
        if parts[0] == "case":
            return getattr(self.case, parts[1], None) if len(parts) > 1 else None
        if parts[0] == "documents":
            doc = self.documents.get(parts[1])
            node = doc.content if doc is not None else None
            parts = parts[2:]
        else:
            node = self.data
            parts = parts[1:] if parts[0] == "data" else parts
        for part in parts:
            node = node.get(part) if isinstance(node, dict) else None
        return node
