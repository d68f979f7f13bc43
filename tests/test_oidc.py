"""Single sign-on against a real OpenID provider (node's oidc-provider on loopback, tests/oidc_provider.py).

The code flow end to end: the app's redirect (PKCE S256, state, nonce), the provider's login form
posted as a browser would, the callback, the code exchange over HTTP, the ID token's checks. The
matrix: provider accounts by role (aios, opleider, admin) × second factor at the provider (amr/acr)
× the requirement (TRAJECT_MFA_ROLES on, and off). Refused: a wrong audience, a bad signature, an
expired token, a reused or missing state, an unknown user (unless just-in-time creation is on), an
e-mail claim the provider did not verify, a deactivated account.
"""
from __future__ import annotations

import base64
import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select

from conftest import close_app, make_app
from engine.models import Notification, RoleAssignment, SecurityEvent, User
from oidc_provider import OTHER_CLIENT_ID, at_provider
from web.config import DEFAULT_MFA_ROLES
from web.extensions import db

MFA_ROLES = tuple(DEFAULT_MFA_ROLES.split(","))


@pytest.fixture
def app(database_url, clock, tmp_path, monkeypatch, provider):
    monkeypatch.setenv("TRAJECT_ENV", "testing")
    app = make_app(database_url, clock, tmp_path / "instance", **provider.config(), TRAJECT_MFA_ROLES=MFA_ROLES)
    yield app
    close_app(app)


PEOPLE = {"sso.aios@test.nl": ("aios", "meander"), "sso.opleider@test.nl": ("opleider", "meander"),
          "sso.admin@test.nl": ("admin", None)}


@pytest.fixture
def people(world):
    with world.app.app_context():
        ids = {}
        for email, (role, code) in PEOPLE.items():
            user = User(email=email, name=email.split("@")[0], active=True, created_at=world.app.extensions[
                "traject"].clock.now())
            user.roles.append(RoleAssignment(role=role, institution_id=world.institutions[code] if code else None,
                                             region_id=world.region_id))
            db.session.add(user)
            db.session.flush()
            ids[email] = user.id
        db.session.commit()
    return ids


def csrf(client) -> str:
    page = client.get("/login", follow_redirects=True).get_data(as_text=True)  # signed in: the dashboard
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def authorize(client) -> str:
    response = client.post("/auth/oidc/login", data={"csrf_token": csrf(client)})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return response.headers["Location"]


def callback(client, url: str):
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


def sso_login(client, account: str, *, mfa: bool = False, authorize_url: str | None = None):
    url = at_provider(requests.Session(), authorize_url or authorize(client), account, mfa)
    return callback(client, url)


def last_event(app, kind="login") -> SecurityEvent:
    with app.app_context():
        return db.session.scalars(select(SecurityEvent).where(SecurityEvent.kind == kind)
                                  .order_by(SecurityEvent.id.desc())).first()


def user_by_email(app, email) -> User:
    with app.app_context():
        return db.session.scalar(select(User).where(User.email == email))


# -- the login page and the request ---------------------------------------------------------------------


def test_the_login_page_offers_the_provider_by_name(client):
    page = client.get("/login").get_data(as_text=True)
    assert "Inloggen met Testziekenhuis" in page
    assert 'action="/auth/oidc/login"' in page


def test_the_authorisation_request_carries_pkce_state_and_nonce(client, provider):
    url = authorize(client)
    assert url.startswith(provider.issuer + "/auth?")
    query = parse_qs(urlsplit(url).query)
    assert query["response_type"] == ["code"] and query["client_id"] == ["traject"]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert len(query["state"][0]) >= 20 and len(query["nonce"][0]) >= 20
    assert query["redirect_uri"] == ["http://localhost/auth/oidc/callback"]
    assert set(query["scope"][0].split()) >= {"openid", "email"}
    # two logins: two states and two nonces
    again = parse_qs(urlsplit(authorize(client)).query)
    assert again["state"] != query["state"] and again["nonce"] != query["nonce"]


# -- the matrix: role × second factor at the provider × requirement ----------------------------------------

MATRIX = [
    # provider account, its role, second factor at the provider, logged in with the requirement on
    ("sub-aios", "aios", False, True),
    ("sub-aios", "aios", True, True),
    ("sub-opleider", "opleider", False, False),
    ("sub-opleider", "opleider", True, True),
    ("sub-admin", "admin", False, False),
    ("sub-admin", "admin", True, True),
]


@pytest.mark.parametrize("account,role,second_factor,admitted", MATRIX)
def test_a_login_through_the_provider_needs_the_second_factor_the_role_requires(
        world, people, account, role, second_factor, admitted):
    response = sso_login(world.client, account, mfa=second_factor)
    event = last_event(world.app)
    email = f"sso.{role}@test.nl"
    if admitted:
        assert response.status_code == 303, response.get_data(as_text=True)[:400]
        assert world.client.get("/").status_code == 200
        user = user_by_email(world.app, email)
        assert (user.oidc_subject, user.oidc_issuer) == (account, world.app.config["OIDC_ISSUER"])
        assert (event.kind, event.outcome, event.method, event.user_id) == ("login", "ok", "sso", user.id)
    else:
        assert response.status_code == 403
        assert "Tweestapsverificatie vereist" in response.get_data(as_text=True)
        assert world.client.get("/").status_code == 302  # not logged in
        assert event.outcome == "failed" and "no second factor" in event.detail and "amr=['pwd']" in event.detail


@pytest.mark.parametrize("account", ["sub-opleider", "sub-admin"])
def test_without_the_requirement_a_single_factor_at_the_provider_suffices(world, people, account):
    world.app.config["TRAJECT_MFA_ROLES"] = ()
    assert sso_login(world.client, account, mfa=False).status_code == 303
    assert world.client.get("/").status_code == 200


def test_the_acr_claim_alone_can_carry_the_second_factor(world, people):
    world.app.config["OIDC_MFA_AMR"] = ()  # only acr counts now: the provider says refeds mfa
    assert sso_login(world.client, "sub-opleider", mfa=True).status_code == 303


# -- who the provider's user is --------------------------------------------------------------------------


def test_the_account_is_matched_by_its_subject_never_by_the_address_afterwards(world, people):
    assert sso_login(world.client, "sub-opleider", mfa=True).status_code == 303
    with world.app.app_context():  # the address changes here: the subject still decides
        db.session.get(User, people["sso.opleider@test.nl"]).email = "renamed@test.nl"
        db.session.commit()
    world.client.post("/logout", data={"csrf_token": csrf(world.client)})
    assert sso_login(world.client, "sub-opleider", mfa=True).status_code == 303
    assert world.client.get("/").status_code == 200


def test_another_subject_with_the_same_address_cannot_take_a_linked_account(world, people):
    assert sso_login(world.client, "sub-opleider", mfa=True).status_code == 303
    world.client.post("/logout", data={"csrf_token": csrf(world.client)})
    # sub-unverified says e-mail sso.opleider@test.nl, unverified: refused, and so would a verified one be
    response = sso_login(world.client, "sub-unverified", mfa=True)
    assert response.status_code == 403
    assert user_by_email(world.app, "sso.opleider@test.nl").oidc_subject == "sub-opleider"


def test_an_unverified_address_does_not_link_an_account(world, people):
    response = sso_login(world.client, "sub-unverified", mfa=True)
    assert response.status_code == 403
    assert user_by_email(world.app, "sso.opleider@test.nl").oidc_subject is None


def test_an_unknown_user_is_refused_with_a_page_that_says_what_to_do(world, people):
    response = sso_login(world.client, "sub-newcomer")
    assert response.status_code == 403
    assert "Uw organisatie kent u, maar Traject nog niet" in response.get_data(as_text=True)
    assert user_by_email(world.app, "newcomer@test.nl") is None
    event = last_event(world.app)
    assert event.outcome == "failed" and "unknown subject sub-newcomer" in event.detail


def test_just_in_time_creation_makes_an_account_without_roles_for_an_admin_to_approve(world, people):
    world.app.config["OIDC_JIT"] = True
    response = sso_login(world.client, "sub-newcomer")
    assert response.status_code == 403 and "Wacht op goedkeuring" in response.get_data(as_text=True)
    newcomer = user_by_email(world.app, "newcomer@test.nl")
    assert newcomer.oidc_subject == "sub-newcomer" and newcomer.roles == [] and newcomer.name == "New Comer"
    with world.app.app_context():
        account = db.session.get(User, newcomer.id)
        account.roles.append(RoleAssignment(role="aios", institution_id=world.institutions["meander"],
                                            region_id=world.region_id))
        db.session.commit()
    assert sso_login(world.client, "sub-newcomer").status_code == 303


def test_the_employee_number_can_be_the_claim_that_finds_the_account(world, people):
    world.app.config.update(OIDC_CLAIM="employee_number", OIDC_USER_FIELD="employee_number")
    with world.app.app_context():
        db.session.get(User, world.users["aios"]).employee_number = "E1005"  # sub-invited's number
        db.session.commit()
    assert sso_login(world.client, "sub-invited").status_code == 303
    assert db_user(world, "aios").oidc_subject == "sub-invited"


def db_user(world, name) -> User:
    with world.app.app_context():
        return db.session.get(User, world.users[name])


def test_a_deactivated_account_is_refused(world, people):
    with world.app.app_context():
        db.session.get(User, people["sso.aios@test.nl"]).active = False
        db.session.commit()
    assert sso_login(world.client, "sub-aios").status_code == 403


def test_an_invitation_link_ties_the_account_to_its_sso_subject(world, people):
    admin = world.client
    assert sso_login(admin, "sub-admin", mfa=True).status_code == 303
    token = re.search(r'name="csrf_token" value="([^"]+)"', admin.get("/admin/users").get_data(as_text=True)).group(1)
    response = admin.post("/admin/users/invite", data={"csrf_token": token, "name": "Invited Person",
                                                       "email": "invited@test.nl", "role": "aios",
                                                       "institution": str(world.institutions["meander"])})
    assert response.status_code == 303
    with world.app.app_context():
        body = db.session.scalar(select(Notification.body_text).where(Notification.kind == "invitation"))
    link = re.search(r"http://\S+/invite/(\S+)", body).group(1)
    invitee = world.app.test_client()
    page = invitee.get(f"/invite/{link}").get_data(as_text=True)
    assert "Inloggen met Testziekenhuis" in page
    start_sso = invitee.post(f"/invite/{link}/sso", data={"csrf_token": re.search(
        r'name="csrf_token" value="([^"]+)"', page).group(1)})
    assert start_sso.status_code == 302
    # the provider knows this person under another address: the invitation, not the address, links them
    assert sso_login(invitee, "sub-invited", authorize_url=start_sso.headers["Location"]).status_code == 303
    assert user_by_email(world.app, "invited@test.nl").oidc_subject == "sub-invited"
    assert invitee.get(f"/invite/{link}").status_code == 404  # used once


# -- tokens that are refused -------------------------------------------------------------------------------


def _discovery(provider) -> dict:
    return requests.get(provider.issuer + "/.well-known/openid-configuration", timeout=5).json()


def test_an_id_token_for_another_client_is_refused(world, people, provider, monkeypatch):
    """Token substitution: a real token, signed by the provider, with our nonce, but for another client."""
    import web.oidc

    ours = authorize(world.client)
    theirs = ours.replace("client_id=traject&", f"client_id={OTHER_CLIENT_ID}&")
    assert theirs != ours
    token_endpoint = _discovery(provider)["token_endpoint"]

    def exchange_as_the_other_client(client, code, redirect_uri, code_verifier):
        response = requests.post(token_endpoint, data={"grant_type": "authorization_code", "code": code,
                                                       "redirect_uri": redirect_uri, "code_verifier": code_verifier},
                                 auth=(OTHER_CLIENT_ID, provider.secret(OTHER_CLIENT_ID)), timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    monkeypatch.setattr(web.oidc, "exchange", exchange_as_the_other_client)
    response = sso_login(world.client, "sub-aios", authorize_url=theirs)
    assert response.status_code == 400
    assert "could not be verified" in response.get_data(as_text=True) or "kon niet worden gecontroleerd" in \
        response.get_data(as_text=True)
    event = last_event(world.app)
    assert event.outcome == "failed" and "aud" in event.detail, event.detail
    assert world.client.get("/").status_code == 302


def _tampered(id_token: str) -> str:
    header, payload, signature = id_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "sub-admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


def test_an_id_token_with_a_bad_signature_is_refused(world, people, monkeypatch):
    import web.oidc

    real = web.oidc.exchange

    def tampering(*args):
        token = real(*args)
        return {**token, "id_token": _tampered(token["id_token"])}

    monkeypatch.setattr(web.oidc, "exchange", tampering)
    assert sso_login(world.client, "sub-aios").status_code == 400
    event = last_event(world.app)
    assert "BadSignatureError" in event.detail, event.detail


def test_an_expired_id_token_is_refused(world, people, monkeypatch):
    import web.oidc

    monkeypatch.setattr(web.oidc, "wall_clock", lambda: time.time() + 2 * 3600)  # the provider's tokens: 1 hour
    assert sso_login(world.client, "sub-aios").status_code == 400
    assert "ExpiredTokenError" in last_event(world.app).detail


def test_a_callback_is_accepted_once_and_only_with_its_state(world, people):
    url = at_provider(requests.Session(), authorize(world.client), "sub-aios", False)
    assert callback(world.client, url).status_code == 303
    world.client.post("/logout", data={"csrf_token": csrf(world.client)})
    assert callback(world.client, url).status_code == 400  # replayed: its state is gone
    assert "state" in last_event(world.app).detail
    forged = re.sub(r"state=[^&]+", "state=forged", url)
    assert callback(world.client, forged).status_code == 400


def test_an_error_from_the_provider_logs_nobody_in(world, people):
    response = world.client.get("/auth/oidc/callback?error=access_denied&state=x")
    assert response.status_code == 400
    assert "access_denied" in last_event(world.app).detail


# -- logout -------------------------------------------------------------------------------------------------


def test_logout_ends_the_session_here_and_at_the_provider(world, people, provider):
    assert sso_login(world.client, "sub-aios").status_code == 303
    response = world.client.post("/logout", data={"csrf_token": csrf(world.client)})
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith(_discovery(provider)["end_session_endpoint"])
    query = parse_qs(urlsplit(location).query)
    assert query["post_logout_redirect_uri"] == ["http://localhost/login"] and query["id_token_hint"]
    assert requests.get(location, timeout=5).status_code == 200  # the provider's own "log out?" page
    assert world.client.get("/").status_code == 302
    assert last_event(world.app, "logout").method == "sso"


def test_a_password_logout_stays_local(world, people):
    from flows import signed_in

    signed_in(world.app, world.client, world.users["aios"])
    response = world.client.post("/logout", data={"csrf_token": csrf(world.client)})
    assert response.headers["Location"].endswith("/login")


def test_a_provider_that_does_not_answer_gives_a_page_not_an_error(world, people, monkeypatch):
    import requests as http

    def down(*args, **kwargs):
        raise http.ConnectionError("refused")

    client = world.app.extensions["traject.oidc"].create_client("sso")
    client.server_metadata = {}  # nothing cached: the discovery document is asked for again
    monkeypatch.setattr(http.Session, "request", down)
    response = world.client.post("/auth/oidc/login", data={"csrf_token": csrf(world.client)})
    assert response.status_code == 503
    assert "provider unreachable" in last_event(world.app).detail
