"""4. The read side at scale: `traject demo --scale N`, then p50/p95 of the API's read endpoints.

The demo is loaded by the real command (`traject demo --scale N`, a subprocess, timed: it
must finish 10,000 within 2 minutes). Requests go through the Flask test client in this
process (the whole app: auth, scope, serialisation, access log; no HTTP server), as the
demo users who would call them. Statements per request are counted at two scales: they
must not grow with the number of cases. Baseline: GET /api/v1/me (token check + user)
in the same run.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from .common import ROOT, Row, counted, log, percentile

DEMO = "demo.traject.nl"
ENDPOINTS = [
    # (label, user, path)
    ("GET /api/v1/overview", f"regio-bestuur@{DEMO}", "/api/v1/overview"),
    ("GET /api/v1/cases (first page)", f"opleider.meander@{DEMO}", "/api/v1/cases"),
    # The opleider of Meander owns about 2,000 open cases at --scale 10000: the inbox is paged (50 a page).
    ("GET /api/v1/inbox", f"opleider.meander@{DEMO}", "/api/v1/inbox"),
    ("GET /api/v1/inbox (second page)", f"opleider.meander@{DEMO}", "/api/v1/inbox?cursor={inbox_next}"),
    ("GET /api/v1/inbox (COC chair)", f"coc-chair.meander@{DEMO}", "/api/v1/inbox"),
    ("GET /api/v1/cases/{id}", f"opleider.meander@{DEMO}", "/api/v1/cases/{case_id}"),
    # Every role's start page (HTML, session cookie), as the demo's user of that role.
    *[(f"GET / ({who} dashboard)", f"{who}@{DEMO}", "/") for who in (
        "opleider.meander", "coc-chair.meander", "rvb.meander", "hr.meander", "rso-board", "r-coc-chair",
        "regio-bestuur", "vertrouwenspersoon", "admin")],
]
BASELINE = ("GET /api/v1/me", f"opleider.meander@{DEMO}", "/api/v1/me")


def load_demo(url: str, instance: str, scale: int) -> tuple[float, list[str]]:
    """The schema, then `traject demo --scale N`; returns (seconds of the demo, its progress lines)."""
    from .common import create_schema

    env = {**os.environ, "TRAJECT_ENV": "development", "TRAJECT_INSTANCE": instance, "DATABASE_URL": url}
    traject = str(Path(sys.executable).with_name("traject"))
    create_schema(url)
    start = time.perf_counter()
    done = subprocess.run([traject, "demo", "--scale", str(scale)], env=env, check=True, capture_output=True,
                          text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    progress = [line for line in done.stdout.splitlines() if "synthetic cases" in line]
    return seconds, progress


def _app(url: str, instance: str):
    os.environ["TRAJECT_ENV"] = "development"
    from web.app import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": url, "TRAJECT_INSTANCE": instance, "WTF_CSRF_ENABLED": False})


def measure(url: str, instance: str, requests: int) -> dict:
    """{label: {"p50", "p95", "statements", "status"}} plus the data's size."""
    from engine.models import AuditEvent, Case, User
    from web.extensions import db

    app = _app(url, instance)
    password = (Path(instance) / "demo_password.txt").read_text().strip()
    client = app.test_client()
    tokens = {}
    with app.app_context():
        sizes = {"cases": db.session.scalar(select(func.count()).select_from(Case)),
                 "audit_events": db.session.scalar(select(func.count()).select_from(AuditEvent))}
        meander_opleider = db.session.scalar(select(User.id).where(User.email == f"opleider.meander@{DEMO}"))
        # A case of the opleider's, in the middle of the list.
        case_id = db.session.scalars(select(Case.id).where(Case.responsible_id == meander_opleider)
                                     .order_by(Case.id)).all()
        case_id = case_id[len(case_id) // 2]
        db.session.remove()
    clients = {}
    for label, user, path in [*ENDPOINTS, BASELINE]:
        if path == "/":  # a page: a browser's session cookie, one client per user
            if label not in clients:
                clients[label] = app.test_client()
                r = clients[label].post("/login", data={"email": user, "password": password})
                assert r.status_code == 303, (user, r.status_code)
            continue
        if user not in tokens:
            r = client.post("/api/v1/auth/tokens", json={"email": user, "password": password})
            assert r.status_code == 201, r.get_json()
            tokens[user] = {"Authorization": f"Bearer {r.get_json()['token']}"}
    inbox_next = client.get("/api/v1/inbox", headers=tokens[f"opleider.meander@{DEMO}"]).get_json()["next"]
    out = {"sizes": sizes}
    for label, user, path in [BASELINE, *ENDPOINTS]:
        if "{inbox_next}" in path and not inbox_next:
            continue  # fewer than 50 items: no second page (quick runs)
        path = path.format(case_id=case_id, inbox_next=inbox_next)
        headers = tokens.get(user, {})
        c = clients.get(label, client)
        for _ in range(3):  # warm: definitions, compiled statements, pool
            r = c.get(path, headers=headers)
            assert r.status_code == 200, (path, r.status_code, r.get_data(as_text=True)[:300])
        with app.app_context():
            with counted(db.engine) as statements:
                r = c.get(path, headers=headers)
        items = r.get_json(silent=True)
        size = len(items["items"]) if isinstance(items, dict) and "items" in items else (
            len(items) if isinstance(items, list) else None)
        times = []
        for _ in range(requests):
            start = time.perf_counter()
            r = c.get(path, headers=headers)
            times.append(time.perf_counter() - start)
            assert r.status_code == 200
        out[label] = {"p50": percentile(times, 50), "p95": percentile(times, 95), "min": min(times),
                      "statements": len(statements), "items": size, "n": requests}
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return out


def run(url_factory, backend: str, quick: bool) -> list[Row]:
    """url_factory(tag) gives a fresh empty database per scale."""
    import tempfile

    small, large = (300, 600) if quick else (1000, 10000)
    requests = 20 if quick else 100
    rows: list[Row] = []
    results = {}
    for scale in (small, large):
        url = url_factory(f"reads{scale}")
        instance = tempfile.mkdtemp(prefix=f"traject-bench-demo{scale}-")
        log(f"  [{backend}] traject demo --scale {scale}")
        seconds, progress = load_demo(url, instance, scale)
        log(f"  [{backend}] demo --scale {scale}: {seconds:.1f} s, {len(progress)} progress lines")
        results[scale] = measure(url, instance, requests)
        results[scale]["demo_seconds"] = seconds
        results[scale]["progress"] = progress
    big = results[large]
    rows.append(Row("4 reads", backend, f"traject demo --scale {large} ({big['sizes']['cases']:,} cases, "
                    f"{big['sizes']['audit_events']:,} audit events)", big["demo_seconds"], "s",
                    baseline="the target (120 s)", baseline_value=120.0, ratio=big["demo_seconds"] / 120,
                    target="< 120 s, with progress", met=big["demo_seconds"] < 120 and bool(big["progress"]),
                    detail=f"{len(big['progress'])} progress lines, last: {big['progress'][-1].strip()}"))
    base = big[BASELINE[0]]
    for label, _, _ in ENDPOINTS:
        if label not in big or label not in results[small]:
            continue
        r = big[label]
        s_small, s_large = results[small][label]["statements"], r["statements"]
        rows.append(Row("4 reads", backend, f"{label} p95 at {big['sizes']['cases']:,} cases", r["p95"] * 1e3, "ms",
                        baseline=f"{BASELINE[0]} p95", baseline_value=base["p95"] * 1e3,
                        ratio=r["p95"] / base["p95"], target="p95 < 50 ms", met=r["p95"] < 0.050,
                        detail=(f"p50 {r['p50'] * 1e3:.1f} ms, min {r['min'] * 1e3:.1f} ms, {r['n']} requests, "
                                f"{r['items']} items")))
        rows.append(Row("4 reads", backend, f"{label} statements at {small:,} → {large:,} synthetic cases",
                        s_large, "statements", baseline=f"statements at {small:,}", baseline_value=s_small,
                        ratio=s_large / s_small if s_small else None, target="constant", met=s_small == s_large))
    return rows
