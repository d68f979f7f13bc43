"""The Dutch procedures as data (definitions/*.yaml) plus the named guards they use."""
from __future__ import annotations

from pathlib import Path

import yaml

from engine import builtins
from engine.definitions import Definition, Step, load_directory
from engine.registry import Registry

from . import guards, terms, vocabulary
from .texts import TEXTS_NL

DEFINITIONS_DIR = Path(__file__).parent / "definitions"
REGION_FILE = Path(__file__).parent / "region.yaml"


def load_region(path: str | Path | None = None) -> dict:
    """The region's configuration (terms, reminders, recipients, auto-escalation)."""
    source = Path(path) if path else REGION_FILE
    if not source.exists():
        return {}
    data = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{source}: region configuration must be a mapping")
    return data


def default_programme(region: dict) -> str:
    """The programme of whatever names none; a region without the setting has one programme."""
    return str(((region.get("programmes") or {}).get("default")) or "anesthesiologie")


# The effects that put a letter in writing (workflows/guards.py): a step with one of them sends it.
LETTER_EFFECTS = frozenset({"write_letter", "write_action_list"})


def is_final_decision(definition: Definition, step: Step) -> bool:
    """A step the pages ask to confirm after showing what it writes: it closes the case, or it sends a letter."""
    return step.dest in definition.final_states or any(e.get("effect") in LETTER_EFFECTS for e in step.effects)


def make_registry() -> Registry:
    registry = builtins.install(Registry())
    guards.install(registry)
    registry.term_words = terms.term_text
    registry.texts.update(TEXTS_NL)
    registry.labels.update(vocabulary.labels())
    return registry


def load_definitions(registry: Registry | None = None, directory: Path = DEFINITIONS_DIR,
                     region: dict | None = None) -> list[Definition]:
    return load_directory(directory, registry or make_registry(), region)
