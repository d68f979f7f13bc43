"""Production serving: `traject web` is gunicorn unless --dev; `traject run` supervises web and worker.

(`traject run` for real, web and worker together: tests/test_worker_cli.py.)
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import urllib.request
from datetime import datetime, timezone

import click
import pytest
import requests

from engine.models import User
from mailservers import free_port
from test_worker_cli import environment, start, stop, wait_for
from web.cli.supervise import Child, supervise
from web.cli.wsgi_server import gunicorn_settings, workers_from_env

PY = sys.executable


def _get(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status
    except OSError:
        return None


def test_traject_web_is_gunicorn_with_an_access_log_and_stops_on_sigterm(app, database_url, tmp_path):
    port = free_port()
    # a short graceful timeout: a worker still booting on a loaded machine must not outlast the test
    env = {**environment(database_url, tmp_path / "web"), "WEB_CONCURRENCY": "2", "TRAJECT_WEB_TIMEOUT": "5"}
    server = start(["web", "--port", str(port)], env)
    try:
        wait_for(lambda: _get(f"http://127.0.0.1:{port}/healthz") == 200, what="/healthz", process=server)
    finally:
        server.send_signal(signal.SIGTERM)  # by its pid: gunicorn's master finishes requests, stops its workers
        out, err = server.communicate(timeout=40)
    assert server.returncode == 0, err[-3000:]
    assert "Starting gunicorn" in err and err.count("Booting worker") == 2
    assert "GET /healthz" in out + err  # the access log


def _login(port: int, email: str, password: str) -> requests.Session:
    browser = requests.Session()
    page = browser.get(f"http://127.0.0.1:{port}/login", timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    answer = browser.post(f"http://127.0.0.1:{port}/login", allow_redirects=False, timeout=10,
                          data={"email": email, "password": password, "csrf_token": token})
    assert answer.status_code in (302, 303) and "/login" not in answer.headers["Location"], answer.text[:500]
    return browser


def test_no_request_is_served_with_another_visitors_login(app, world, database_url, tmp_path):
    # Every request its own app context: with the CLI's app context left pushed, gunicorn's workers served
    # one visitor's `g` (the logged-in user, the CSRF token) and database session to the next.
    from web.auth import hash_password, issue_token
    from web.extensions import db

    with app.app_context():
        user = db.session.get(User, world.users["opleider"])
        user.password_hash = hash_password("a long enough passphrase 7")
        token, _ = issue_token(user, datetime.now(timezone.utc))  # the server runs on the real clock
        db.session.commit()
    port = free_port()
    env = {**environment(database_url, tmp_path / "web"), "WEB_CONCURRENCY": "2", "TRAJECT_WEB_TIMEOUT": "5"}
    server = start(["web", "--port", str(port)], env)
    try:
        wait_for(lambda: _get(f"http://127.0.0.1:{port}/healthz") == 200, what="/healthz", process=server)
        browser = _login(port, "opleider@test.nl", "a long enough passphrase 7")
        for _ in range(12):  # enough to reach both workers after each other's requests
            assert browser.get(f"http://127.0.0.1:{port}/", allow_redirects=False, timeout=10).status_code == 200
            anonymous = requests.get(f"http://127.0.0.1:{port}/", allow_redirects=False, timeout=10)
            assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
            assert requests.get(f"http://127.0.0.1:{port}/api/v1/inbox", timeout=10,
                                headers={"Authorization": f"Bearer {token}"}).status_code == 200
            assert requests.get(f"http://127.0.0.1:{port}/api/v1/inbox", timeout=10).status_code == 401
        browser.close()  # no kept-alive connection for the graceful shutdown to wait on
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=40)


def test_every_process_of_the_machine_counts_one_login_budget(app, world, database_url, tmp_path):
    # Two servers on one instance folder stand for two gunicorn workers: with a budget per process
    # (memory://) an attacker had one per worker, and a replaced worker gave a fresh one.
    from web.auth import LOGIN_LIMIT, hash_password
    from web.extensions import db

    with app.app_context():
        db.session.get(User, world.users["aios"]).password_hash = hash_password("a long enough passphrase 7")
        db.session.commit()
    env = {**environment(database_url, tmp_path / "shared"), "TRAJECT_WEB_TIMEOUT": "5"}
    env.pop("RATELIMIT_STORAGE_URI", None)
    ports = [free_port(), free_port()]
    servers = [start(["web", "--port", str(port), "--workers", "1"], env) for port in ports]
    budget = int(LOGIN_LIMIT.split()[0])
    try:
        for port, server in zip(ports, servers):
            wait_for(lambda: _get(f"http://127.0.0.1:{port}/healthz") == 200, what="/healthz", process=server)

        def guess(port, password="wrong guess"):
            return requests.post(f"http://127.0.0.1:{port}/api/v1/auth/tokens", timeout=10,
                                 json={"email": "aios@test.nl", "password": password}).status_code

        answers = [guess(ports[i % 2]) for i in range(budget)]
        assert answers == [401] * budget
        assert [guess(port, "a long enough passphrase 7") for port in ports] == [429, 429]
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            server.communicate(timeout=40)


def test_web_concurrency_and_timeouts():
    assert workers_from_env({"WEB_CONCURRENCY": "3"}) == 3
    assert workers_from_env({}) >= 2
    for bad in ("many", "0"):
        with pytest.raises(click.ClickException):
            workers_from_env({"WEB_CONCURRENCY": bad})
    settings = gunicorn_settings(type("App", (), {"config": {"TRAJECT_WEB_TIMEOUT": 12}})(), "127.0.0.1", 8000, 3)
    assert settings["workers"] == 3 and settings["timeout"] == settings["graceful_timeout"] == 12
    assert settings["bind"] == "127.0.0.1:8000" and settings["accesslog"] == "-"


def test_a_child_that_keeps_dying_stops_the_other_and_the_supervisor_exits_1(tmp_path):
    starts = tmp_path / "starts"
    dier = Child("dier", [PY, "-c", f"open({str(starts)!r}, 'a').write('x'); raise SystemExit(3)"])
    sleeper = Child("sleeper", [PY, "-c", "import time; time.sleep(60)"])
    assert supervise([dier, sleeper], max_restarts=2, window=60, grace=5, poll=0.02, pause=0.01) == 1
    assert starts.read_text() == "xxx"  # started, restarted twice, then given up on
    assert sleeper.proc.returncode == -signal.SIGTERM


def test_sigterm_reaches_every_child_and_the_supervisor_exits_0(tmp_path):
    pids = tmp_path / "pids"
    script = textwrap.dedent(f"""
        import sys
        from web.cli.supervise import Child, supervise
        child = [{PY!r}, "-c", "import os, time; open({str(pids)!r}, 'a').write(str(os.getpid()) + ' '); time.sleep(60)"]
        sys.exit(supervise([Child("a", child), Child("b", child)], grace=5, poll=0.02))
    """)
    parent = subprocess.Popen([PY, "-c", script], stderr=subprocess.PIPE, text=True)
    wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 2, timeout=20, what="two children",
             process=parent)
    code, err = stop(parent)
    assert code == 0, err
    for pid in map(int, pids.read_text().split()):
        with pytest.raises(ProcessLookupError):  # reaped, not left behind
            os.kill(pid, 0)
