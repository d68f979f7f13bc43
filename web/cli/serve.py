"""Serving: the web server, the worker, both together, and one pass of the worker's jobs.

`traject web` serves with gunicorn, what production runs and what `make bench` measures;
`--dev` keeps Werkzeug's development server for debugging in one process. `traject run` is a
supervisor of two child processes, `traject web` and `traject worker` (web/cli/supervise.py),
so that a slow sweep never holds a request and a crashed child does not take the other with it.
"""
from __future__ import annotations

import json
import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from ..jobs.passes import one_pass
from ..jobs.worker import Worker
from .common import moment
from .wsgi_server import serve_gunicorn, workers_from_env
from .supervise import Child, supervise


def _server_options(command):
    for option in reversed((
        click.option("--host", default="127.0.0.1"),
        click.option("--port", default=5000, type=int),
        click.option("--workers", type=int, default=None,
                     help="gunicorn worker processes (default: WEB_CONCURRENCY, else 2 per core)"),
        click.option("--dev", is_flag=True, help="Werkzeug's development server in one process instead of gunicorn"),
    )):
        command = option(command)
    return command


@click.command("web")
@_server_options
@with_appcontext
def web_command(host, port, workers, dev):
    """Serve the web UI and the API (gunicorn; --dev: Werkzeug's development server)."""
    app = current_app._get_current_object()
    click.echo(f"Traject on http://{host}:{port}/  (API: http://{host}:{port}/api/v1/docs)", err=True)
    if dev:
        from werkzeug.serving import run_simple

        run_simple(host, port, app, threaded=True, use_reloader=False)
        return
    serve_gunicorn(app, host, port, workers if workers is not None else workers_from_env())


@click.command("run")
@_server_options
@click.option("--interval", type=float, default=None, help="seconds between the worker's passes")
def run_command(host, port, workers, dev, interval):
    """Web and worker together for one machine: two supervised processes, restarted when one dies."""
    # The configuration is checked before anything starts; the app itself is built by the children only
    # (building it here too would make the start a third slower and hold connections the children don't share).
    from ..config import ConfigError, from_env

    try:
        from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    traject = [sys.executable, "-m", "web.cli"]
    web = [*traject, "web", "--host", host, "--port", str(port)]
    if workers is not None:
        web += ["--workers", str(workers)]
    if dev:
        web.append("--dev")
    worker = [*traject, "worker"] + (["--interval", str(interval)] if interval else [])
    sys.exit(supervise([Child("web", web), Child("worker", worker)]))


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
