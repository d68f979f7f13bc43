"""The intern begeleidingstraject end to end through HTTP, as an opleider and an aios would walk it."""
from __future__ import annotations

from flows import PLAN, evaluation, fire, ok, open_internal, sign, to_guidance, to_plan


def test_it_walks_from_signalled_to_closed_with_the_aios_signing(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = open_internal(opleider, world.users["aios"])
    assert case["state"] == "signalled" and case["version"] == 1
    assert case["available_triggers"] == ["analyse", "withdraw"]
    case = fire(opleider, case, "analyse")
    case = fire(opleider, case, "discuss", {"core_problem": "Onvoldoende structuur"})
    case = fire(opleider, case, "draft_plan", {"discussion_summary": "Oorzaken besproken"})
    doc = ok(opleider.post(f"/cases/{case['id']}/documents", json={"kind": "improvement_plan", "content": PLAN}), 201)
    assert doc["version"] == 1 and doc["signatures"] == []
    assert doc["required_signers"] == [world.users["opleider"], world.users["aios"]]
    sign(opleider, doc)
    sign(aios, doc, "seen_not_agreed", "Ik zie het anders, maar doe mee.")
    case = fire(opleider, case, "start_guidance", {"iop_updated": True})
    assert case["state"] == "guidance"
    [deadline] = case["deadlines"]
    assert deadline["kind"] == "plan_term" and deadline["status"] == "pending"
    assert deadline["due_at"].startswith("2026-06-01T21:59")  # 23:59 Amsterdam summer time, in UTC
    case = fire(opleider, case, "record_evaluation", evaluation(True))
    case = fire(opleider, case, "close", {"outcome_summary": "Leerdoelen behaald"})
    assert case["state"] == "closed" and case["closed_at"] and case["version"] == 7
    assert case["deadlines"][0]["status"] == "met"
    assert case["available_triggers"] == []

    events = ok(aios.get(f"/cases/{case['id']}/events"))
    assert [e["trigger"] for e in events if e["type"] == "transition"] == [
        "analyse", "discuss", "draft_plan", "start_guidance", "record_evaluation", "close"]
    assert [e["type"] for e in events][:1] == ["opened"]
    assert sum(e["type"] == "document_signed" for e in events) == 2
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    for previous, event in zip(events, events[1:]):
        assert event["prev_hash"] == previous["hash"]
    signed = [e for e in events if e["type"] == "document_signed"]
    assert signed[1]["data"]["verdict"] == "seen_not_agreed"
    assert signed[1]["data"]["comment"] == "Ik zie het anders, maar doe mee."


def test_it_records_each_evaluation_and_keeps_them(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    case = fire(opleider, case, "record_evaluation", evaluation(False, "2026-04-01"))
    case = fire(opleider, case, "record_evaluation", evaluation(True, "2026-05-01"))
    assert case["state"] == "guidance"
    assert [e["date"] for e in case["data"]["evaluations"]] == ["2026-04-01", "2026-05-01"]
    assert "evaluation" not in case["data"]


def test_it_intensifies_into_a_linked_gbt_case(world):
    opleider, aios, coc = world.api("opleider"), world.api("aios"), world.api("coc")
    case = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    case = fire(opleider, case, "record_evaluation", evaluation(False))
    case = fire(opleider, case, "intensify", {
        "report": "Onvoldoende voortgang", "decision_moment": "progress_meeting",
        "aios_informed_of_dispute_procedure": True, "decision_date": "2026-03-02", "reasons": "Geen verbetering"})
    assert case["state"] == "intensified"
    [child_id] = case["child_ids"]
    child = ok(aios.get(f"/cases/{child_id}"))
    assert child["workflow"] == "intensified_guidance" and child["state"] == "decided"
    assert child["parent_id"] == case["id"] and child["subject_id"] == world.users["aios"]
    assert child["data"]["report"] == "Onvoldoende voortgang"
    assert ok(coc.get(f"/cases/{child_id}"))["id"] == child_id
    notifications = ok(opleider.get(f"/cases/{child_id}/notifications"))
    assert {(n["recipient_role"], n["recipient"]) for n in notifications} >= {
        ("coc_chair", "coc@test.nl"), ("hr", "hr@test.nl"), ("subject", "aios@test.nl"),
        ("external:rgs", "rgs@example.org")}
    assert all(n["status"] == "pending" for n in notifications)  # nothing is sent inside the request


def test_it_refuses_to_intensify_without_an_insufficient_evaluation_and_names_every_gap(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    case = fire(opleider, case, "record_evaluation", evaluation(True))
    body = fire(opleider, case, "intensify", {}, status=422)
    assert body["error"]["code"] == "precondition_failed"
    fields = {u["field"] for u in body["error"]["details"]["unmet"]}
    # CONTRACT.md section 4 names only the report: decision_moment, aios_informed_of_dispute_procedure,
    # decision_date and reasons have defaults (docs/dates.md)
    assert fields == {"data.report", "data.evaluations"}
    assert all(u["message"] and u["message_nl"] for u in body["error"]["details"]["unmet"])
    assert ok(opleider.get(f"/cases/{case['id']}"))["version"] == case["version"]


def test_it_withdraws_an_unfounded_signal(world):
    opleider = world.api("opleider")
    case = open_internal(opleider, world.users["aios"])
    case = fire(opleider, case, "analyse")
    case = fire(opleider, case, "withdraw", {"reason": "Signaal ongegrond"})
    assert case["state"] == "withdrawn" and case["closed_at"]


def test_it_needs_a_plan_signed_by_both_and_an_updated_iop_to_start_guidance(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case, doc = to_plan(opleider, aios, open_internal(opleider, world.users["aios"]))
    sign(opleider, doc)
    body = fire(opleider, case, "start_guidance", {"iop_updated": False}, status=422)
    unmet = {u["guard"]: u for u in body["error"]["details"]["unmet"]}
    assert set(unmet) == {"input.must_be", "document_signed"}
    assert unmet["document_signed"]["waiting_for"] == [world.users["aios"]]
    assert "nog niet door iedereen ondertekend" in unmet["document_signed"]["message_nl"]


def test_an_edit_is_a_new_version_whose_signatures_start_empty(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case, doc = to_plan(opleider, aios, open_internal(opleider, world.users["aios"]))
    sign(opleider, doc)
    sign(aios, doc)
    v2 = ok(opleider.post(f"/cases/{case['id']}/documents",
                          json={"kind": "improvement_plan", "content": {**PLAN, "support": "Twee supervisoren"}}), 201)
    assert v2["version"] == 2 and v2["signatures"] == [] and v2["sha256"] != doc["sha256"]
    body = fire(opleider, case, "start_guidance", {"iop_updated": True}, status=422)
    assert [u["guard"] for u in body["error"]["details"]["unmet"]] == ["document_signed"]
    old = ok(aios.post(f"/documents/{doc['id']}/signatures", json={"verdict": "agreed"}), 409)
    assert old["error"]["code"] == "transition_not_allowed"
    assert ok(opleider.get(f"/documents/{doc['id']}"))["signatures"][0]["document_sha256"] == doc["sha256"]
