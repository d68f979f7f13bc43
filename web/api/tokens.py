"""Logging in and out (bearer tokens), and who you are."""
from __future__ import annotations

from flask import g, request
from flask.views import MethodView

from engine.models import User

from .. import auth, mfa, security_log
from ..errors import error_response
from ..extensions import db
from ..runtime import now
from .blueprint import api
from .schemas import MeSchema, TokenRequest, TokenResponse


def _login_email():
    body = request.get_json(silent=True)
    return body.get("email") if isinstance(body, dict) else None


@api.route("/auth/tokens")
class Tokens(MethodView):
    @api.arguments(TokenRequest)
    @api.response(201, TokenResponse)
    @api.alt_response(401, description="wrong e-mail or password")
    @api.alt_response(429, description="too many failed attempts for this account")
    @auth.login_limit(_login_email)
    def post(self, body):
        """Log in: exchange e-mail and password for a bearer token."""
        user = auth.check_credentials(body["email"], body["password"])
        if user is None:
            return _refused(body["email"].strip().lower(), None, "password", "wrong e-mail or password")
        method = "password"
        if mfa.enrolled(user):
            second = mfa.verify(user, body.get("otp"))
            if second is None:
                return _refused(user.email, user, "password+otp", "a valid one-time code (otp) is needed")
            method += "+" + second
        elif mfa.required(user):
            return _refused(user.email, user, method, "two-step verification is required for this account: "
                                                      "set it up on the web pages first")
        token, expires = auth.issue_token(user, now())
        security_log.record("login", user=user, method=method, detail="api token")
        db.session.commit()
        return {"token": token, "expires_at": expires}

    @api.response(204)
    def delete(self):
        """Log out: revoke the token used for this request."""
        auth.revoke_current(now())
        db.session.commit()
        return None


def _refused(email: str, user: User | None, method: str, message: str):
    auth.password_failed()  # a wrong code spends the account's login budget like a wrong password
    security_log.record_failure("login", email=email, user=user, method=method, detail=f"api token: {message}")
    return error_response(401, "unauthenticated", message)


@api.route("/me")
class Me(MethodView):
    @api.response(200, MeSchema)
    def get(self):
        """Who am I, with which roles where."""
        user: User = g.user
        return {
            "id": user.id, "email": user.email, "name": user.name,
            "roles": [{"role": r.role, "institution": r.institution.code if r.institution else None}
                      for r in user.roles],
        }
