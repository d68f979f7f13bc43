"""Serving: the web server, the worker, both together, and one pass of the worker's jobs."""
from __future__ import annotations

import json
import signal

import click
from flask import current_app
from flask.cli import with_appcontext
from werkzeug.serving import run_simple

from ..jobs.passes import one_pass
from ..jobs.worker import Worker
from .common import moment


@click.command("web")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@with_appcontext
def web_command(host, port):
    """Serve the web UI and the API."""
    serve(host, port)


@click.command("run")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@with_appcontext
def run_command(host, port):
    """Web and worker together, for one machine (the worker runs in a background scheduler)."""
    worker = Worker(current_app._get_current_object(), background=True)
    worker.start_background()
    # SIGTERM stops the web server like Ctrl-C does; then the worker finishes its pass.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        serve(host, port)
    except KeyboardInterrupt:
        pass
    finally:
        worker.stop()


@click.command("worker")
@click.option("--interval", type=float, default=None, help="seconds between passes (TRAJECT_WORKER_INTERVAL)")
@with_appcontext
def worker_command(interval):
    """Sweep due deadlines and deliver the outbox until stopped (SIGTERM or SIGINT)."""
    Worker(current_app._get_current_object(), interval).run_forever()


@click.command("sweep")
@click.option("--now", "now_text", default=None, help="ISO-8601 moment to sweep as of (default: now)")
@with_appcontext
def sweep_command(now_text):
    """One pass of due deadlines and pending notifications; prints a JSON summary."""
    when = moment(now_text, "--now")
    click.echo(json.dumps(one_pass(current_app._get_current_object(), when)))


def serve(host: str, port: int) -> None:
    click.echo(f"Traject on http://{host}:{port}/  (API: http://{host}:{port}/api/v1/docs)", err=True)
    run_simple(host, port, current_app._get_current_object(), threaded=True, use_reloader=False)
