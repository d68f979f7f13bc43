"""Two-step verification (TOTP) for local accounts: enrolment, the login form's second step, the API's
`otp`, recovery codes, the roles that require it, the demo's exemption (CONTRACT.md section 10)."""
from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from sqlalchemy import select

from engine.models import RecoveryCode, SecurityEvent, User
from web.config import DEFAULT_MFA_ROLES
from web.extensions import db

API = "/api/v1"
PASSWORD = "Meander-opleiding-zonder-zorgen"


@pytest.fixture
def mfa_app(world):
    world.app.config["TRAJECT_MFA_ROLES"] = tuple(DEFAULT_MFA_ROLES.split(","))
    from web.auth import hash_password

    with world.app.app_context():
        for name in ("opleider", "aios", "admin"):
            db.session.get(User, world.users[name]).password_hash = hash_password(PASSWORD)
        db.session.commit()
    return world


def csrf(client, path="/login") -> str:
    page = client.get(path, follow_redirects=True).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def enable(runner, email) -> str:
    result = runner.invoke(["user", "mfa", "enable", "--email", email])
    assert result.exit_code == 0, result.output
    uri = result.stdout.strip().splitlines()[-1]
    assert uri.startswith("otpauth://totp/") and "secret=" in uri
    return parse_qs(urlsplit(uri).query)["secret"][0]


def code(secret, offset=0) -> str:
    return pyotp.TOTP(secret).at(time.time() + offset)


def token(client, email, **extra):
    return client.post(API + "/auth/tokens", json={"email": email, "password": PASSWORD, **extra})


# -- the command line and the API -------------------------------------------------------------------------


def test_the_cli_enrols_and_the_api_then_needs_the_code(mfa_app, runner):
    client = mfa_app.client
    assert token(client, "aios@test.nl").status_code == 201  # not enrolled, role does not require it
    secret = enable(runner, "aios@test.nl")
    for body in ({}, {"otp": "000000" if code(secret) != "000000" else "111111"}, {"otp": ""}):
        refused = token(client, "aios@test.nl", **body)
        assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "unauthenticated", body
    issued = token(client, "aios@test.nl", otp=code(secret))
    assert issued.status_code == 201
    assert client.get(API + "/me", headers={"Authorization": f"Bearer {issued.get_json()['token']}"}).status_code == 200


def test_a_code_is_accepted_once(mfa_app, runner):
    secret = enable(runner, "aios@test.nl")
    now_code = code(secret)
    assert token(mfa_app.client, "aios@test.nl", otp=now_code).status_code == 201
    assert token(mfa_app.client, "aios@test.nl", otp=now_code).status_code == 401  # replayed
    assert token(mfa_app.client, "aios@test.nl", otp=code(secret, 30)).status_code == 201  # the next one


def test_a_recovery_code_works_once_and_is_stored_only_as_a_hash(mfa_app, runner):
    result = runner.invoke(["user", "mfa", "enable", "--email", "aios@test.nl"])
    codes = result.stderr.split(":", 1)[1].split()
    assert len(codes) == 10
    with mfa_app.app.app_context():
        stored = list(db.session.scalars(select(RecoveryCode.code_hash)))
    assert len(stored) == 10 and not set(codes) & set(stored)
    assert token(mfa_app.client, "aios@test.nl", otp=codes[0]).status_code == 201
    assert token(mfa_app.client, "aios@test.nl", otp=codes[0]).status_code == 401


def test_a_role_that_requires_it_gets_no_token_before_enrolment(mfa_app, runner):
    refused = token(mfa_app.client, "opleider@test.nl")
    assert refused.status_code == 401 and "two-step" in refused.get_json()["error"]["message"]
    secret = enable(runner, "opleider@test.nl")
    assert token(mfa_app.client, "opleider@test.nl", otp=code(secret)).status_code == 201


def test_wrong_codes_spend_the_login_budget(mfa_app, runner):
    secret = enable(runner, "aios@test.nl")
    wrong = "000000" if code(secret) != "000000" else "111111"
    statuses = [token(mfa_app.client, "aios@test.nl", otp=wrong).status_code for _ in range(10)]
    assert statuses == [401] * 10
    assert token(mfa_app.client, "aios@test.nl", otp=code(secret)).status_code == 429


# -- the pages ---------------------------------------------------------------------------------------------


def login(client, email):
    return client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf(client)})


def test_the_login_form_asks_for_the_code_once_enrolled(mfa_app, runner):
    secret = enable(runner, "aios@test.nl")
    client = mfa_app.client
    first = login(client, "aios@test.nl")
    assert first.status_code == 200 and 'name="otp"' in first.get_data(as_text=True)
    assert client.get("/").status_code == 302  # the password alone logs nobody in
    token_ = csrf(client)
    wrong = client.post("/login/mfa", data={"otp": "12345x", "csrf_token": token_})
    assert wrong.status_code == 422
    right = client.post("/login/mfa", data={"otp": code(secret), "csrf_token": token_})
    assert right.status_code == 303 and client.get("/").status_code == 200
    with mfa_app.app.app_context():
        methods = list(db.session.scalars(select(SecurityEvent.method).where(SecurityEvent.kind == "login")
                                          .order_by(SecurityEvent.id)))
    assert methods == ["password+otp", "password+totp"]  # the wrong code, then the login


def test_the_second_step_expires(mfa_app, runner, clock):
    secret = enable(runner, "aios@test.nl")
    client = mfa_app.client
    login(client, "aios@test.nl")
    clock.advance(minutes=6)
    response = client.post("/login/mfa", data={"otp": code(secret), "csrf_token": csrf(client)})
    assert response.status_code == 303 and response.headers["Location"].endswith("/login")
    assert client.get("/").status_code == 302


def test_a_role_that_requires_it_enrols_with_a_qr_code_before_anything_else(mfa_app):
    client = mfa_app.client
    assert login(client, "opleider@test.nl").status_code == 303
    assert client.get("/").headers["Location"].endswith("/account/mfa")
    assert client.get("/cases").headers["Location"].endswith("/account/mfa")
    page = client.get("/account/mfa").get_data(as_text=True)
    assert "<svg" in page and 'class="segno"' in page
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    bad = client.post("/account/mfa", data={"otp": "000000" if code(secret) != "000000" else "1",
                                             "csrf_token": csrf(client, "/account/mfa")})
    assert bad.status_code == 422
    done = client.post("/account/mfa", data={"otp": code(secret), "csrf_token": csrf(client, "/account/mfa")})
    assert done.status_code == 200
    codes = re.findall(r"<code>([0-9a-f]{6}-[0-9a-f]{6})</code>", done.get_data(as_text=True))
    assert len(codes) == 10
    assert client.get("/").status_code == 200
    # the enrolment's own code cannot log in again; the next one can
    assert token(client, "opleider@test.nl", otp=code(secret)).status_code == 401
    assert token(client, "opleider@test.nl", otp=code(secret, 30)).status_code == 201


def test_a_session_without_its_second_factor_cannot_read_once_the_role_requires_it(mfa_app, runner):
    from flows import signed_in

    enable(runner, "opleider@test.nl")
    signed_in(mfa_app.app, mfa_app.client, mfa_app.users["opleider"])  # a session from before enrolment
    response = mfa_app.client.get("/cases")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")


def test_the_demo_keeps_its_one_click_login(world):
    from web import demo

    world.app.config["TRAJECT_MFA_ROLES"] = tuple(DEFAULT_MFA_ROLES.split(","))
    with world.app.app_context():
        demo.load(world.app, echo=lambda *a: None)
        address = demo.email("opleider", demo.INSTITUTIONS[0][0], None)
    client = world.client
    response = client.post("/login/demo", data={"email": address, "csrf_token": csrf(client)})
    assert response.status_code == 303
    assert client.get("/").status_code == 200  # exempt: no enrolment asked
