"""The inbox (one list of open work per user) and the region overview (aggregates, never names)."""
from __future__ import annotations

import csv
import io

from sqlalchemy import event, update

from engine.models import Deadline, User
from flows import PLAN, fire, ok, open_internal, sign, to_guidance
from test_ladders import signal
from web.extensions import db


def reasons(api):
    return [(i["case_id"], i["reason"]) for i in ok(api.get("/inbox"))["items"]]


def test_the_aios_sees_the_plan_waiting_for_their_signature(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = fire(opleider, open_internal(opleider, world.users["aios"]), "analyse")
    case = fire(opleider, case, "discuss", {"core_problem": "x"})
    case = fire(opleider, case, "draft_plan", {"discussion_summary": "x"})
    doc = ok(opleider.post(f"/cases/{case['id']}/documents", json={"kind": "improvement_plan", "content": PLAN}), 201)
    sign(opleider, doc)
    [item] = ok(aios.get("/inbox"))["items"]
    assert (item["case_id"], item["reason"], item["document_id"]) == (case["id"], "signature_requested", doc["id"])
    assert "Verbeterplan" in item["detail"]
    sign(aios, doc)
    assert ok(aios.get("/inbox"))["items"] == []
    assert (case["id"], "action_required") in reasons(opleider)  # start_guidance is theirs now


def test_deadlines_due_and_overdue_reach_the_owner_and_the_next_level_first(world, clock):
    opleider, aios, coc = world.api("opleider"), world.api("aios"), world.api("coc")
    case = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    assert (case["id"], "deadline_due") not in reasons(opleider)  # term_end 1 June, horizon 14 days
    clock.advance(days=80)  # 21 May; tokens expire, so log in again
    opleider, coc = world.api("opleider"), world.api("coc")
    assert reasons(opleider)[0] == (case["id"], "deadline_due")
    assert (case["id"], "deadline_due") not in reasons(coc)
    with world.app.app_context():
        db.session.execute(update(Deadline).where(Deadline.case_id == case["id"]).values(status="overdue"))
        db.session.commit()
    assert reasons(opleider)[0] == (case["id"], "deadline_overdue")
    assert reasons(coc)[0] == (case["id"], "deadline_overdue")  # the next rung
    assert ok(world.api("coc_gelre").get("/inbox"))["items"] == []


def test_the_coc_chair_finds_the_escalation_at_their_level(world):
    from flows import with_rso_chair

    with_rso_chair(world)
    rso, coc, chair = world.api("rso"), world.api("coc"), world.api("rso_chair")
    case = fire(rso, signal(world), "discuss")
    assert (case["id"], "action_required") in reasons(rso)
    case = fire(rso, case, "escalate", {"reason": "x"})
    assert (case["id"], "escalation") in reasons(chair)  # the voorzitter RSO's level
    case = fire(chair, case, "escalate", {"reason": "x"})
    items = [i for i in ok(coc.get("/inbox"))["items"] if i["case_id"] == case["id"]]
    assert [i["reason"] for i in items] == ["escalation"]
    assert items[0]["detail"] == "Opgeschaald naar de COC-voorzitter"
    assert case["id"] not in [i["case_id"] for i in ok(rso.get("/inbox"))["items"]]
    assert ok(world.api("coc_gelre").get("/inbox"))["items"] == []


def test_the_overview_counts_without_names_and_hides_small_cells(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    for _ in range(6):
        open_internal(opleider, world.users["aios"])
    to_guidance(opleider, world.api("aios2"), open_internal(opleider, world.users["aios2"]))
    signal(world)
    body = ok(world.api("regio").get("/overview"))
    cells = {(c["workflow"], c["state"], c["institution"]): c for c in body["counts"]}
    assert cells[("internal_guidance", "signalled", "meander")]["count"] == 6
    assert cells[("internal_guidance", "guidance", "meander")] == {
        "workflow": "internal_guidance", "state": "guidance", "institution": "meander", "count": None,
        "display": "< 5"}
    assert cells[("escalation", "signalled", "meander")]["count"] == 1  # organisational: not suppressed
    assert body["escalation_levels"] == [{"workflow": "escalation", "state": "signalled", "count": 1}]
    # 7 trajectories (known only as 5-9) and 1 escalation: no difference of published numbers gives the 1 away
    assert body["trend"][-1] == {"month": "2026-03", "opened": None, "closed": 0, "opened_display": "6–10",
                                 "closed_display": "0"}
    text = str(body)
    for name in ("Aios", "Aios2", "aios@test.nl"):
        assert name not in text
    for who in ("rcoc", "rso", "admin"):
        assert world.api(who).get("/overview").status_code == 200
    for who in ("opleider", "aios", "coc", "hr"):
        response = world.api(who).get("/overview")
        assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"


def test_the_overview_exports_csv(world):
    open_internal(world.api("opleider"), world.api("aios").user_id)
    response = world.api("regio").get("/overview?format=csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["section", "workflow", "state", "institution", "count"]
    assert ["counts", "internal_guidance", "signalled", "meander", "< 5"] in rows


def test_diagrams_are_drawn_from_the_definition_with_the_current_state_highlighted(world):
    opleider = world.api("opleider")
    response = opleider.get("/workflows/escalation/diagram.svg")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    svg = response.get_data(as_text=True)
    assert svg.startswith("<svg") and "<style>" in svg and "Opgeschaald" in svg
    assert "http" not in svg.replace("http://www.w3.org/2000/svg", "")
    assert "Escalated" in opleider.get("/workflows/escalation/diagram.svg?lang=en").get_data(as_text=True)
    case = fire(opleider, open_internal(opleider, world.users["aios"]), "analyse")
    svg = opleider.get(f"/cases/{case['id']}/diagram.svg").get_data(as_text=True)
    assert svg.count('class="node visited current"') == 1 and "Analyse" in svg
    assert world.api("opleider_gelre").get(f"/cases/{case['id']}/diagram.svg").status_code == 404
    assert opleider.get("/workflows/nothing/diagram.svg").status_code == 404


def test_the_api_counts_every_case_and_the_pages_the_open_ones_of_the_same_overview(world):
    import re

    from flows import browser
    from test_web import page

    rso = world.api("rso")
    cases = [signal(world) for _ in range(7)]
    fire(rso, cases[0], "resolve", {"resolution": "Roosters aangepast"})
    body = ok(world.api("regio").get("/overview"))
    cells = {(c["workflow"], c["state"]): c["count"] for c in body["counts"] if c["institution"] == "meander"}
    assert (cells[("escalation", "signalled")], cells[("escalation", "resolved")]) == (6, 1)
    assert body["escalation_levels"] == [{"workflow": "escalation", "state": "signalled", "count": 6}]
    html = page(browser(world, "regio").get("/overview"))
    meander = re.search(r'<th scope="row">Meander MC</th>(.*?)</tr>', html).group(1)
    assert re.findall(r'<td class="num">([^<]*)</td>', meander) == ["6", "6", "0"]  # open only: 6, total 6, late 0


def test_the_trend_cannot_be_differenced_against_the_cells(world):
    """The attack: month total − visible cells = the hidden cell. With the personal part banded it yields a range."""
    opleider = world.api("opleider")
    for _ in range(6):
        open_internal(opleider, world.users["aios"])
    to_guidance(opleider, world.api("aios2"), open_internal(opleider, world.users["aios2"]))  # the hidden one
    body = ok(world.api("regio").get("/overview"))
    visible = sum(c["count"] for c in body["counts"] if c["count"] is not None and c["workflow"] == "internal_guidance")
    low, high = (int(x) for x in body["trend"][-1]["opened_display"].split("–"))
    candidates = [n for n in range(1, body["threshold"]) if low <= visible + n <= high]
    assert visible == 6 and len(candidates) >= 3, candidates
    csv = world.api("regio").get("/overview?format=csv").get_data(as_text=True)
    assert "opened,,2026-03,,5–9" in csv


def _many_deadlines(world, case_id: int, n: int) -> None:
    """n open deadlines of the opleider's, due within the horizon: n inbox items on one case."""
    from datetime import timedelta

    with world.app.app_context():
        now = world.app.extensions["traject"].clock.now()
        db.session.add_all(Deadline(case_id=case_id, kind="live", label=f"Termijn {i}", due_at=now + timedelta(days=1, hours=i),
                                    status="pending", owner_role="responsible", reminder_days=[],
                                    created_at=now) for i in range(n))
        db.session.commit()


def test_the_inbox_comes_in_pages_of_at_most_50_and_a_cursor_walks_them_all_once(world):
    opleider = world.api("opleider")
    case = open_internal(opleider, world.users["aios"])
    _many_deadlines(world, case["id"], 60)
    first = ok(opleider.get("/inbox"))
    assert len(first["items"]) == 50 and first["next"]
    second = ok(opleider.get(f"/inbox?cursor={first['next']}"))
    assert second["next"] is None
    items = first["items"] + second["items"]
    assert len(items) == 61  # 60 deadlines and the step the opleider owns
    assert len({(i["reason"], i["deadline_id"]) for i in items}) == 61  # none twice
    assert [i["due_at"] for i in items if i["reason"] == "deadline_due"] == sorted(
        i["due_at"] for i in items if i["reason"] == "deadline_due")
    small = ok(opleider.get("/inbox?limit=7"))
    assert small["items"] == first["items"][:7]
    assert ok(opleider.get(f"/inbox?limit=7&cursor={small['next']}"))["items"] == first["items"][7:14]
    for bad in ("limit=51", "limit=0", "cursor=bm9wZQ", "cursor=%%%"):
        assert opleider.get(f"/inbox?{bad}").status_code == 422, bad


def test_the_inbox_costs_the_same_statements_for_10_or_60_items(world, app):
    from test_transition_cost import counted

    opleider = world.api("opleider")
    case = open_internal(opleider, world.users["aios"])
    counts = []
    for n in (10, 50):
        _many_deadlines(world, case["id"], n)
        with app.app_context(), counted(db.engine) as statements:
            assert opleider.get("/inbox").status_code == 200
        counts.append(len(statements))
    assert counts[0] == counts[1]


def _clones(world, case_id: int, n: int) -> None:
    """n more open cases like `case_id` (same state, same responsible): cases whose step the opleider owns."""
    from sqlalchemy import func, select

    from engine.models import Case

    with world.app.app_context():
        table = Case.__table__
        row = dict(db.session.execute(select(table).where(table.c.id == case_id)).mappings().one())
        first = db.session.scalar(select(func.max(Case.id))) + 1
        db.session.execute(table.insert(), [dict(row, id=first + i, title=f"Begeleiding {i}") for i in range(n)])
        db.session.commit()


def test_an_owner_of_many_cases_gets_the_same_pages_for_the_same_statements(world, app):
    from test_transition_cost import counted

    from engine.inbox import inbox

    opleider = world.api("opleider")
    case = open_internal(opleider, world.users["aios"])
    _many_deadlines(world, case["id"], 5)
    counts, owned_reads = [], []

    def seen(conn, cursor, statement, params, context, executemany):
        if "FROM case_file" in statement and "ORDER BY case_file.id" in statement:
            owned_reads.append(statement)

    for more in (10, 150):
        _clones(world, case["id"], more)
        with app.app_context(), counted(db.engine) as statements:
            event.listen(db.engine, "before_cursor_execute", seen)
            try:
                assert opleider.get("/inbox?limit=7").status_code == 200
            finally:
                event.remove(db.engine, "before_cursor_execute", seen)
        counts.append(len(statements))
    assert counts[0] == counts[1]
    # The owned cases are read as far as the page goes, not all 160 of them.
    assert owned_reads and all(" LIMIT " in s for s in owned_reads)
    walked, cursor = [], None
    while True:  # small pages, each starting after the last: every item once, in the full list's order
        page = ok(opleider.get("/inbox?limit=7" + (f"&cursor={cursor}" if cursor else "")))
        walked += page["items"]
        cursor = page["next"]
        if not cursor:
            break
    with app.app_context():
        eng = app.extensions["traject"]
        whole = inbox(db.session, eng, eng.actor_for(db.session.get(User, world.users["opleider"])), eng.clock.now())
    assert [(i["reason"], i["case_id"], i["deadline_id"]) for i in walked] == [
        (i["reason"], i["case_id"], i["deadline_id"]) for i in whole]
    assert len(walked) == 5 + 1 + 160 and len({i["case_id"] for i in walked}) == 161
