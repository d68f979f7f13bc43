"""`traject sweep`, `traject worker` and `traject run` as commands and as real processes.

The processes run against the test database with real time; they are polled (never
slept on for business time) and stopped with signals.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, select

from engine import audit, deadlines
from engine.calendar import end_of_day
from engine.models import Deadline, Notification, User, WorkerHeartbeat
from flows import open_internal
from mailservers import free_port
from web.auth import issue_token
from web.extensions import db
from web.jobs.worker import Worker

TRAJECT = str(Path(sys.executable).parent / "traject")


def test_sweep_prints_a_json_summary_on_stdout_and_twice_changes_nothing(app, world, runner):
    open_internal(world.api("opleider"), world.users["aios"])
    first = runner.invoke(["sweep", "--now", "2026-03-02T10:00:00+01:00"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) == {"reminded": 0, "overdue": 0, "escalated": 0, "delivered": 1, "retried": 0,
                                        "dead": 0}
    again = runner.invoke(["sweep", "--now", "2026-03-02T10:00:00+01:00"])
    assert json.loads(again.stdout) == {"reminded": 0, "overdue": 0, "escalated": 0, "delivered": 0, "retried": 0,
                                        "dead": 0}
    assert runner.invoke(["sweep", "--now", "next tuesday"]).exit_code != 0


def test_sweep_without_now_uses_the_clock(app, world, runner):
    open_internal(world.api("opleider"), world.users["aios"])
    result = runner.invoke(["sweep"])
    assert result.exit_code == 0 and json.loads(result.stdout)["delivered"] == 1


def test_healthz_shows_the_age_of_the_worker_heartbeat_to_an_admin(app, world, client, clock):
    admin = {"Authorization": f"Bearer {world.api('admin').token}"}
    assert client.get("/healthz", headers=admin).get_json() == {"status": "ok"}
    Worker(app, 5).register()
    clock.advance(seconds=42)
    body = client.get("/healthz", headers=admin).get_json()
    assert body["status"] == "ok" and body["worker"]["age_seconds"] == 42.0
    assert body["worker"]["last"] == {"interval": 5.0}


def test_the_scheduler_has_two_coalescing_single_instance_jobs(app):
    worker = Worker(app, 7)
    jobs = {job.id: job for job in worker.scheduler.get_jobs()}
    # the last four daily (test_privacy.py, test_evidence.py, test_security_sessions.py)
    assert set(jobs) == {"sweep", "drain", "audit_check", "retention", "checkpoint", "integrity_check"}
    for job in jobs.values():
        daily = job.id in ("audit_check", "retention", "checkpoint", "integrity_check")
        assert job.coalesce and job.max_instances == 1
        assert job.trigger.interval == timedelta(seconds=86400 if daily else 7)


# -- real processes ----------------------------------------------------------------------------

def environment(database_url: str, instance: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MAIL_BACKEND")}
    env.update(DATABASE_URL=database_url, TRAJECT_INSTANCE=str(instance), TRAJECT_ENV="testing",
               MAIL_BACKEND="file", TRAJECT_WORKER_INTERVAL="0.2", TRAJECT_DELIVERY_LEASE="1",
               RGS_ADDRESS="rgs@example.org", WEB_CONCURRENCY="1", **extra)
    return env


def start(args, env) -> subprocess.Popen:
    return subprocess.Popen([TRAJECT, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, timeout=30.0, what="condition", process=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process ended early ({process.returncode}): {process.stderr.read()[-3000:]}")
        time.sleep(0.02)  # polling a real process, not waiting for business time
    raise AssertionError(f"timed out waiting for {what}")


def stop(process: subprocess.Popen, sig=signal.SIGTERM, timeout=20) -> tuple[int, str]:
    process.send_signal(sig)
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        raise AssertionError(f"the process did not stop: {err[-3000:]}")
    return process.returncode, err


def due_now(app, case_id: int, days_ahead: int, reminder_days=(3,)) -> int:
    """A deadline whose reminder is due in real time (the worker runs on the system clock)."""
    today = datetime.now(timezone.utc).date()
    due_at = end_of_day(today + timedelta(days=days_ahead), "Europe/Amsterdam")
    with app.app_context():
        engine = app.extensions["traject"]
        moment = deadlines.next_look(due_at, list(reminder_days), datetime(2000, 1, 1, tzinfo=timezone.utc),
                                   engine.config.timezone, engine.config.reminder_hour)
        d = Deadline(case_id=case_id, kind="live", label="Live termijn", due_at=due_at, remind_at=moment,
                     status="pending", owner_role="responsible", reminder_days=list(reminder_days),
                     created_at=engine.clock.now())
        db.session.add(d)
        db.session.commit()
        return d.id


def count(app, query):
    with app.app_context():
        try:
            return db.session.scalar(query)
        finally:
            db.session.remove()


def test_the_worker_process_delivers_a_due_reminder_and_stops_cleanly_on_sigterm(app, world, database_url, tmp_path):
    case = open_internal(world.api("opleider"), world.users["aios"])
    deadline_id = due_now(app, case["id"], days_ahead=2)
    instance = tmp_path / "worker"
    worker = start(["worker"], environment(database_url, instance))
    try:
        reminded = select(func.count()).select_from(Notification).where(
            Notification.kind == "deadline_reminder", Notification.status == "sent")
        wait_for(lambda: count(app, reminded) == 1, what="the reminder to be sent", process=worker)
        emls = list((instance / "mail").glob("*.eml"))
        assert any(b"Herinnering: Live termijn" in p.read_bytes() for p in emls)
        assert count(app, select(func.count()).select_from(WorkerHeartbeat)) == 1
    finally:
        code, err = stop(worker)
    assert code == 0, err[-3000:]
    assert "stopped" in err
    with app.app_context():
        assert db.session.get(Deadline, deadline_id).status == "reminded"


def test_a_worker_killed_mid_batch_and_restarted_loses_nothing_and_doubles_nothing(app, world, database_url,
                                                                                    tmp_path):
    from test_deadlines import make_due_deadlines

    # Due 1 March 2026, long past in real time: every one turns overdue and tells the opleider.
    make_due_deadlines(app, world, n_cases=30, per_case=5)
    instance = tmp_path / "worker"
    env = environment(database_url, instance)
    mail = instance / "mail"
    first = start(["worker"], env)
    try:
        wait_for(lambda: mail.exists() and any(mail.glob("*.eml")), what="the first message", process=first)
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    sent_before = count(app, select(func.count()).select_from(Notification).where(Notification.status == "sent"))
    second = start(["worker"], env)
    try:
        done = select(func.count()).select_from(Notification).where(Notification.status == "sent")
        wait_for(lambda: count(app, done) == 150, what="every message to be sent", process=second)
    finally:
        code, err = stop(second)
    assert code == 0, err[-3000:]
    assert sent_before < 150  # the kill did land mid-way
    with app.app_context():
        keys = db.session.scalars(select(Notification.idempotency_key)).all()
        assert len(keys) == len(set(keys)) == 150
        assert db.session.scalar(select(func.count()).select_from(Deadline).where(Deadline.status == "overdue")) == 150
        assert audit.verify(db.session)[2] is None
    assert len(list(mail.glob("*.eml"))) == 150  # one file per message: nothing doubled
    assert not list(mail.glob("*.tmp"))


def test_traject_run_serves_the_web_and_runs_the_worker(app, world, database_url, tmp_path):
    open_internal(world.api("opleider"), world.users["aios"])
    port = free_port()
    with app.app_context():  # the worker's details are the admin's; the server's clock is the real one
        token, _ = issue_token(db.session.get(User, world.users["admin"]), datetime.now(timezone.utc))
        db.session.commit()
    admin = {"Authorization": f"Bearer {token}"}
    server = start(["run", "--port", str(port)], environment(database_url, tmp_path / "run"))
    try:
        def healthy():
            try:
                with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/healthz", headers=admin),
                                            timeout=1) as response:
                    return "worker" in json.load(response)
            except OSError:
                return False

        wait_for(healthy, what="/healthz with a worker heartbeat", process=server)
        sent = select(func.count()).select_from(Notification).where(Notification.status == "sent")
        wait_for(lambda: count(app, sent) == 1, what="the case_opened message", process=server)
    finally:
        code, err = stop(server)
    assert code == 0, err[-3000:]
