"""The `traject` command (CONTRACT.md section 1): one module per subject, gathered here."""
from __future__ import annotations

import logging
import sys

import click
from flask.cli import FlaskGroup, NoAppException
from flask_migrate.cli import db as db_group

from ..app import create_app
from ..config import ConfigError
from . import audit, backup, definitions, demo, outbox, privacy, records, serve, users


def _create_app():
    # A restore is how a damaged SQLite file is replaced: it must start on one (runtime.check_sqlite_file).
    ctx = click.get_current_context(silent=True)
    overrides = {"TRAJECT_CHECK_INTEGRITY": False} if ctx is not None and ctx.info_name == "restore" else None
    try:
        return create_app(overrides)
    except ConfigError as exc:  # a configuration mistake: say what, without a traceback
        raise NoAppException(str(exc)) from None


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False, add_version_option=False)
def main():
    """Traject: workflows, deadlines and escalation for specialist training."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # fpdf2's font subsetting chatters at INFO


main.add_command(db_group, "db")  # flask-migrate's, with `sync-definitions` added (cli/definitions.py)
for command in (users.institution, users.user, users.programme, records.records_group, audit.audit_group, demo.demo_command, serve.web_command,
                serve.run_command, serve.worker_command, serve.sweep_command, outbox.outbox_group,
                definitions.definitions_group, privacy.privacy_group, backup.backup_command, backup.restore_command):
    main.add_command(command)
