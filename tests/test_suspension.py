"""Opschorting of a running GBT for illness or leave: recorded, told, shown, and the clock stops —
its deadlines wait and then move, with the IOP's end date, by the suspended days."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flows import browser, fire, ok
from test_gbt import IOP, open_gbt, signed


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T10:00:00").replace(tzinfo=timezone.utc)


def running(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = open_gbt(opleider, world.users["aios"])
    signed(opleider, aios, case, "adjusted_iop", IOP)
    return fire(world.api("opleider"), case, "start")


def open_deadlines(case) -> dict:
    return {d["kind"]: d["due_at"][:10] for d in case["deadlines"] if d["status"] in ("pending", "reminded", "overdue")}


def told(api, case, kind) -> set:
    return {n["recipient_role"] for n in ok(api.get(f"/cases/{case['id']}/notifications")) if n["kind"] == kind}


def test_a_suspension_stops_the_deadlines_and_tells_the_aios_and_the_coc_chair(world, clock):
    case = running(world)
    assert open_deadlines(case) == {"progress_meeting": "2026-05-09", "suitability_assessment": "2026-07-09"}
    clock.at = at("2026-04-01")
    case = fire(world.api("opleider"), case, "suspend", {"suspension_reason": "illness", "suspended_from": "2026-03-25",
                                            "suspension_note": "Ziekgemeld via de bedrijfsarts"})
    assert case["state"] == "suspended" and open_deadlines(case) == {}
    assert case["data"]["suspension_reason"] == "illness" and case["data"]["suspended_from"] == "2026-03-25"
    assert told(world.api("opleider"), case, "gbt_suspended") == {"subject", "coc_chair"}
    from web.jobs.passes import one_pass

    with world.app.app_context():
        summary = one_pass(world.app, at("2026-07-10"))  # both old due days have passed: nobody is told
    assert summary["overdue"] == 0 and summary["reminded"] == 0
    event = ok(world.api("opleider").get(f"/cases/{case['id']}/events"))[-1]
    assert event["trigger"] == "suspend" and event["data"]["input"]["suspension_reason"] == "illness"


def test_resuming_moves_the_deadlines_and_the_iop_end_date_by_the_suspended_days(world, clock, runner):
    case = running(world)
    clock.at = at("2026-04-01")
    case = fire(world.api("opleider"), case, "suspend", {"suspension_reason": "leave", "suspended_from": "2026-03-25"})
    clock.at = at("2026-04-08")
    case = fire(world.api("opleider"), case, "resume")  # resumed today: 14 days suspended
    assert case["state"] == "active"
    assert open_deadlines(case) == {"progress_meeting": "2026-05-23", "suitability_assessment": "2026-07-23"}
    assert case["data"]["iop_end_date"] == "2026-07-23" and case["data"]["paused_days"] == 14
    assert told(world.api("opleider"), case, "gbt_resumed") == {"subject", "coc_chair"}
    # A second suspension adds up, from the moved date.
    clock.at = at("2026-05-01")
    case = fire(world.api("opleider"), case, "suspend", {"suspension_reason": "illness"})
    clock.at = at("2026-05-04")
    case = fire(world.api("opleider"), case, "resume")
    assert case["data"]["iop_end_date"] == "2026-07-26" and case["data"]["paused_days"] == 17
    assert open_deadlines(case)["suitability_assessment"] == "2026-07-26"
    assert runner.invoke(["audit", "verify", "--case", str(case["id"])]).exit_code == 0


def test_a_resumption_before_the_suspension_is_refused_and_the_clock_stays_stopped(world, clock):
    case = running(world)
    clock.at = at("2026-04-01")
    case = fire(world.api("opleider"), case, "suspend", {"suspension_reason": "other", "suspended_from": "2026-04-01"})
    body = fire(world.api("opleider"), case, "resume", {"resumed_on": "2026-03-31"}, status=422)
    assert [u["guard"] for u in body["error"]["details"]["unmet"]] == ["not_before"]
    future = (clock.at + timedelta(days=2)).date().isoformat()
    assert "data.resumed_on" in fire(world.api("opleider"), case, "resume", {"resumed_on": future}, status=422)["error"]["details"]
    assert ok(world.api("opleider").get(f"/cases/{case['id']}"))["state"] == "suspended"


def test_only_the_opleider_suspends_and_a_reason_is_required(world):
    case = running(world)
    assert fire(world.api("aios"), case, "suspend", {"suspension_reason": "illness"}, status=403)
    body = fire(world.api("opleider"), case, "suspend", {}, status=422)
    assert [u["field"] for u in body["error"]["details"]["unmet"]] == ["data.suspension_reason"]


def test_the_case_page_shows_the_suspension(world, clock):
    case = running(world)
    clock.at = at("2026-04-01")
    fire(world.api("opleider"), case, "suspend", {"suspension_reason": "leave"})
    html = browser(world, "aios").get(f"/cases/{case['id']}").get_data(as_text=True)
    assert "Opgeschort" in html and "Reden van opschorting" in html and "Verlof" in html
    assert "Opgeschort sinds" in html and "woensdag 1 april 2026" in html
    clock.at = at("2026-04-08")
    fire(world.api("opleider"), ok(world.api("opleider").get(f"/cases/{case['id']}")), "resume")
    html = browser(world, "aios").get(f"/cases/{case['id']}").get_data(as_text=True)
    assert "Einddatum GBT (na opschorting)" in html and "donderdag 16 juli 2026" in html
    assert "verschoven met 7 dagen opschorting" in html and "Opgeschort sinds" not in html
