"""Fixtures: the same suite on SQLite and on PostgreSQL (TEST_POSTGRES_URL, set by scripts/with-postgres).

The schema is built by the real migrations once per database; each test starts from
empty tables (workflow definitions kept) and a fixed clock.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine, delete, text

from engine.clock import FixedClock
from engine.models import Base, Institution, Region, RoleAssignment, User, WorkflowDefinition

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
# Two-step verification is off for the suite's apps (every create_app reads this): its users log in with
# a password alone. The identity tests (tests/test_mfa.py, tests/test_oidc.py) set the roles that need it.
os.environ["TRAJECT_MFA_ROLES"] = ""
PG_URL = os.environ.get("TEST_POSTGRES_URL")


def _backends():
    chosen = os.environ.get("TRAJECT_TEST_BACKENDS")  # scripts/test-suite runs each database on its own
    if chosen:
        return [b.strip() for b in chosen.split(",") if b.strip()]
    params = ["sqlite"]
    if PG_URL or os.environ.get("CI"):
        params.append("postgresql")
    return params


def pytest_collection_modifyitems(config, items):
    # scripts/test-suite's PostgreSQL run: the tests that use no database ran in the SQLite run already, and
    # so did those marked one_database (what they check is rendered the same on either database).
    if os.environ.get("TRAJECT_TEST_DATABASE_ONLY") != "1":
        return
    keep = [item for item in items if "database_url" in getattr(item, "fixturenames", ())
            and item.get_closest_marker("one_database") is None]
    if len(keep) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep


def _worker_database(url):
    """Each pytest-xdist worker gets a database of its own in the one cluster (tests empty tables)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"{base.database}_{worker}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session", params=_backends())
def database_url(request, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'traject.db'}"
    else:
        if not PG_URL:
            pytest.fail("CI needs PostgreSQL: run the suite through scripts/with-postgres (make test)")
        url = _worker_database(PG_URL)
        eng = create_engine(url)
        with eng.begin() as conn:  # a clean schema for this run
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        eng.dispose()
    os.environ["TRAJECT_ENV"] = "testing"
    from flask_migrate import upgrade

    from web.app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True,
                      "TRAJECT_INSTANCE": str(tmp_path_factory.mktemp("instance"))})
    with app.app_context():
        upgrade()
    return url


@pytest.fixture(scope="session")
def provider(tmp_path_factory):
    """A real OpenID provider on loopback, once per test session (tests/oidc_provider.py)."""
    from oidc_provider import start, stop

    running = start(tmp_path_factory.mktemp("oidc") / "provider.log")
    yield running
    stop(running)


@pytest.fixture
def clock():
    return FixedClock(START)


def make_app(database_url, clock, instance, **config):
    """The app of one test (the `app` fixture's, with `config` on top); `close_app` after it."""
    from web.app import create_app
    from web.extensions import limiter

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True, "CLOCK": clock,
                      "TRAJECT_INSTANCE": str(instance), "RGS_ADDRESS": "rgs@example.org", **config})
    limiter.reset()
    return app


def close_app(app) -> None:
    from web.extensions import db

    with app.app_context():
        db.session.remove()
        _empty(db.engine)
        db.engine.dispose()


@pytest.fixture
def app(database_url, clock, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAJECT_ENV", "testing")
    app = make_app(database_url, clock, tmp_path / "instance")
    yield app
    close_app(app)


from flows import empty_tables as _empty  # noqa: E402


@pytest.fixture
def client(app):
    return app.test_client()


class Runner:
    """The `traject` command against the test app."""

    def __init__(self, app):
        self.runner = app.test_cli_runner()

    def invoke(self, args, input=None):
        from web.cli import main

        return self.runner.invoke(main, args=args, input=input)


@pytest.fixture
def runner(app):
    return Runner(app)


@dataclass
class Api:
    """A logged-in API user for tests."""

    client: object
    token: str
    user_id: int

    def _headers(self):
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path, **kw):
        return self.client.get("/api/v1" + path, headers=self._headers(), **kw)

    def post(self, path, json=None, **kw):
        return self.client.post("/api/v1" + path, json=json, headers=self._headers(), **kw)

    def put(self, path, json=None, **kw):
        return self.client.put("/api/v1" + path, json=json, headers=self._headers(), **kw)


@dataclass
class World:
    app: object
    client: object
    users: dict
    region_id: int
    institutions: dict

    def api(self, name: str) -> Api:
        from web.auth import issue_token
        from web.extensions import db

        with self.app.app_context():
            user = db.session.get(User, self.users[name])
            token, _ = issue_token(user, self.app.extensions["traject"].clock.now())
            db.session.commit()
        return Api(self.client, token, self.users[name])


ROLES = [
    # name, role, institution code (None: regional)
    ("opleider", "opleider", "meander"),
    ("opleider2", "opleider", "meander"),
    ("aios", "aios", "meander"),
    ("aios2", "aios", "meander"),
    ("coc", "coc_chair", "meander"),
    ("hr", "hr", "meander"),
    ("rvb", "rvb", "meander"),
    ("opleider_gelre", "opleider", "gelre"),
    ("aios_gelre", "aios", "gelre"),
    ("coc_gelre", "coc_chair", "gelre"),
    ("hr_gelre", "hr", "gelre"),
    ("rso", "rso_board", None),
    ("rcoc", "r_coc_chair", None),
    ("regio", "regio_bestuur", None),
    ("vp", "vertrouwenspersoon", None),
    ("admin", "admin", None),
]


@pytest.fixture
def world(app, client, clock):
    from web.extensions import db

    with app.app_context():
        region = Region(code="cluster-utrecht", name="Cluster Utrecht — anesthesiologie")
        db.session.add(region)
        db.session.flush()
        insts = {}
        for code, name in [("meander", "Meander MC"), ("gelre", "Gelre ziekenhuizen")]:
            insts[code] = Institution(code=code, name=name, region_id=region.id)
            db.session.add(insts[code])
        db.session.flush()
        users = {}
        for name, role, code in ROLES:
            user = User(email=f"{name}@test.nl", name=name.capitalize(), active=True, created_at=clock.now())
            user.roles.append(RoleAssignment(role=role, institution_id=insts[code].id if code else None,
                                             region_id=region.id))
            db.session.add(user)
            db.session.flush()
            users[name] = user.id
        db.session.commit()
        ids = {code: inst.id for code, inst in insts.items()}
        region_id = region.id
    return World(app, client, users, region_id, ids)
