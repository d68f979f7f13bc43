"""gunicorn as `traject web`'s server: pre-forked sync workers, timeouts, an access log.

The app is created once, in the master, before the fork (configuration errors stop the start
before any worker exists, and the workers share its memory); its database pool is emptied
before forking and again in every worker, so that no two processes ever share a connection.
"""
from __future__ import annotations

import contextvars
import logging
import os

import click
from flask import Flask
from gunicorn.app.base import BaseApplication

from ..extensions import db

log = logging.getLogger("web.serve")


def workers_from_env(env=os.environ) -> int:
    """WEB_CONCURRENCY (the convention gunicorn and hosting platforms share), else 2 per core."""
    text = env.get("WEB_CONCURRENCY", "").strip()
    if not text:
        return max(2, 2 * (os.cpu_count() or 1))
    try:
        workers = int(text)
    except ValueError:
        raise click.ClickException(f"WEB_CONCURRENCY must be a whole number, not {text!r}") from None
    if workers < 1:
        raise click.ClickException("WEB_CONCURRENCY must be at least 1")
    return workers


def gunicorn_settings(app: Flask, host: str, port: int, workers: int) -> dict:
    timeout = int(app.config.get("TRAJECT_WEB_TIMEOUT") or 30)
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "sync",
        # A request that takes longer than this is a bug or a stuck database: the worker is replaced.
        "timeout": timeout,
        "graceful_timeout": timeout,  # SIGTERM: requests in flight finish, within this many seconds
        "keepalive": 5,
        "backlog": 512,
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": "info",
        # X-Forwarded-* is trusted only as TRAJECT_PROXY says (web/security.py), not by gunicorn too.
        "forwarded_allow_ips": "",
        "proc_name": "traject-web",
    }


class _Server(BaseApplication):
    def __init__(self, app: Flask, settings: dict):
        self.app, self.settings = app, settings
        super().__init__()

    def load_config(self):
        for key, value in self.settings.items():
            self.cfg.set(key, value)
        if "control_socket_disable" in self.cfg.settings:  # newer gunicorn: one socket path per user, shared by every server
            self.cfg.set("control_socket_disable", True)
        self.cfg.set("post_fork", _fresh_pool)

    def load(self):
        return self.app


def _fresh_pool(_server, worker) -> None:
    # dispose(close=False): drop the inherited pool without closing the master's sockets.
    with worker.app.app.app_context():
        db.engine.dispose(close=False)


def serve_gunicorn(app: Flask, host: str, port: int, workers: int) -> None:
    if workers > 1 and str(app.config.get("RATELIMIT_STORAGE_URI", "")).startswith("memory://"):
        log.warning("RATELIMIT_STORAGE_URI is in memory: each of the %d workers counts failed logins apart; "
                    "set a shared storage (e.g. redis://) or WEB_CONCURRENCY=1", workers)
    with app.app_context():
        db.engine.dispose()
    server = _Server(app, gunicorn_settings(app, host, port, workers))
    # Outside the command's app context (Flask's CLI pushes one): a request finding an app context of its
    # app already pushed reuses it instead of pushing its own, and with it `g` (the logged-in user, the
    # CSRF token) and the database session, so one visitor's login served the next (seen 2026-12-02).
    contextvars.Context().run(server.run)
