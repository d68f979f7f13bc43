"""The app factory: create_app(config) with register_* steps."""
from __future__ import annotations

from pathlib import Path

from flask import Flask, render_template

from . import api, errors, health, oidc, runtime, security, views
from . import config as config_module
from .auth import load_session_user
from .bodies import check_json_body
from .extensions import csrf, db, limiter, login_manager, migrate
from .files import private_dir

MIGRATIONS = str(Path(__file__).resolve().parent.parent / "migrations")


def create_app(overrides: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=False)
    settings = config_module.from_env()
    settings.update(overrides or {})
    app.config.update(settings)
    app.config.update(
        MAX_CONTENT_LENGTH=app.config.get("MAX_CONTENT_LENGTH") or 512 * 1024,
        JSON_SORT_KEYS=False,
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
    )
    app.instance_path = app.config["TRAJECT_INSTANCE"]
    private_dir(app.instance_path)
    if not app.config.get("RATELIMIT_STORAGE_URI"):
        app.config["RATELIMIT_STORAGE_URI"] = "traject-sqlite://" + str(Path(app.instance_path) / "ratelimits.db")
    register_extensions(app)
    oidc.register(app)
    runtime.set_up(app)
    api.register(app)
    errors.register(app)
    security.register(app)
    app.before_request(check_json_body)
    views.register_views(app)
    csrf.exempt(api.api)  # bearer tokens, not cookies: nothing for a forged form to ride on
    register_docs(app)
    health.register(app)
    return app


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS, render_as_batch=True)
    login_manager.init_app(app)
    login_manager.user_loader(load_session_user)
    limiter.init_app(app)


def register_docs(app: Flask) -> None:
    @app.get("/api/v1/docs")
    def api_docs():
        """The OpenAPI document rendered by a vendored Swagger UI (no CDN)."""
        return render_template("api_docs.html")
