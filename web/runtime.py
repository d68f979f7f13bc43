"""The engine at run time: built once per app from the workflows and the region, kept in sync with the database.

The app factory, the CLI, the demo and the benchmarks all set the engine up through here, so that
none of them needs the app factory to reach the engine (and no import circle holds them together).
"""
from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import inspect, make_url
from sqlalchemy.exc import DatabaseError, SQLAlchemyError

from engine.clock import FixedClock, SystemClock
from engine.commands import Engine, EngineConfig
from engine.definitions import sync
from engine.privacy import load_policies
from workflows import default_programme, load_definitions, load_region, make_registry
from workflows.roles import DEPUTIES, PROGRAMME_ROLES, SUPERUSER_ROLES
from workflows.terms import working_calendar

from .config import ConfigError
from .extensions import db
from .files import FILE_MODE, private_file, tighten

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
                          superuser_roles=SUPERUSER_ROLES, programme_roles=PROGRAMME_ROLES,
                          default_programme=default_programme(region), deputies=DEPUTIES,
                          calendar=working_calendar(region),
                          region_facts={k: str(v) for k, v in (region.get("letters") or {}).items()})
    app.extensions["traject"] = Engine(registry, config, clock_of(app))
    app.extensions["traject.definitions"] = definitions
    with app.app_context():
        check_sqlite_file(app)
        try:
            if inspect(db.engine).has_table("workflow_definition"):
                sync_definitions(app)
        except SQLAlchemyError as exc:  # the database may not exist yet: `traject db upgrade` comes first
            log.warning("definitions not synchronised: %s", exc)
            db.session.rollback()


def clock_of(app: Flask):
    """The tests' clock, else TRAJECT_NOW's fixed moment (development/testing only: web/config.py), else the
    system's: every process (web, worker, CLI, demo) is built here, so all of them keep the same time."""
    if app.config.get("CLOCK"):
        return app.config["CLOCK"]
    if app.config.get("TRAJECT_NOW"):
        log.info("the clock is fixed at %s (TRAJECT_NOW)", app.config["TRAJECT_NOW"].isoformat())
        return FixedClock(app.config["TRAJECT_NOW"])
    return SystemClock()


def check_sqlite_file(app: Flask) -> None:
    """SQLite: the database file is private (0600) and passes PRAGMA quick_check, or Traject does not start.

    A damaged file would answer `SELECT 1` and serve wrong or missing rows. `traject restore` skips the
    check (TRAJECT_CHECK_INTEGRITY=False): replacing a damaged file is what it is for.
    """
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    path = Path(url.database)
    if path.parent.is_dir():
        # Never open and close an existing database file: closing any descriptor of it drops every POSIX
        # lock this process holds on it, and another process may then take SQLite's WAL for unused.
        if path.exists():
            tighten(path, FILE_MODE)
        else:
            private_file(path)  # SQLite gives its -wal and -shm files the database file's mode
        for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if extra.exists():
                tighten(extra, FILE_MODE)
    if not app.config.get("TRAJECT_CHECK_INTEGRITY", True):
        return
    try:
        with db.engine.connect() as conn:
            found = [str(row) for row in conn.exec_driver_sql("PRAGMA quick_check").scalars()]
    except DatabaseError as exc:  # not a database at all, or too damaged to check
        found = [str(exc.orig)]
    if found != ["ok"]:
        raise ConfigError(f"the SQLite database {path} failed its integrity check (PRAGMA quick_check: "
                          f"{'; '.join(found[:3])}); Traject does not start on a damaged file: restore the latest "
                          "backup with `traject restore FILE`")


def sync_definitions(app: Flask) -> list:
    """Store every definition version not yet in the database (by sha256); returns the rows added."""
    added = sync(db.session, app.extensions["traject.definitions"], app.extensions["traject"].clock.now())
    db.session.commit()
    app.extensions["traject"].forget_definitions()
    for row in added:
        log.info("stored workflow %s version %s (%s)", row.key, row.version, row.sha256[:12])
    return added
