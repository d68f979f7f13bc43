"""Two transitions on one case at the same moment: exactly one wins, the other gets 409."""
from __future__ import annotations

import threading

from flows import open_internal


def test_it_lets_exactly_one_of_two_concurrent_transitions_win(app, world):
    opleider = world.api("opleider")
    case = open_internal(opleider, world.users["aios"])
    barrier = threading.Barrier(2)
    results = []

    def attempt(trigger):
        client = app.test_client()
        barrier.wait()
        response = client.post(f"/api/v1/cases/{case['id']}/transitions",
                               headers={"Authorization": f"Bearer {opleider.token}"},
                               json={"trigger": trigger, "expected_version": 1,
                                     "data": {"reason": "dubbel"} if trigger == "withdraw" else {}})
        results.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=attempt, args=(t,)) for t in ("analyse", "withdraw")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 409], results
    loser = next(body for status, body in results if status == 409)
    assert loser["error"]["code"] == "version_conflict"
    final = opleider.get(f"/cases/{case['id']}").get_json()
    assert final["version"] == 2
    events = opleider.get(f"/cases/{case['id']}/events").get_json()
    assert [e["type"] for e in events] == ["opened", "transition"]
