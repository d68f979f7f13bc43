"""The JSON API's blueprint under /api/v1 and its bearer authentication (CONTRACT.md section 2)."""
from __future__ import annotations

from flask import g, request
from flask_smorest import Blueprint

from .. import auth
from ..errors import error_response
from ..runtime import engine, now

api = Blueprint("api", __name__, url_prefix="/api/v1", description="Traject API")
PUBLIC_ENDPOINTS = {"api.Tokens"}


@api.before_request
def _authenticate():
    if request.endpoint in PUBLIC_ENDPOINTS and request.method == "POST":
        return None
    token = auth.bearer_token()
    user = auth.user_for_token(token, now()) if token else None
    if user is None:
        return error_response(401, "unauthenticated", "a valid bearer token is required",
                              headers={"WWW-Authenticate": "Bearer"})
    g.user = user
    g.actor = engine().actor_for(user)
    return None

