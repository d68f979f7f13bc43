"""Single sign-on with OpenID Connect (Authlib): the authorisation code flow with PKCE, state and nonce.

`begin()` sends the browser to the provider (Authlib keeps state, nonce and the PKCE verifier in the
signed session); `complete()` takes the provider's answer, exchanges the code and validates the ID
token itself, so that every check is explicit here and none depends on a library default: the
signature against the provider's published keys, the issuer, the audience (our client id: Authlib
alone checks it only through `azp`), expiry and issue time against the wall clock (`wall_clock`:
the app's clock may be fixed or shifted, the provider's is not), the nonce, and the hashes of the
code and access token. Any failure is an `SsoRefused` with a short reason for the security log.
"""
from __future__ import annotations

import time

from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.flask_client import OAuth
from authlib.oidc.core import CodeIDToken
from flask import current_app, request, session, url_for
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

NAME = "sso"
LEEWAY = 60  # seconds of clock difference tolerated between the provider and us
wall_clock = time.time  # a seam for the tests (an expired token)


class SsoRefused(Exception):
    """The provider's answer does not log anyone in; `reason` goes to the security log."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def register(app) -> None:
    if not app.config.get("OIDC_ISSUER"):
        return
    oauth = OAuth(app)
    oauth.register(NAME, client_id=app.config["OIDC_CLIENT_ID"], client_secret=app.config["OIDC_CLIENT_SECRET"],
                   server_metadata_url=app.config["OIDC_ISSUER"] + "/.well-known/openid-configuration",
                   client_kwargs={"scope": app.config["OIDC_SCOPE"], "code_challenge_method": "S256"})
    app.extensions["traject.oidc"] = oauth


def enabled() -> bool:
    return "traject.oidc" in current_app.extensions


def display_name() -> str:
    from urllib.parse import urlsplit

    return current_app.config.get("OIDC_NAME") or urlsplit(current_app.config["OIDC_ISSUER"]).hostname or "SSO"


def _client():
    return current_app.extensions["traject.oidc"].create_client(NAME)


def _redirect_uri() -> str:
    return current_app.config.get("OIDC_REDIRECT_URI") or url_for("ui.oidc_callback", _external=True)


def begin():
    """The redirect to the provider's login page."""
    extra = {}
    if current_app.config.get("OIDC_ACR_VALUES"):
        extra["acr_values"] = current_app.config["OIDC_ACR_VALUES"]
    return _client().authorize_redirect(_redirect_uri(), **extra)


def complete() -> tuple[dict, dict]:
    """The validated ID token's claims (with userinfo's added when the login claim is not in it) and
    the token response. Raises SsoRefused."""
    client = _client()
    if request.args.get("error"):
        raise SsoRefused(f"provider: {request.args['error']}")
    state = request.args.get("state")
    data = client.framework.get_state_data(session, state) if state else None
    if state:
        client.framework.clear_state_data(session, state)
    if not data or not request.args.get("code"):
        raise SsoRefused("state: unknown or reused")
    try:
        token = exchange(client, request.args["code"], data.get("redirect_uri"), data.get("code_verifier"))
    except (OAuthError, OSError, ValueError) as exc:
        raise SsoRefused(f"token exchange: {exc}") from exc
    claims = validate_id_token(client, token, data.get("nonce"))
    claim = current_app.config["OIDC_CLAIM"]
    if claim not in claims and client.load_server_metadata().get("userinfo_endpoint"):
        info = client.userinfo(token=token)
        if info.get("sub") != claims["sub"]:
            raise SsoRefused("userinfo: another subject")
        claims = {**info, **claims}
    return claims, token


def exchange(client, code: str, redirect_uri: str | None, code_verifier: str | None) -> dict:
    """The code for tokens at the provider's token endpoint (with the PKCE verifier)."""
    return client.fetch_access_token(code=code, redirect_uri=redirect_uri, code_verifier=code_verifier)


def validate_id_token(client, token: dict, nonce: str | None) -> dict:
    if "id_token" not in token or not nonce:
        raise SsoRefused("id_token: missing")
    metadata = client.load_server_metadata()
    registry = JWSRegistry(algorithms=metadata.get("id_token_signing_alg_values_supported") or ["RS256"])
    try:
        try:
            decoded = jwt.decode(token["id_token"], KeySet.import_key_set(client.fetch_jwk_set()), registry=registry)
        except InvalidKeyIdError:  # the provider rolled its keys
            decoded = jwt.decode(token["id_token"], KeySet.import_key_set(client.fetch_jwk_set(force=True)),
                                 registry=registry)
        options = {"iss": {"essential": True, "values": [current_app.config["OIDC_ISSUER"], metadata["issuer"]]},
                   "aud": {"essential": True, "values": [client.client_id]},
                   "exp": {"essential": True}}
        params = {"nonce": nonce, "client_id": client.client_id, "access_token": token.get("access_token")}
        claims = CodeIDToken(decoded.claims, decoded.header, options, params)
        claims.validate(now=int(wall_clock()), leeway=LEEWAY)
    except (JoseError, ValueError) as exc:
        raise SsoRefused(f"id_token: {type(exc).__name__} {exc}") from exc
    return dict(claims)


def has_mfa(claims: dict) -> bool:
    """Did the provider say it used a second factor (amr, RFC 8176; or acr)?"""
    amr = claims.get("amr") or []
    amr = [amr] if isinstance(amr, str) else amr
    wanted_amr = set(current_app.config["OIDC_MFA_AMR"])
    return bool(wanted_amr & set(amr)) or claims.get("acr") in set(current_app.config["OIDC_MFA_ACR"])


def logout_url(id_token: str | None, after: str) -> str | None:
    """The provider's end-session address, when it advertises one (RP-initiated logout)."""
    if not enabled():
        return None
    client = _client()
    try:
        if not client.load_server_metadata().get("end_session_endpoint"):
            return None
        return client.create_logout_url(post_logout_redirect_uri=after, id_token_hint=id_token,
                                        client_id=client.client_id)["url"]
    except (OAuthError, OSError, ValueError):
        return None  # the provider does not answer: the local logout stands on its own
