"""The JSON API's blueprint under /api/v1 and its bearer authentication (CONTRACT.md section 2)."""
from __future__ import annotations

from flask import g, request
from flask_smorest import Blueprint

from engine.models import Case

from .. import auth
from ..access_log import log_read
from ..errors import error_response
from ..extensions import db
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


def visible_case(case_id: int, action: str) -> Case:
    """The case if it is in your scope (else 404), its read written to the access log."""
    case = engine().get_case(db.session, g.actor, case_id)
    log_read(case, action)
    return case
