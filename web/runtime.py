"""The engine at run time: built once per app from the workflows and the region, kept in sync with the database.

The app factory, the CLI, the demo and the benchmarks all set the engine up through here, so that
none of them needs the app factory to reach the engine (and no import circle holds them together).
"""
from __future__ import annotations

import logging
from datetime import datetime

from flask import Flask, current_app
from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError

from engine.clock import SystemClock
from engine.commands import Engine, EngineConfig
from engine.definitions import sync
from engine.privacy import load_policies
from workflows import load_definitions, load_region, make_registry
from workflows.roles import SUPERUSER_ROLES

from .extensions import db

log = logging.getLogger(__name__)


def engine() -> Engine:
    """The engine bound to the current app."""
    return current_app.extensions["traject"]


def now() -> datetime:
    """The app's clock (a fixed one in tests)."""
    return engine().clock.now()


def set_up(app: Flask) -> None:
    """Build the engine from the definitions and the region configuration; an invalid one stops the start."""
    registry = make_registry()
    region = load_region(app.config.get("TRAJECT_REGION_CONFIG"))
    app.config["TRAJECT_REGION"] = region
    definitions = load_definitions(registry, region=region)  # an invalid definition stops the start, loudly
    # Retention per workflow (region configuration `retention:`, docs/privacy.md): a mistake stops the start too.
    app.config["TRAJECT_RETENTION"] = load_policies(region, {d.key for d in definitions})
    recipients = dict(region.get("recipients") or {})
    if app.config.get("RGS_ADDRESS"):
        recipients["rgs"] = app.config["RGS_ADDRESS"]
    config = EngineConfig(timezone=app.config["TRAJECT_TIMEZONE"], external_recipients=recipients,
                          superuser_roles=SUPERUSER_ROLES)
    app.extensions["traject"] = Engine(registry, config, app.config.get("CLOCK") or SystemClock())
    app.extensions["traject.definitions"] = definitions
    with app.app_context():
        try:
            if inspect(db.engine).has_table("workflow_definition"):
                sync_definitions(app)
        except SQLAlchemyError as exc:  # the database may not exist yet: `traject db upgrade` comes first
            log.warning("definitions not synchronised: %s", exc)
            db.session.rollback()


def sync_definitions(app: Flask) -> list:
    """Store every definition version not yet in the database (by sha256); returns the rows added."""
    added = sync(db.session, app.extensions["traject.definitions"], app.extensions["traject"].clock.now())
    db.session.commit()
    app.extensions["traject"].forget_definitions()
    for row in added:
        log.info("stored workflow %s version %s (%s)", row.key, row.version, row.sha256[:12])
    return added
