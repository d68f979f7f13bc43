"""The Dutch procedures as data (definitions/*.yaml) plus the named guards they use."""
from __future__ import annotations

from pathlib import Path

from engine import builtins
from engine.definitions import Definition, load_directory
from engine.registry import Registry

DEFINITIONS_DIR = Path(__file__).parent / "definitions"


def make_registry() -> Registry:
    registry = builtins.install(Registry())
    from . import guards

    guards.install(registry)
    return registry


def load_definitions(registry: Registry | None = None, directory: Path = DEFINITIONS_DIR) -> list[Definition]:
    return load_directory(directory, registry or make_registry())
