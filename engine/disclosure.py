"""What one reader may see of a case they may see: the one rule for every output.

Scope (engine/scope.py) decides *which* cases a reader sees. Some cases carry confidential
fields (a definition's `confidential:` maps a field to the roles that may read it): the
signaller of an escalation, the opener of an RSO quality report. The API, the pages, the
dossier and the subject access export all ask a `Disclosure` what to show, so that no output
can show more than another.
"""
from __future__ import annotations

from dataclasses import dataclass

from .models import Case
from .scope import Actor

OPENER_FIELD = "opened_by"  # not a data field: the case's opener, and the actor of its first event


@dataclass(frozen=True)
class Disclosure:
    hidden: frozenset[str]  # confidential fields this reader may not see
    marker: str = "[confidential]"  # what stands in a hidden field's place (the engine's text "redacted")

    @property
    def hides_opener(self) -> bool:
        return OPENER_FIELD in self.hidden

    def data(self, data):
        """Case data or a step's input with the hidden fields replaced by a placeholder."""
        if not isinstance(data, dict) or not self.hidden.intersection(data):
            return data
        return {k: (self.marker if k in self.hidden else v) for k, v in data.items()}

    def opened_by(self, case: Case) -> int | None:
        return None if self.hides_opener else case.opened_by_id

    def actor_of(self, seq: int, actor_id: int | None) -> int | None:
        """Who did an event: the first event is the opening, whose actor is the opener."""
        return None if seq == 1 and self.hides_opener else actor_id

    def event_data(self, data):
        """An event's data: its `input` (what the step was given) is data like the case's."""
        if isinstance(data, dict) and isinstance(data.get("input"), dict) and self.hidden:
            return {**data, "input": self.data(data["input"])}
        return data

    def withholds(self, seq: int, data) -> bool:
        """Whether this reader sees less of the event than was recorded (so its hash cannot be checked)."""
        if seq == 1 and self.hides_opener:
            return True
        return isinstance(data, dict) and (bool(self.hidden.intersection(data))
                                           or bool(self.hidden.intersection(data.get("input") or {})))


NOTHING_HIDDEN = Disclosure(frozenset())


def disclosure(confidential: dict[str, list[str]], case: Case, actor: Actor, marker: str) -> Disclosure:
    """What `actor` may see of `case` under the definition's `confidential` map.

    A field is shown to the roles it names (a superuser holds the role `superuser`); the opener
    always knows that they opened the case, and reads the data with the role `opener` too.
    """
    if not confidential:
        return NOTHING_HIDDEN
    roles = actor.roles_on(case)
    if actor.superuser:
        roles.add("superuser")
    opener = case.opened_by_id is not None and case.opened_by_id == actor.id
    return for_roles(confidential, roles, marker, opener=opener)


def for_roles(confidential: dict[str, list[str]], roles: set[str], marker: str, opener: bool = False) -> Disclosure:
    """The disclosure for a reader known by role (e.g. the person a subject access export is for)."""
    hidden = {name for name, allowed in (confidential or {}).items()
              if not roles & set(allowed) and not (name == OPENER_FIELD and opener)}
    return Disclosure(frozenset(hidden), marker)
