"""The demo region (idempotent): what `make run` serves."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from .. import demo


@click.command("demo")
@click.option("--scale", type=int, default=0, help="add N synthetic cases with realistic histories")
@with_appcontext
def demo_command(scale):
    """Load the demo region (idempotent)."""
    demo.load(current_app, scale=scale, echo=click.echo)
