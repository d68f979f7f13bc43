"""The app factory: create_app(config) with register_* steps."""
from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, jsonify
from flask_smorest import Api
from sqlalchemy import inspect, text
from sqlalchemy.exc import SQLAlchemyError

from engine.clock import SystemClock
from engine.commands import Engine, EngineConfig
from engine.definitions import sync
from workflows import load_definitions, load_region, make_registry
from workflows.roles import SUPERUSER_ROLES

from . import config as config_module
from . import errors
from .extensions import db, limiter, login_manager, migrate
from .schemas import ErrorSchema

log = logging.getLogger(__name__)
MIGRATIONS = str(Path(__file__).resolve().parent.parent / "migrations")


class TrajectApi(Api):
    """flask-smorest, but every error in the contract's shape (answered and documented: web/openapi.py)."""

    ERROR_SCHEMA = ErrorSchema  # documents the errors as they are answered

    def handle_http_exception(self, error):
        return errors.from_http_exception(error)


def create_app(overrides: dict | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=False)
    settings = config_module.from_env()
    settings.update(overrides or {})
    app.config.update(settings)
    app.config.update(
        API_TITLE="Traject API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=app.config.get("MAX_CONTENT_LENGTH") or 512 * 1024,
        JSON_SORT_KEYS=False,
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True},
    )
    app.instance_path = app.config["TRAJECT_INSTANCE"]
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    register_extensions(app)
    register_engine(app)
    register_api(app)
    errors.register(app)
    from .security import register as register_security

    register_security(app)
    from .bodies import check_json_body

    app.before_request(check_json_body)
    register_views(app)
    register_docs(app)
    register_health(app)
    return app


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS, render_as_batch=True)
    login_manager.init_app(app)
    from .auth import load_session_user

    login_manager.user_loader(load_session_user)
    limiter.init_app(app)


def register_engine(app: Flask) -> None:
    registry = make_registry()
    region = load_region(app.config.get("TRAJECT_REGION_CONFIG"))
    app.config["TRAJECT_REGION"] = region
    definitions = load_definitions(registry, region=region)  # an invalid definition stops the start, loudly
    from engine.privacy import load_policies

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
    added = sync(db.session, app.extensions["traject.definitions"], app.extensions["traject"].clock.now())
    db.session.commit()
    app.extensions["traject"].forget_definitions()
    for row in added:
        log.info("stored workflow %s version %s (%s)", row.key, row.version, row.sha256[:12])
    return added


def register_api(app: Flask) -> None:
    from .api import api
    from . import api_privacy  # noqa: F401  (access log, legal holds: routes on the same blueprint)

    from .openapi import ErrorResponses

    smorest = TrajectApi(app, spec_kwargs={"info": {"description": "Traject: workflows, deadlines and "
                                                                   "escalation for specialist training."},
                                           "extra_plugins": [ErrorResponses()]})
    smorest.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    smorest.spec.options["security"] = [{"bearerAuth": []}]
    smorest.register_blueprint(api)


def register_views(app: Flask) -> None:
    from .views import register_views as register_html

    register_html(app)


def register_docs(app: Flask) -> None:
    from flask import render_template

    @app.get("/api/v1/docs")
    def api_docs():
        """The OpenAPI document rendered by a vendored Swagger UI (no CDN)."""
        return render_template("api_docs.html")


def register_health(app: Flask) -> None:
    @app.get("/healthz")
    def healthz():
        try:
            db.session.execute(text("SELECT 1"))
        except SQLAlchemyError:
            db.session.rollback()
            return errors.error_response(503, "unavailable", "the database does not answer")
        # The newest worker heartbeat, once a worker has run: {name, seen_at, age_seconds, ...}.
        # Informational: a stale worker is no reason for a 503 (the web still serves).
        from .worker import heartbeat_status

        try:
            worker = heartbeat_status(db.session, app.extensions["traject"].clock.now())
        except SQLAlchemyError:
            db.session.rollback()
            worker = None
        return jsonify({"status": "ok", **({"worker": worker} if worker else {})})
