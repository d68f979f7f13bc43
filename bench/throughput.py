"""5. Throughput: the web app under gunicorn (4 sync workers) on PostgreSQL, concurrent transitions.

`traject web --workers 4` (gunicorn, as production runs it) in production mode on 127.0.0.1, and a load generator
in this process: C threads, each opening a loopback connection per request (gunicorn's sync
workers close after every response) and POSTing /api/v1/cases/{id}/transitions with a bearer
token, each request on a case of its own (bench_six's step1: new state, audit event, a
deadline with two reminders, an outbox row). Bounded twice: at most N requests (one per
prepared case) and at most T seconds; only 127.0.0.1 is ever addressed.

Baseline, same server and generator: GET /healthz (the HTTP stack plus a SELECT 1).
Afterwards the database is asked how many transitions it holds: every 200 must be there.
"""
from __future__ import annotations

TARGET = 600  # transitions/s on 2 cores (issue 19)

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import func, select

from .common import ROOT, Row, log, make_app, percentile, seed

HOST = "127.0.0.1"  # never anything else


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def prepare(app, world, n: int) -> tuple[list[int], str]:
    """n bench_six cases in s0 (bulk insert) and a bearer token of the opleider."""
    from engine.models import Case, User
    from web.auth import issue_token
    from web.extensions import db

    with app.app_context():
        definition = app.extensions["traject"].latest(db.session)["bench_six"]
        now = datetime.now(timezone.utc)
        first = (db.session.scalar(select(func.max(Case.id))) or 0) + 1
        base = dict(workflow_key="bench_six", definition_id=definition.row_id, region_id=world.region_id,
                    institution_id=world.institution_id, subject_id=world.aios_id, opened_by_id=world.opleider_id,
                    responsible_id=world.opleider_id, parent_id=None, title="Bench", state="s0", version=1,
                    data={}, opened_at=now, updated_at=now, closed_at=None, audit_seq=0, audit_head="")
        rows = [dict(base, id=first + i) for i in range(n)]
        for start in range(0, n, 5000):
            db.session.execute(Case.__table__.insert(), rows[start:start + 5000])
        token, _ = issue_token(db.session.get(User, world.opleider_id), now)
        db.session.commit()
        db.session.remove()
    return list(range(first, first + n)), token


class Server:
    def __init__(self, url: str, workers: int = 4):
        self.port = free_port()
        self.instance = tempfile.mkdtemp(prefix="traject-bench-gunicorn-")
        env = {**os.environ, "DATABASE_URL": url, "TRAJECT_ENV": "production", "SECRET_KEY": secrets.token_hex(32),
               "TRAJECT_INSTANCE": self.instance}
        # Exactly what production runs: `traject web` (gunicorn, web/cli/wsgi_server.py, access log included).
        traject = str(Path(sys.executable).with_name("traject"))
        self.log = open(Path(self.instance) / "gunicorn.log", "w+")
        self.proc = subprocess.Popen(
            [traject, "web", "--host", HOST, "--port", str(self.port), "--workers", str(workers)],
            env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError("gunicorn exited:\n" + self.log.read()[-3000:])
            try:
                status, _ = request(self.port, b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")
                if status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        # Every worker imports and builds the app on its first request: warm them all.
        for _ in range(workers * 8):
            request(self.port, b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def request(port: int, raw: bytes) -> tuple[int, bytes]:
    with socket.create_connection((HOST, port), timeout=30) as s:
        s.sendall(raw)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    data = b"".join(chunks)
    status = int(data[9:12]) if data.startswith(b"HTTP/1.") else 0
    return status, data


def load(port: int, make_request, n: int, seconds: float, concurrency: int) -> dict:
    """At most n requests and at most `seconds`; returns rate, errors, latencies."""
    counter = iter(range(n))
    lock = threading.Lock()
    results = []
    stop_at = time.perf_counter() + seconds

    def client():
        mine = []
        while time.perf_counter() < stop_at:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            start = time.perf_counter()
            try:
                status, body = request(port, make_request(i))
            except OSError as exc:
                status, body = 0, str(exc).encode()
            mine.append((time.perf_counter() - start, status, body if status != 200 else b""))
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    ok = [r for r in results if r[1] == 200]
    errors = [r for r in results if r[1] != 200]
    latencies = [r[0] for r in ok] or [0.0]
    return {"rate": len(ok) / elapsed, "ok": len(ok), "errors": len(errors), "elapsed": elapsed,
            "p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
            "first_error": errors[0][2][:300].decode(errors="replace") if errors else ""}


def cpu_groups(server: "Server") -> dict:
    """CPU seconds so far of the gunicorn processes, the PostgreSQL processes, this process and all others."""
    import psutil

    gunicorn = {server.proc.pid} | {c.pid for c in psutil.Process(server.proc.pid).children(recursive=True)}
    groups = {"gunicorn": 0.0, "postgres": 0.0, "load generator": 0.0, "other processes": 0.0}
    for p in psutil.process_iter(["pid", "name", "cpu_times"]):
        times = p.info["cpu_times"]
        if times is None:
            continue
        t = times.user + times.system
        if p.info["pid"] in gunicorn:
            groups["gunicorn"] += t
        elif p.info["pid"] == os.getpid():
            groups["load generator"] += t
        elif p.info["name"] == "postgres":
            groups["postgres"] += t
        else:
            groups["other processes"] += t
    return groups


def statements_per_request(app, case_id: int, token: str, body: bytes) -> list[str]:
    """What one transition request sends to the database, authentication included, as the server runs it:
    SQL statements, plus the pool's pre-ping on checkout and the transaction's BEGIN and COMMIT."""
    from sqlalchemy import event

    from .common import counted
    from web.extensions import db

    with app.app_context():
        engine = db.engine
    extra: list[str] = []
    hooks = [(engine, "begin", lambda conn: extra.append("BEGIN")),
             (engine, "commit", lambda conn: extra.append("COMMIT")),
             (engine.pool, "checkout", lambda *a: extra.append("PING") if engine.pool._pre_ping else None)]
    for target, name, fn in hooks:
        event.listen(target, name, fn)
    try:
        with counted(engine) as statements:
            r = app.test_client().post(f"/api/v1/cases/{case_id}/transitions", data=body,
                                       headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    finally:
        for target, name, fn in hooks:
            event.remove(target, name, fn)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    return [*[e for e in extra if e == "PING"], *(["BEGIN"] if "BEGIN" in extra else []), *statements,
            *(["COMMIT"] if "COMMIT" in extra else [])]


def run(url: str, backend: str, quick: bool) -> list[Row]:
    from engine.clock import SystemClock
    from engine.models import AuditEvent
    from web.extensions import db

    if backend != "postgresql":
        return []
    seconds = 6.0 if quick else 20.0
    concurrency = 16
    n = int(seconds * 1000)  # the count bound: at most one request per prepared case, never more than 1,000/s
    app = make_app(url, clock=SystemClock())
    world = seed(app)
    case_ids, token = prepare(app, world, n)
    body = json.dumps({"trigger": "step1", "expected_version": 1, "data": {"note": "Bench"}}).encode()

    def transition(i: int) -> bytes:
        return (f"POST /api/v1/cases/{case_ids[i]}/transitions HTTP/1.1\r\nHost: bench\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body

    def healthz(i: int) -> bytes:
        return b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"

    request_statements = statements_per_request(app, case_ids.pop(), token, body)
    server = Server(url)
    try:
        log(f"  [{backend}] gunicorn -w 4 on {HOST}:{server.port}; {concurrency} client threads, ≤ {seconds:.0f} s, "
            f"≤ {n} requests each")
        base = load(server.port, healthz, n, seconds / 2, concurrency)
        log(f"  [{backend}] GET /healthz: {base['rate']:.0f}/s, {base['errors']} errors")
        before = cpu_groups(server)
        tx = load(server.port, transition, n, seconds, concurrency)
        after = cpu_groups(server)
        log(f"  [{backend}] transitions: {tx['rate']:.0f}/s, {tx['errors']} errors {tx['first_error']}")
    finally:
        server.stop()
    with app.app_context():
        stored = db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.trigger == "step1"))
        db.session.remove()
        db.engine.dispose()
    ratio = tx["rate"] / base["rate"]
    cpu = {k: (after[k] - before[k]) for k in before}
    per = {k: v / max(tx["ok"], 1) * 1e3 for k, v in cpu.items()}
    ours = per["gunicorn"] + per["postgres"] + per["load generator"]
    cores = os.cpu_count() or 1
    log(f"  [{backend}] CPU per transition: " + ", ".join(f"{k} {v:.1f} ms" for k, v in per.items()))
    rows = [Row("5 throughput", backend, "CPU per transition: gunicorn + PostgreSQL + load generator", ours, "ms",
                baseline=f"the budget for {TARGET}/s on {cores} cores", baseline_value=cores * 1e3 / TARGET,
                ratio=ours / (cores * 1e3 / TARGET), target="≤ 1× the budget",
                met=ours <= cores * 1e3 / TARGET,
                detail=(", ".join(f"{k} {v:.1f} ms" for k, v in per.items()) + f" per transition; other processes "
                        f"used {cpu['other processes'] / tx['elapsed']:.2f} of the {cores} cores during the run; "
                        f"an idle machine would top out near {cores * 1e3 / ours:.0f}/s"))]
    sql = [x for x in request_statements if x not in ("PING", "BEGIN", "COMMIT")]
    rows.append(Row("5 throughput", backend, "SQL statements per transition request (authentication included)",
                    len(sql), "statements", target="≤ 6", met=len(sql) <= 6,
                    detail=" ".join(request_statements) + f" ({len(request_statements)} round trips with the pool's "
                           "pre-ping, BEGIN and COMMIT)"))
    return rows + [Row("5 throughput", backend, "transitions/s, traject web --workers 4 (gunicorn sync), 16 loopback clients",
                tx["rate"], "/s", baseline="GET /healthz/s, same server and clients", baseline_value=base["rate"],
                ratio=ratio, target=f"≥ {TARGET}/s, no errors", met=tx["rate"] >= TARGET and tx["errors"] == 0,
                detail=(f"{tx['ok']} transitions in {tx['elapsed']:.1f} s, {tx['errors']} errors, {stored} in the "
                        f"database; latency p50 {tx['p50'] * 1e3:.0f} ms, p95 {tx['p95'] * 1e3:.0f} ms"))]
