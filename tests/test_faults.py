"""Faults: the database away for a while (web 503 in the contract's shape; the worker backs off and
resumes, losing no deadline), and a backup restored after a disaster with the audit chains intact.

The outage tests stop and start a private PostgreSQL cluster of their own (tests/pgcluster.py),
never the suite's. The backup round trip runs on SQLite and on PostgreSQL.
"""
from __future__ import annotations

import json
import logging
import os
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from engine import audit
from engine.clock import FixedClock
from engine.models import (
    AuditEvent,
    Case,
    Deadline,
    Institution,
    Notification,
    Region,
    RoleAssignment,
    User,
)
from flows import empty_tables, fire, ok, open_internal, signed_in
from pgcluster import Cluster, server_bindir
from web.extensions import db

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def wait_for(predicate, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)  # polling a background thread, not waiting for business time
    raise AssertionError(f"timed out waiting for {what}")


# -- the database away -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    bindir = server_bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs the PostgreSQL server binaries for the fault tests")
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql)")
    own = Cluster(bindir).create()
    yield own
    own.remove()


@pytest.fixture
def outage_app(cluster, tmp_path, monkeypatch):
    """The app on the private cluster, migrated, with an opleider and an aios (and their tokens)."""
    monkeypatch.setenv("TRAJECT_ENV", "testing")
    from flask_migrate import upgrade

    from web.app import create_app
    from web.runtime import sync_definitions
    from web.auth import issue_token

    clock = FixedClock(START)
    app = create_app({"SQLALCHEMY_DATABASE_URI": cluster.url, "TESTING": True, "CLOCK": clock,
                      "TRAJECT_INSTANCE": str(tmp_path / "instance"), "RGS_ADDRESS": "rgs@example.org"})
    with app.app_context():
        upgrade()
        empty_tables(db.engine)
        sync_definitions(app)
        region = Region(code="r", name="Regio")
        inst = Institution(code="meander", name="Meander MC", region=region)
        db.session.add_all([region, inst])
        db.session.flush()
        users = {}
        for name, role in (("opleider", "opleider"), ("aios", "aios")):
            user = User(email=f"{name}@test.nl", name=name.capitalize(), active=True, created_at=START)
            user.roles.append(RoleAssignment(role=role, institution_id=inst.id, region_id=region.id))
            db.session.add(user)
            db.session.flush()
            users[name] = user
        token, _ = issue_token(users["opleider"], START)
        ids = {name: u.id for name, u in users.items()}
        db.session.commit()
    yield app, clock, ids, token
    if not (cluster.data / "postmaster.pid").exists():  # a failed test may leave it stopped
        cluster.start()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


class Api:
    def __init__(self, app, token):
        self.client, self.headers = app.test_client(), {"Authorization": f"Bearer {token}"}

    def get(self, path):
        return self.client.get("/api/v1" + path, headers=self.headers)

    def post(self, path, json=None):
        return self.client.post("/api/v1" + path, json=json, headers=self.headers)


UNAVAILABLE = {"error": {"code": "unavailable", "message": "the database is unavailable; try again shortly",
                         "details": {}}}


def test_the_web_answers_503_while_the_database_is_away_and_recovers(cluster, outage_app):
    from web.api.schemas import ErrorSchema

    app, _clock, ids, token = outage_app
    api = Api(app, token)
    case = open_internal(api, ids["aios"])
    ui = app.test_client()
    signed_in(app, ui, ids["opleider"])
    assert ui.get(f"/cases/{case['id']}").status_code == 200

    cluster.stop()
    try:
        for response in (api.get(f"/cases/{case['id']}"), api.get("/cases"),
                         api.post(f"/cases/{case['id']}/transitions", {"trigger": "analyse", "expected_version": 1})):
            assert response.status_code == 503
            assert response.get_json() == UNAVAILABLE
            assert ErrorSchema().validate(response.get_json()) == {}
            assert response.headers["Retry-After"] == "5"
        health = app.test_client().get("/healthz")
        assert health.status_code == 503 and health.get_json()["error"]["code"] == "unavailable"
        page = ui.get(f"/cases/{case['id']}")
        assert page.status_code == 503 and "Tijdelijk niet beschikbaar" in page.get_data(as_text=True)
    finally:
        cluster.start()

    # Back: the pool reconnects by itself; the refused transition left nothing half-written.
    again = ok(api.get(f"/cases/{case['id']}"))
    assert again["version"] == 1 and again["state"] == "signalled"
    assert fire(api, again, "analyse")["version"] == 2
    assert app.test_client().get("/healthz").status_code == 200
    with app.app_context():
        assert audit.verify(db.session)[2] is None


def test_the_worker_backs_off_while_the_database_is_away_and_loses_no_deadline(cluster, outage_app, caplog):
    from web.jobs.worker import Worker

    app, clock, ids, token = outage_app
    api = Api(app, token)
    case = open_internal(api, ids["aios"])
    with app.app_context():  # six terms falling due in the hours ahead of the (fixed) clock
        for hour in range(1, 7):
            due = START + timedelta(hours=hour)
            db.session.add(Deadline(case_id=case["id"], kind=f"term_{hour}", label=f"Termijn {hour}", due_at=due,
                                    remind_at=due, status="pending", owner_role="responsible", reminder_days=[],
                                    created_at=START))
        db.session.commit()

    def count(query):
        with app.app_context():
            try:
                return db.session.scalar(query)
            finally:
                db.session.remove()

    sent = select(func.count()).select_from(Notification).where(Notification.status == "sent")
    overdue = select(func.count()).select_from(Deadline).where(Deadline.status == "overdue")
    caplog.set_level(logging.INFO, logger="web.worker")
    worker = Worker(app, 0.1, background=True)
    worker.backoff.ceiling = 0.8  # (production: at least a minute)
    worker.start_background()
    try:
        wait_for(lambda: count(sent) == 1, what="the worker to deliver the case_opened message")
        cluster.stop()
        clock.advance(hours=12)  # every term falls due while the database is away
        wait_for(lambda: worker.backoff.failures >= 5, what="the worker to back off")
        down = time.monotonic()
        attempts = worker.backoff.attempts
        time.sleep(1.0)  # a second of outage: at 0.1 s per pass, 30 passes of 3 jobs would have been tried
        assert worker.backoff.attempts - attempts <= 3
        cluster.start()
        wait_for(lambda: count(overdue) == 6, what="every deadline to turn overdue after the outage")
        wait_for(lambda: count(sent) == 7, what="the six overdue messages to be delivered")
        recovered = time.monotonic() - down
    finally:
        worker.stop()
        if not (cluster.data / "postmaster.pid").exists():
            cluster.start()
    assert worker.backoff.failures == 0 and worker.backoff.outages == 1
    messages = [r for r in caplog.records if r.name == "web.worker"]
    assert sum(r.levelno == logging.ERROR and "database unavailable" in r.getMessage() for r in messages) == 1
    assert sum("still unavailable" in r.getMessage() for r in messages) >= 4
    assert sum("reachable again" in r.getMessage() for r in messages) == 1
    assert sum("sweep failed" in r.getMessage() or "drain failed" in r.getMessage() for r in messages) <= 2
    assert recovered < 10
    with app.app_context():
        s = db.session
        assert s.scalar(select(func.count()).select_from(AuditEvent)
                        .where(AuditEvent.type == "deadline_overdue")) == 6  # each once
        keys = s.scalars(select(Notification.idempotency_key)).all()
        assert len(keys) == len(set(keys)) == 7
        assert audit.verify(s)[2] is None


# -- backup and restore ------------------------------------------------------------------------------------


def test_backup_and_restore_round_trip_ends_with_the_audit_chain_verified(app, world, runner, tmp_path):
    from test_audit import tamper
    from test_privacy import TWO_YEARS_AND_A_DAY, closed_case

    opleider = world.api("opleider")
    kept, _ = closed_case(world)
    fire(opleider, open_internal(opleider, world.users["aios2"]), "analyse")
    assert runner.invoke(["privacy", "retention", "--now", TWO_YEARS_AND_A_DAY]).exit_code == 0  # redactions too
    backup = tmp_path / "backups" / "traject.backup"
    result = runner.invoke(["backup", "--out", str(backup)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["bytes"] == backup.stat().st_size > 0
    with app.app_context():
        before = {c.id: (c.state, c.version, c.audit_head) for c in db.session.scalars(select(Case)).unique()}

    # The disaster: work after the backup, and a chain broken by hand.
    open_internal(opleider, world.users["aios"])
    tamper(app, f"UPDATE audit_event SET data = '{{}}' WHERE case_id = {kept['id']} AND seq = 2")
    assert runner.invoke(["audit", "verify"]).exit_code == 1

    assert runner.invoke(["restore", str(backup)], input="n\n").exit_code != 0  # asks first
    assert runner.invoke(["audit", "verify"]).exit_code == 1  # ... and did nothing
    wrong = tmp_path / "not-a-backup"
    wrong.write_bytes(b"hello")
    result = runner.invoke(["restore", str(wrong), "--yes"])
    assert result.exit_code != 0 and "neither" in result.output

    result = runner.invoke(["restore", str(backup), "--yes"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["audit"]["ok"] is True and summary["audit"]["cases"] == 2
    verify = runner.invoke(["audit", "verify"])
    assert verify.exit_code == 0, verify.output
    with app.app_context():
        after = {c.id: (c.state, c.version, c.audit_head) for c in db.session.scalars(select(Case)).unique()}
    assert after == before
    assert ok(world.api("opleider").get(f"/cases/{kept['id']}"))["state"] == "closed"  # and the app works on
    open_internal(world.api("opleider"), world.users["aios"])
    assert runner.invoke(["audit", "verify"]).exit_code == 0
