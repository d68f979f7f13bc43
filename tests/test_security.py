"""Access and input (issue 8): headers, cookies, passwords, tokens, sessions, secrets, odd form input.

What tests/test_errors.py already proves is not repeated here: the API's login rate limit and
its 429, token expiry and revocation through the API, request size (413) and JSON depth limits.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.models import AuthToken, User
from flows import browser, csrf_token, ok, open_internal, to_plan

API = "/api/v1"
PASSWORD = "paarse olifant op de fiets"  # passes the policy (web/passwords.py)
ROOT = Path(__file__).resolve().parent.parent


def set_password(world, *names, password=PASSWORD):
    from web.auth import hash_password
    from web.extensions import db

    with world.app.app_context():
        for name in names:
            db.session.get(User, world.users[name]).password_hash = hash_password(password)
        db.session.commit()


def csrf(client, path="/login") -> str:
    return csrf_token(client, path)


def cookie(client, name="session"):
    found = client.get_cookie(name)
    return found.value if found else None


# -- security headers on every response ------------------------------------------------------------

STRICT = ["default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
          "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'", "object-src 'none'"]


def common_headers(response):
    h = response.headers
    assert h["X-Frame-Options"] == "DENY"
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"] == "same-origin"
    assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
    assert "unsafe-inline" not in h["Content-Security-Policy"] and "unsafe-eval" not in h["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in h  # plain HTTP: no HSTS


def page_headers(response):
    common_headers(response)
    policy = [p.strip() for p in response.headers["Content-Security-Policy"].split(";")]
    assert set(STRICT) <= set(policy), policy
    assert response.headers["Cache-Control"] == "no-store"


def test_every_page_and_api_answer_carries_the_security_headers(world):
    opleider = world.api("opleider")
    case = open_internal(opleider, world.users["aios"])
    case, doc = to_plan(opleider, world.api("aios"), case)
    anonymous, signed_in = browser(world), browser(world, "opleider")
    pages = [anonymous.get("/login"), anonymous.get("/"), signed_in.get("/"), signed_in.get(f"/cases/{case['id']}"),
             signed_in.get("/cases/424242"), anonymous.get("/api/v1/docs"), signed_in.get("/admin")]
    assert [r.status_code for r in pages] == [200, 302, 200, 200, 404, 200, 404]
    for response in pages:
        if response.mimetype == "text/html":
            page_headers(response)
        else:
            common_headers(response)
    api = [opleider.get("/me"), opleider.get(f"/cases/{case['id']}"), opleider.get("/cases/424242"),
           world.client.get(API + "/me"), opleider.post("/cases", json={"workflow": 3}),
           world.client.get(API + "/openapi.json"), world.client.get("/healthz"),
           opleider.get("/overview?format=csv")]
    assert [r.status_code for r in api] == [200, 200, 404, 401, 422, 200, 200, 403]
    for response in api + [opleider.get(f"/documents/{doc['id']}/pdf"), opleider.get(f"/cases/{case['id']}/dossier.zip")]:
        assert response.status_code == 200 or response.is_json
        common_headers(response)
        assert response.headers["Cache-Control"] == "no-store", response.request.path
        if response.mimetype != "application/pdf":  # Chromium's PDF viewer needs the fetch directives open
            assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_a_diagram_may_apply_exactly_its_own_style_element(world):
    import base64

    from web.api.diagrams import DIAGRAM_STYLE

    response = world.api("opleider").get("/workflows/internal_guidance/diagram.svg")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    css = DIAGRAM_STYLE[len("<style>"):-len("</style>")]
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    assert response.headers["Content-Security-Policy"] == (
        f"default-src 'none'; style-src 'sha256-{digest}'; frame-ancestors 'none'")
    assert f"<style>{css}</style>" in response.get_data(as_text=True)
    common_headers(response)


def test_static_files_stay_cacheable(client):
    response = client.get("/static/app.css")
    assert response.status_code == 200
    assert response.headers.get("Cache-Control") != "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_templates_and_scripts_need_no_inline_code(world):
    """What the CSP forbids is absent from the sources, so nothing depends on it (tests/browser/test_csp.py
    checks the rendered pages in chromium)."""
    templates = ROOT / "web" / "templates"
    for path in templates.rglob("*.html"):
        html = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path  # only external scripts
        assert "<style" not in html and " style=" not in html, path
        assert not re.search(r"\son[a-z]+=", html) and "javascript:" not in html, path


# -- HTTPS: secure cookies and HSTS, behind a proxy only when told -------------------------------------


def test_over_https_the_session_cookie_is_secure_and_hsts_is_sent(world):
    client = world.app.test_client()
    plain = client.get("/login")
    assert "Secure" not in plain.headers["Set-Cookie"]
    secure_client = world.app.test_client()
    response = secure_client.get("/login", base_url="https://traject.example")
    assert "; Secure" in response.headers["Set-Cookie"] and "HttpOnly" in response.headers["Set-Cookie"]
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    # a form post over HTTPS carries a same-origin Referer (Referrer-Policy: same-origin), which Flask-WTF checks
    set_password(world, "opleider")
    token = csrf(secure_client, "https://traject.example/login")
    login = secure_client.post("https://traject.example/login", headers={"Referer": "https://traject.example/login"},
                               data={"email": "opleider@test.nl", "password": PASSWORD, "csrf_token": token})
    assert login.status_code == 303, login.get_data(as_text=True)[-500:]
    assert "; Secure" in login.headers["Set-Cookie"]


def test_forwarded_headers_are_ignored_without_traject_proxy(world):
    response = world.app.test_client().get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" not in response.headers["Set-Cookie"]
    assert "Strict-Transport-Security" not in response.headers


def test_behind_a_proxy_the_forwarded_scheme_and_address_are_trusted(database_url, clock, tmp_path, monkeypatch):
    from web.app import create_app

    monkeypatch.setenv("TRAJECT_PROXY", "1")
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True, "CLOCK": clock,
                      "TRAJECT_INSTANCE": str(tmp_path / "instance")})
    assert app.config["TRAJECT_PROXY"] == 1
    seen = {}

    @app.get("/_probe")
    def probe():
        from flask import request

        seen.update(addr=request.remote_addr, secure=request.is_secure)
        return "ok"

    client = app.test_client()
    response = client.get("/login", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"})
    assert "; Secure" in response.headers["Set-Cookie"]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    client.get("/_probe", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9, 203.0.113.7"})
    assert seen == {"addr": "203.0.113.7", "secure": True}  # one hop trusted: the proxy's view of the client


# -- passwords: scrypt, salted ---------------------------------------------------------------------


def test_passwords_are_stored_as_salted_scrypt_hashes(world):
    from web.extensions import db

    set_password(world, "opleider", "aios")
    with world.app.app_context():
        stored = [db.session.get(User, world.users[n]).password_hash for n in ("opleider", "aios")]
        dump = _dump(db)
    for value in stored:
        method, salt, digest = value.split("$")
        assert re.fullmatch(r"scrypt:\d+:\d+:\d+", method), method  # werkzeug: scrypt:N:r:p
        n, r, p = map(int, method.split(":")[1:])
        assert n >= 2**15 and r >= 8 and p >= 1
        assert len(salt) >= 16 and re.fullmatch(r"[0-9a-f]{128}", digest)
        assert PASSWORD not in value
    assert stored[0] != stored[1]  # same password, different salt
    assert PASSWORD not in dump


# -- the HTML login form: rate limited like the API ------------------------------------------------------


def test_the_login_form_is_rate_limited_per_account(world):
    set_password(world, "aios", "opleider")
    client = browser(world)
    token = csrf(client)
    statuses = [client.post("/login", data={"email": "aios@test.nl", "password": f"guess-{i}", "csrf_token": token})
                .status_code for i in range(10)]
    assert statuses == [200] * 10  # each: the form again, with "wrong e-mail address or password"
    limited = client.post("/login", data={"email": "aios@test.nl", "password": PASSWORD, "csrf_token": token})
    assert limited.status_code == 429
    assert "Te veel pogingen" in limited.get_data(as_text=True)
    assert int(limited.headers["Retry-After"]) > 0
    assert limited.mimetype == "text/html"
    # the same account spelled otherwise is the same account; another account is not affected
    again = client.post("/login", data={"email": " AIOS@test.nl", "password": PASSWORD, "csrf_token": token})
    assert again.status_code == 429
    other = client.post("/login", data={"email": "opleider@test.nl", "password": PASSWORD, "csrf_token": token})
    assert other.status_code == 303


def test_the_api_login_limit_answers_in_the_contracts_shape(world):
    set_password(world, "aios")
    for i in range(10):
        world.client.post(API + "/auth/tokens", json={"email": "aios@test.nl", "password": f"x{i}"})
    response = world.client.post(API + "/auth/tokens", json={"email": "aios@test.nl", "password": PASSWORD})
    assert response.status_code == 429
    assert response.get_json() == {"error": {"code": "rate_limited", "message": "too many attempts; try again later",
                                             "details": {}}}
    assert int(response.headers["Retry-After"]) > 0


# -- tokens: only a hash at rest ------------------------------------------------------------------------


def test_the_database_never_holds_an_api_token(world):
    from web.extensions import db

    set_password(world, "opleider")
    token = ok(world.client.post(API + "/auth/tokens", json={"email": "opleider@test.nl", "password": PASSWORD}),
               201)["token"]
    assert len(token) >= 40  # 32 random bytes, URL-safe
    with world.app.app_context():
        rows = db.session.scalars(select(AuthToken)).all()
        assert [r.token_hash for r in rows] == [hashlib.sha256(token.encode()).hexdigest()]
        dump = _dump(db)
    assert token not in dump and token[:16] not in dump


def test_a_revoked_token_is_marked_in_the_database(world, clock):
    from web.extensions import db

    api = world.api("opleider")
    assert world.client.delete(API + "/auth/tokens", headers={"Authorization": f"Bearer {api.token}"}).status_code == 204
    with world.app.app_context():
        row = db.session.scalar(select(AuthToken).where(
            AuthToken.token_hash == hashlib.sha256(api.token.encode()).hexdigest()))
        assert row.revoked_at is not None and row.expires_at > row.created_at


def _dump(db) -> str:
    """Every value of every table as text: what a stolen database would show."""
    from engine.models import Base

    out = []
    for table in Base.metadata.sorted_tables:
        for row in db.session.execute(select(table)).all():
            out.append(repr(tuple(row)))
    return "\n".join(out)


# -- sessions: a new one at login --------------------------------------------------------------------


def test_the_session_cookie_changes_at_login_and_an_old_one_carries_no_login(world):
    set_password(world, "opleider")
    client = browser(world)
    token = csrf(client)
    before = cookie(client)
    assert before  # the anonymous session holds the CSRF token
    response = client.post("/login", data={"email": "opleider@test.nl", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 303
    after = cookie(client)
    assert after and after != before
    assert client.get("/").status_code == 200
    replay = world.app.test_client()
    replay.set_cookie("session", before)
    assert replay.get("/").status_code == 302  # the pre-login cookie is still anonymous
    assert replay.get("/").headers["Location"].startswith("/login")


def test_a_copied_session_cookie_stops_working_at_logout(world):
    set_password(world, "opleider")
    client = browser(world)
    client.post("/login", data={"email": "opleider@test.nl", "password": PASSWORD, "csrf_token": csrf(client)})
    stolen = cookie(client)
    assert client.get("/").status_code == 200
    thief = world.app.test_client()
    thief.set_cookie("session", stolen)
    assert thief.get("/").status_code == 200  # while the user is logged in, a copy works (a signed cookie)
    assert client.post("/logout", data={"csrf_token": csrf(client, "/")}).status_code == 303
    assert thief.get("/").status_code == 302  # ...but not after the logout
    client.post("/login", data={"email": "opleider@test.nl", "password": PASSWORD, "csrf_token": csrf(client)})
    assert client.get("/").status_code == 200 and thief.get("/").status_code == 302


def test_logging_out_leaves_an_anonymous_session(world):
    client = browser(world, "opleider")
    token = csrf(client, "/")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/").status_code == 302
    with client.session_transaction() as session:
        assert "_user_id" not in session


# -- no default secret outside development and testing --------------------------------------------------


def test_production_without_a_secret_key_refuses_to_start(tmp_path, monkeypatch):
    from web.app import create_app
    from web.config import ConfigError

    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("TRAJECT_INSTANCE", str(tmp_path))
    for mode in ("production", "staging", ""):
        monkeypatch.setenv("TRAJECT_ENV", mode) if mode else monkeypatch.delenv("TRAJECT_ENV")
        with pytest.raises(ConfigError, match="SECRET_KEY must be set"):
            create_app()
    assert not (tmp_path / "secret_key").exists()


def test_development_keys_are_random_per_instance_never_a_constant(tmp_path):
    from web.config import from_env

    first = from_env({"TRAJECT_ENV": "development", "TRAJECT_INSTANCE": str(tmp_path / "a")})["SECRET_KEY"]
    again = from_env({"TRAJECT_ENV": "development", "TRAJECT_INSTANCE": str(tmp_path / "a")})["SECRET_KEY"]
    other = from_env({"TRAJECT_ENV": "testing", "TRAJECT_INSTANCE": str(tmp_path / "b")})["SECRET_KEY"]
    assert first == again != other and len(first) >= 64
    assert oct((tmp_path / "a" / "secret_key").stat().st_mode)[-3:] == "600"
    key = "s3cret-" * 5
    assert from_env({"TRAJECT_ENV": "production", "SECRET_KEY": key})["SECRET_KEY"] == key


def test_the_cli_says_why_it_does_not_start_without_a_secret(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "TRAJECT_ENV", "DATABASE_URL")}
    env.update(TRAJECT_ENV="production", TRAJECT_INSTANCE=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", "from web.cli import main; main()", "audit", "verify"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr


# -- odd input through the HTML forms: a clear 4xx, nothing half-written ----------------------------------


@pytest.mark.parametrize("value", ["nul \x00 byte", "x" * 20001], ids=["nul", "too-long"])
def test_odd_text_in_a_form_is_refused_cleanly(world, value):
    from engine.models import AuditEvent, Case
    from web.extensions import db

    client = browser(world, "opleider")
    token = csrf(client, "/cases/new")
    inst, aios = world.institutions["meander"], world.users["aios"]
    response = client.post("/cases/new", data={"csrf_token": token, "workflow": "internal_guidance",
                                               "subject": f"{inst}:{aios}", "data.signal": value})
    assert 400 <= response.status_code < 500, response.status_code
    with world.app.app_context():
        assert db.session.scalar(select(Case.id).limit(1)) is None
        assert db.session.scalar(select(AuditEvent.case_id).limit(1)) is None


def test_a_form_over_the_size_limit_is_refused_with_413(world):
    client = browser(world, "opleider")
    token = csrf(client, "/cases/new")
    response = client.post("/cases/new", data={"csrf_token": token, "workflow": "internal_guidance",
                                               "data.signal": "x" * (600 * 1024)})
    assert response.status_code == 413
    assert response.mimetype == "text/html"
