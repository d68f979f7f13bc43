"""Sessions, redirects, logins and the instance on disk: the findings of an outside attack on a running instance.

Each test here failed before its fix: open redirects after login and on /language, login guesses
counted per door, API tokens surviving a password change, sessions without an idle timeout, short
secrets in production, /healthz telling strangers about the worker, the demo loaded into production
and world-readable files in the instance folder.
"""
from __future__ import annotations

import logging
import os
import re
import sqlite3
import stat
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.models import AuthToken, User
from flows import browser, csrf_token, ok

API = "/api/v1"
PASSWORD = "paarse olifant op de fiets"  # passes the policy (web/passwords.py)
NEW_PASSWORD = "another horse battery staple"


def set_password(world, *names, password=PASSWORD):
    from web.auth import hash_password
    from web.extensions import db

    with world.app.app_context():
        for name in names:
            db.session.get(User, world.users[name]).password_hash = hash_password(password)
        db.session.commit()


def form_login(world, client, name="opleider", password=PASSWORD, **extra):
    data = {"email": f"{name}@test.nl", "password": password, "csrf_token": csrf_token(client, "/login"), **extra}
    return client.post("/login", data=data)


def api_login(world, name="opleider", password=PASSWORD):
    return world.client.post(API + "/auth/tokens", json={"email": f"{name}@test.nl", "password": password})


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- 1. redirects only to this site ------------------------------------------------------------------

OFF_SITE = ["/\t/evil.example", "/%09/evil.example", "/\n/evil.example", "/\r\nSet-Cookie: a=b", "//evil.example",
            "/\\evil.example", "\\\\evil.example", "https://evil.example/", "javascript:alert(1)", " //evil.example",
            "/ /evil.example", "/\u2028/evil.example", "/%2F/evil.example", "http:/evil.example",
            "evil.example", ""]


@pytest.mark.parametrize("target", OFF_SITE, ids=repr)
def test_it_redirects_only_to_this_site_after_login(world, target):
    set_password(world, "opleider")
    client = browser(world)
    response = form_login(world, client, next=target)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("target", OFF_SITE, ids=repr)
def test_it_redirects_only_to_this_site_after_switching_the_language(world, target):
    client = browser(world, "opleider")
    response = client.post("/language", data={"lang": "en", "next": target, "csrf_token": csrf_token(client, "/")})
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_it_offers_no_off_site_target_in_the_login_form(world):
    html = browser(world).get("/login?next=/%09/evil.example").get_data(as_text=True)
    form = html[html.index('action="/login"'):]
    assert re.search(r'name="next" value="([^"]*)"', form).group(1) == ""


def test_it_keeps_a_local_target_with_its_query(world):
    set_password(world, "opleider")
    client = browser(world)
    assert form_login(world, client, next="/cases?state=guidance").headers["Location"] == "/cases?state=guidance"
    response = client.post("/language", data={"lang": "en", "next": "/admin#audit", "csrf_token": csrf_token(client, "/")})
    assert response.headers["Location"] == "/admin#audit"


def test_the_safe_target_helper_normalises_before_it_judges():
    from web.security import safe_target

    assert safe_target("/cases/7?tab=events") == "/cases/7?tab=events"
    assert safe_target(None) == "/" and safe_target(42) == "/"
    for bad in OFF_SITE + ["/\x00/evil.example", "/\u202e/evil.example", "/%5C/evil.example"]:
        assert safe_target(bad) == "/", bad


# -- 2. one login budget per account, whichever door -----------------------------------------------


def test_it_counts_api_and_form_login_failures_against_one_budget(world):
    set_password(world, "aios")
    client = browser(world)
    for i in range(5):
        assert api_login(world, "aios", f"api-guess-{i}").status_code == 401
        assert form_login(world, client, "aios", f"form-guess-{i}").status_code == 200
    assert form_login(world, client, "aios").status_code == 429
    limited = api_login(world, "aios")
    assert limited.status_code == 429 and limited.get_json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0


def test_it_limits_wrong_current_passwords_on_the_password_page(world):
    set_password(world, "opleider")
    client = browser(world)
    assert form_login(world, client).status_code == 303
    token = csrf_token(client, "/account/password")
    wrong = [client.post("/account/password", data={"current": f"guess-{i}", "new": NEW_PASSWORD,
                                                    "repeat": NEW_PASSWORD, "csrf_token": token}).status_code
             for i in range(10)]
    assert wrong == [422] * 10
    limited = client.post("/account/password", data={"current": PASSWORD, "new": NEW_PASSWORD,
                                                     "repeat": NEW_PASSWORD, "csrf_token": token})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert "Te veel pogingen" in limited.get_data(as_text=True)
    # the same account's budget: the API's door is shut too, and the password did not change
    assert api_login(world, "opleider").status_code == 429
    with world.app.app_context():
        from web.extensions import db
        from werkzeug.security import check_password_hash

        assert check_password_hash(db.session.get(User, world.users["opleider"]).password_hash, PASSWORD)


def test_a_too_short_new_password_costs_no_login_attempt(world):
    set_password(world, "opleider")
    client = browser(world)
    form_login(world, client)
    token = csrf_token(client, "/account/password")
    for _ in range(11):
        response = client.post("/account/password", data={"current": PASSWORD, "new": "short", "repeat": "short",
                                                          "csrf_token": token})
        assert response.status_code == 422


# -- 3. a password change and a deactivation end every API token ---------------------------------------


def _token_rows(world, user_id):
    from web.extensions import db

    with world.app.app_context():
        return db.session.scalars(select(AuthToken).where(AuthToken.user_id == user_id)).all()


def test_a_password_change_revokes_every_api_token(world):
    set_password(world, "opleider")
    tokens = [ok(api_login(world), 201)["token"] for _ in range(2)]
    client = browser(world)
    form_login(world, client)
    response = client.post("/account/password", data={"current": PASSWORD, "new": NEW_PASSWORD,
                                                      "repeat": NEW_PASSWORD,
                                                      "csrf_token": csrf_token(client, "/account/password")})
    assert response.status_code == 303
    for token in tokens:
        assert world.client.get(API + "/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert all(row.revoked_at is not None for row in _token_rows(world, world.users["opleider"]))
    assert client.get("/").status_code == 200  # the browser session that changed it continues
    fresh = ok(api_login(world, password=NEW_PASSWORD), 201)["token"]
    assert world.client.get(API + "/me", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_a_deactivation_revokes_every_api_token_for_good(world):
    from web.extensions import db

    api, other = world.api("opleider"), world.api("aios")
    with world.app.app_context():
        db.session.get(User, world.users["opleider"]).active = False
        db.session.commit()
    assert api.get("/me").status_code == 401
    assert all(row.revoked_at is not None for row in _token_rows(world, world.users["opleider"]))
    with world.app.app_context():  # reactivated: the account is back, its old tokens are not
        db.session.get(User, world.users["opleider"]).active = True
        db.session.commit()
    assert api.get("/me").status_code == 401
    assert other.get("/me").status_code == 200
    assert all(row.revoked_at is None for row in _token_rows(world, world.users["aios"]))


# -- 4. sessions end when idle, and after a working day ---------------------------------------------------


def test_an_idle_session_ends_after_30_minutes_with_a_dutch_message(world, clock):
    set_password(world, "opleider")
    client = browser(world)
    form_login(world, client)
    clock.advance(minutes=29)
    assert client.get("/").status_code == 200  # in use: the idle time starts again
    clock.advance(minutes=29)
    assert client.get("/").status_code == 200
    clock.advance(minutes=31)
    response = client.get("/cases")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Uw sessie is verlopen" in page
    assert client.get("/").status_code == 302  # logged out, not only redirected once
    with client.session_transaction() as session:
        assert "_user_id" not in session


def test_a_session_ends_after_12_hours_however_busy(world, clock):
    set_password(world, "opleider")
    client = browser(world)
    form_login(world, client)
    for _ in range(12 * 3 - 1):
        clock.advance(minutes=20)
        assert client.get("/").status_code == 200
    clock.advance(minutes=20)
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert "Uw sessie is verlopen" in client.get("/login").get_data(as_text=True)


def test_an_expired_session_cannot_post_a_form(world, clock):
    set_password(world, "opleider")
    client = browser(world)
    form_login(world, client)
    token = csrf_token(client, "/")
    clock.advance(minutes=31)
    response = client.post("/language", data={"lang": "en", "next": "/", "csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"].startswith("/login")
    from web.extensions import db

    with world.app.app_context():
        assert db.session.get(User, world.users["opleider"]).language != "en"


def test_a_session_cookie_without_its_times_carries_no_login(world):
    client = world.app.test_client()
    with client.session_transaction() as session:  # as a cookie signed before sessions had times
        session["_user_id"], session["_fresh"] = str(world.users["opleider"]), True
    assert client.get("/").status_code == 302


def test_the_session_times_are_configurable():
    from web.config import from_env

    base = {"TRAJECT_ENV": "testing", "TRAJECT_INSTANCE": "/tmp/unused", "SECRET_KEY": "k" * 32}
    defaults = from_env(base)
    assert (defaults["TRAJECT_SESSION_IDLE_MINUTES"], defaults["TRAJECT_SESSION_MAX_HOURS"]) == (30, 12)
    custom = from_env({**base, "TRAJECT_SESSION_IDLE_MINUTES": "5", "TRAJECT_SESSION_MAX_HOURS": "2"})
    assert (custom["TRAJECT_SESSION_IDLE_MINUTES"], custom["TRAJECT_SESSION_MAX_HOURS"]) == (5, 2)


# -- 5. a real secret in production -----------------------------------------------------------------------


def test_production_refuses_a_short_secret_key(tmp_path):
    from web.config import ConfigError, from_env

    for short in ("x", "s3cret", "a" * 31, "é" * 15):
        with pytest.raises(ConfigError, match="SECRET_KEY must be at least 32 bytes outside development"):
            from_env({"TRAJECT_ENV": "production", "SECRET_KEY": short, "TRAJECT_INSTANCE": str(tmp_path)})
    key = "k" * 32
    assert from_env({"TRAJECT_ENV": "production", "SECRET_KEY": key, "TRAJECT_INSTANCE": str(tmp_path)})[
        "SECRET_KEY"] == key
    assert from_env({"TRAJECT_ENV": "testing", "SECRET_KEY": "x", "TRAJECT_INSTANCE": str(tmp_path)})["SECRET_KEY"] == "x"


# -- 6. /healthz: nothing for strangers, and an integrity check ------------------------------------------


def test_healthz_tells_a_stranger_only_that_it_is_up(app, world, clock):
    from web.jobs.worker import Worker

    Worker(app, 5).register()
    assert world.client.get("/healthz").get_json() == {"status": "ok"}
    aios = world.api("aios")
    assert world.client.get("/healthz", headers={"Authorization": f"Bearer {aios.token}"}).get_json() == {
        "status": "ok"}
    admin = world.api("admin")
    body = world.client.get("/healthz", headers={"Authorization": f"Bearer {admin.token}"}).get_json()
    assert body["status"] == "ok" and body["worker"]["last"] == {"interval": 5.0}


def _corrupt_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    conn.executemany("INSERT INTO t (body) VALUES (?)", [("x" * 500,) for _ in range(200)])
    conn.execute("CREATE INDEX t_body ON t (body)")
    conn.commit()
    conn.close()
    with path.open("r+b") as f:  # overwrite a few pages in the middle: b-tree pages become garbage
        f.seek(4096 * 3)
        f.write(os.urandom(4096 * 4))


def test_it_refuses_to_start_on_a_corrupted_sqlite_file(tmp_path, monkeypatch):
    from web.app import create_app
    from web.config import ConfigError

    database = tmp_path / "broken.db"
    _corrupt_sqlite(database)
    monkeypatch.setenv("TRAJECT_ENV", "testing")
    with pytest.raises(ConfigError, match="integrity check"):
        create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}", "TRAJECT_INSTANCE": str(tmp_path / "i")})


def test_the_daily_integrity_check_reports_a_damaged_database_until_it_passes(app, world, monkeypatch, caplog):
    from web.jobs import daily
    from web.jobs.worker import Worker

    worker = Worker(app, 5)
    worker.register()
    admin = {"Authorization": f"Bearer {world.api('admin').token}"}
    monkeypatch.setattr(daily, "integrity_problems", lambda session: ["*** in database main *** Page 7: btree"])
    with caplog.at_level(logging.ERROR, logger="web.worker"):
        worker.integrity_check()
    assert any("integrity check FAILED" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    for headers in ({}, admin):
        response = world.client.get("/healthz", headers=headers)
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "unavailable"
    assert "btree" not in world.client.get("/healthz").get_data(as_text=True)  # details only for the admin
    monkeypatch.setattr(daily, "integrity_problems", lambda session: [])
    worker.integrity_check()
    assert world.client.get("/healthz").get_json() == {"status": "ok"}


# -- 7. the demo only in a demo instance --------------------------------------------------------------------


def test_it_refuses_the_demo_outside_a_demo_instance(app, runner):
    from web.extensions import db

    app.config.update(TRAJECT_ENV="production", TRAJECT_DEMO=False)
    result = runner.invoke(["demo"])
    assert result.exit_code != 0
    assert "TRAJECT_DEMO=1" in result.output and "Traceback" not in result.output
    with app.app_context():
        assert db.session.scalar(select(User).limit(1)) is None
    assert not (Path(app.instance_path) / "demo_password.txt").exists()


# -- 8. the instance folder is private ---------------------------------------------------------------------


@pytest.fixture
def open_umask():
    old = os.umask(0o022)  # as on a default server: everything world-readable unless we say otherwise
    yield
    os.umask(old)


def test_the_instance_folder_and_the_files_traject_writes_there_are_private(open_umask, tmp_path, monkeypatch):
    from flask_migrate import upgrade

    from notifications.backends import FileBackend
    from web.app import create_app
    from web.demo import load
    from web.exports.backup import backup
    from web.extensions import db

    instance = tmp_path / "instance"
    monkeypatch.setenv("TRAJECT_ENV", "testing")
    monkeypatch.setenv("TRAJECT_INSTANCE", str(instance))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    app = create_app({"TRAJECT_INSTANCE": str(instance), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance}/traject.db"})
    with app.app_context():
        upgrade()
        load(app, echo=lambda *a, **k: None)
        db.session.remove()
        db.engine.dispose()
    assert mode(instance) == 0o700
    written = [instance / "traject.db", instance / "demo_password.txt", instance / "secret_key"]
    out = backup(f"sqlite:///{instance}/traject.db", instance / "backups" / "b.db")
    written.append(Path(out["backup"]))

    class Message:
        notification_id, idempotency_key = 1, "k"

        def as_email(self):
            from email.message import EmailMessage

            m = EmailMessage()
            m.set_content("vertrouwelijk")
            return m

    backend = FileBackend(instance / "mail")
    backend.send(Message())
    written.append(backend.path_for(Message()))
    assert mode(instance / "mail") == 0o700
    for path in written:
        assert mode(path) == 0o600, path


def test_an_existing_instance_folder_and_database_are_made_private(open_umask, tmp_path, monkeypatch):
    from web.app import create_app

    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    instance.chmod(0o755)
    database = instance / "traject.db"
    sqlite3.connect(database).close()
    database.chmod(0o644)
    monkeypatch.setenv("TRAJECT_ENV", "testing")
    create_app({"TRAJECT_INSTANCE": str(instance), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}"})
    assert mode(instance) == 0o700 and mode(database) == 0o600

