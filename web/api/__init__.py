"""The JSON API under /api/v1: one module per resource on one blueprint (CONTRACT.md section 2).

The views are thin: the engine decides. flask-smorest validates requests with the same
marshmallow schemas that produce the OpenAPI document.
"""
from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from .. import errors
from . import cases, diagrams, documents, inbox, overview, privacy, records, tokens, workflows  # noqa: F401  (routes)
from .blueprint import api
from .openapi import ErrorResponses
from .schemas import ErrorSchema

__all__ = ["api", "register"]


class TrajectApi(Api):
    """flask-smorest, but every error in the contract's shape (answered and documented: api/openapi.py)."""

    ERROR_SCHEMA = ErrorSchema  # documents the errors as they are answered

    def handle_http_exception(self, error):
        return errors.http_error(error)


def register(app: Flask) -> None:
    app.config.update(API_TITLE="Traject API", API_VERSION="v1", OPENAPI_VERSION="3.0.3",
                      OPENAPI_URL_PREFIX="/api/v1", OPENAPI_JSON_PATH="openapi.json")
    smorest = TrajectApi(app, spec_kwargs={"info": {"description": "Traject: workflows, deadlines and "
                                                                   "escalation for specialist training."},
                                           "extra_plugins": [ErrorResponses()]})
    smorest.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    smorest.spec.options["security"] = [{"bearerAuth": []}]
    smorest.register_blueprint(api)
