"""Two transitions on one case at the same moment: exactly one wins, the other gets 409.

PostgreSQL: the transition loads the case `FOR UPDATE OF case_file`, so the second request
waits for the first one's commit and then finds the version moved on. SQLite has no row
locks: there the compare-and-set on `version` in the UPDATE decides. The second test forces
the interleaving (the first request is held inside its transaction) and, on PostgreSQL,
watches the second one wait on the row lock.
"""
from __future__ import annotations

import threading
import time

from sqlalchemy import text

from engine.commands import Engine
from flows import ok, open_internal
from web.extensions import db


def _post(app, token, case_id, trigger, version=1):
    response = app.test_client().post(
        f"/api/v1/cases/{case_id}/transitions", headers={"Authorization": f"Bearer {token}"},
        json={"trigger": trigger, "expected_version": version,
              "data": {"reason": "dubbel"} if trigger == "withdraw" else {}})
    return response.status_code, response.get_json()


def _check(opleider, case_id, results):
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 409], results
    loser = next(body for status, body in results if status == 409)
    assert loser["error"]["code"] == "version_conflict"
    final = ok(opleider.get(f"/cases/{case_id}"))
    assert final["version"] == 2
    events = ok(opleider.get(f"/cases/{case_id}/events"))
    assert [e["type"] for e in events] == ["opened", "transition"]
    winner = next(body for status, body in results if status == 200)
    assert final["state"] == winner["state"] and events[1]["to_state"] == winner["state"]


def test_it_lets_exactly_one_of_two_concurrent_transitions_win(app, world):
    opleider = world.api("opleider")
    for _ in range(4):  # a few rounds: the threads meet at a barrier, the database decides
        case = open_internal(opleider, world.users["aios"])
        barrier = threading.Barrier(2)
        results = []

        def attempt(trigger):
            barrier.wait()
            results.append(_post(app, opleider.token, case["id"], trigger))

        threads = [threading.Thread(target=attempt, args=(t,)) for t in ("analyse", "withdraw")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        _check(opleider, case["id"], results)


def test_the_second_transition_waits_for_the_first_and_then_loses(app, world, monkeypatch):
    opleider = world.api("opleider")
    case = open_internal(opleider, world.users["aios"])
    inside, release = threading.Event(), threading.Event()
    original = Engine._check_step

    def held(self, ctx, step):
        if threading.current_thread().name == "first":
            inside.set()  # the case is loaded (and on PostgreSQL locked) inside the first transaction
            assert release.wait(30)
        return original(self, ctx, step)

    monkeypatch.setattr(Engine, "_check_step", held)
    results: dict[str, tuple] = {}
    first = threading.Thread(name="first", target=lambda: results.__setitem__(
        "first", _post(app, opleider.token, case["id"], "analyse")))
    second = threading.Thread(name="second", target=lambda: results.__setitem__(
        "second", _post(app, opleider.token, case["id"], "withdraw")))
    first.start()
    try:
        assert inside.wait(30)
        with app.app_context():
            postgres = db.engine.dialect.name == "postgresql"
        second.start()
        if postgres:
            # The second request blocks on the first one's row lock (FOR UPDATE), not on anything else.
            with app.app_context(), db.engine.connect() as conn:
                deadline = time.monotonic() + 20
                while True:
                    activity = conn.execute(text(
                        "SELECT wait_event_type, wait_event, query FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()")).all()
                    conn.rollback()
                    waiting = [(event, q) for kind, event, q in activity if kind == "Lock"]
                    if waiting or time.monotonic() > deadline:
                        break
                    time.sleep(0.01)
            # Waiting for the first transaction's row lock on the case (a row lock is awaited as its
            # holder's transaction id), in the SELECT that loads the case.
            assert len(waiting) == 1 and waiting[0][0] == "transactionid", activity
            assert waiting[0][1].startswith("SELECT case_file.id"), activity
            assert second.is_alive()
        else:
            second.join(30)  # no row locks: the second request runs through while the first is held ...
            assert not second.is_alive()
    finally:
        release.set()
        first.join(30)
        if second.ident is not None:
            second.join(30)
    _check(opleider, case["id"], list(results.values()))
    if postgres:  # ... the lock made the second one wait and then see version 2
        assert results["first"][0] == 200 and results["second"][0] == 409
        assert results["second"][1]["error"]["details"] == {"expected_version": 1, "current_version": 2}
    else:  # ... and the first one's compare-and-set finds the version moved on
        assert results["second"][0] == 200 and results["first"][0] == 409
