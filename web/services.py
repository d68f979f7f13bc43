"""The engine bound to the current app, and the app's clock."""
from __future__ import annotations

from datetime import datetime

from flask import current_app

from engine.commands import Engine


def engine() -> Engine:
    return current_app.extensions["traject"]


def now() -> datetime:
    return engine().clock.now()
