"""Single sign-on and two-step verification in a real chromium: the provider's login page, back to the
dashboard, logout at the provider; a local account's enrolment with the QR page and its first code."""
from __future__ import annotations

import os
import re
import threading
import time

import pyotp
import pytest
import requests
from playwright.sync_api import expect

from .conftest import START, _empty

PASSWORD = "een zin die ik onthoud"


@pytest.fixture(scope="module")
def sso_live(database_url, tmp_path_factory, provider):
    from werkzeug.serving import make_server

    from engine.clock import FixedClock
    from engine.models import Institution, Region, RoleAssignment, User
    from web.app import create_app
    from web.auth import hash_password
    from web.config import DEFAULT_MFA_ROLES
    from web.extensions import db, limiter

    os.environ["TRAJECT_ENV"] = "testing"
    server = make_server("127.0.0.1", 0, lambda environ, start_response: [], threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    # this server's callback, registered at the provider (OpenID Connect dynamic registration)
    registered = requests.post(provider.issuer + "/reg", timeout=5, json={
        "redirect_uris": [f"{base}/auth/oidc/callback"], "post_logout_redirect_uris": [f"{base}/login"],
        "grant_types": ["authorization_code"], "response_types": ["code"]}).json()
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True, "CLOCK": FixedClock(START),
                      "TRAJECT_INSTANCE": str(tmp_path_factory.mktemp("sso-instance")),
                      **provider.config(OIDC_CLIENT_ID=registered["client_id"],
                                        OIDC_CLIENT_SECRET=registered["client_secret"]),
                      "TRAJECT_MFA_ROLES": tuple(DEFAULT_MFA_ROLES.split(","))})
    limiter.reset()
    with app.app_context():
        _empty(db.engine)
        region = Region(code="r", name="Regio")
        inst = Institution(code="meander", name="Meander MC", region=region)
        db.session.add_all([region, inst])
        db.session.flush()
        for email in ("sso.opleider@test.nl", "lokaal.opleider@test.nl"):
            user = User(email=email, name=email.split("@")[0], active=True, created_at=START,
                        password_hash=hash_password(PASSWORD))
            user.roles.append(RoleAssignment(role="opleider", institution_id=inst.id, region_id=region.id))
            db.session.add(user)
        db.session.commit()
    server.app = app
    thread = threading.Thread(target=server.serve_forever, name="traject-sso-tests", daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with app.app_context():
            db.session.remove()
            _empty(db.engine)
            db.engine.dispose()


@pytest.fixture
def context(browser, sso_live):
    context = browser.new_context(base_url=sso_live, locale="nl-NL")
    context.set_default_timeout(10_000)
    yield context
    context.close()


def log_out(page):
    page.locator("details.account summary").click()
    page.locator("form[action='/logout'] button").click()


def test_a_login_through_the_provider_and_a_logout_there(context, provider):
    page = context.new_page()
    page.goto("/login")
    page.get_by_role("button", name="Inloggen met Testziekenhuis").click()
    expect(page).to_have_url(re.compile(re.escape(provider.issuer) + "/interaction/"))
    page.fill("input[name=login]", "sub-opleider")
    page.check("input[name=mfa]")
    page.get_by_role("button", name="Inloggen").click()
    expect(page).to_have_url(re.compile(r"/$"))
    log_out(page)
    expect(page).to_have_url(re.compile(re.escape(provider.issuer) + "/session/end"))
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))


def test_a_local_account_enrols_its_authenticator_and_logs_in_with_the_code(context):
    page = context.new_page()
    page.goto("/login")
    page.fill("#email", "lokaal.opleider@test.nl")
    page.fill("#password", PASSWORD)
    page.locator("form[action='/login'] button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/account/mfa$"))
    expect(page.locator(".qr svg")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().strip()
    page.fill("#otp", pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Tweestapsverificatie aanzetten").click()
    expect(page.locator(".recovery-codes li")).to_have_count(10)
    page.get_by_role("link", name="Verder").click()
    expect(page).to_have_url(re.compile(r"/$"))
    # the next login asks for the code
    log_out(page)
    page.fill("#email", "lokaal.opleider@test.nl")
    page.fill("#password", PASSWORD)
    page.locator("form[action='/login'] button[type=submit]").click()
    expect(page.locator("#otp")).to_be_visible()
    page.fill("#otp", pyotp.TOTP(secret).at(time.time() + 30))  # the enrolment's code was used once already
    page.get_by_role("button", name="Inloggen").click()
    expect(page).to_have_url(re.compile(r"/$"))
