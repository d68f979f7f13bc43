"""The demo region (idempotent): what `make run` serves."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from .. import demo
from ..config import DEV_ENVS


@click.command("demo")
@click.option("--scale", type=int, default=0, help="add N synthetic cases with realistic histories")
@with_appcontext
def demo_command(scale):
    """Load the demo region (idempotent); only in a demo instance."""
    # The demo writes letters to the RGS and mails invented people: never into a real instance.
    if current_app.config.get("TRAJECT_ENV") not in DEV_ENVS and not current_app.config.get("TRAJECT_DEMO"):
        raise click.ClickException(
            f"this is not a demo instance (TRAJECT_ENV={current_app.config.get('TRAJECT_ENV')}): the demo would "
            "write letters to the RGS and mail invented people. Use TRAJECT_ENV=development, or set TRAJECT_DEMO=1 "
            "for an instance that is only a demo.")
    demo.load(current_app, scale=scale, echo=click.echo)
