"""Clients written to CONTRACT.md: the intensified guidance trajectory opens with only the fields it names.

`decision_date` defaults to the day of opening and is never in the future; `reasons` defaults to the
carried report of insufficient progress (CONTRACT.md section 4).
"""
from __future__ import annotations

from flows import evaluation, fire, ok, open_internal, to_guidance


def test_a_gbt_opens_directly_with_only_the_contracts_fields(world):
    opleider = world.api("opleider")
    case = ok(opleider.post("/cases", json={
        "workflow": "intensified_guidance", "institution": "meander", "subject_id": world.users["aios"],
        "data": {"decision_moment": "progress_meeting", "aios_informed_of_dispute_procedure": True}}), 201)
    assert case["state"] == "decided"
    assert case["data"]["decision_date"] == "2026-03-02"  # the test clock's day, in Amsterdam


def test_intensify_carries_the_report_as_reasons_and_today_as_the_decision_date(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    case = fire(opleider, case, "record_evaluation", evaluation(False))
    case = fire(opleider, case, "intensify", {"report": "Onvoldoende voortgang in zelfstandigheid",
                                              "decision_moment": "progress_meeting",
                                              "aios_informed_of_dispute_procedure": True})
    [child_id] = case["child_ids"]
    gbt = ok(opleider.get(f"/cases/{child_id}"))
    assert gbt["data"]["reasons"] == "Onvoldoende voortgang in zelfstandigheid"
    assert gbt["data"]["decision_date"] == "2026-03-02"


def test_a_decision_dated_in_the_future_is_refused(world):
    body = ok(world.api("opleider").post("/cases", json={
        "workflow": "intensified_guidance", "institution": "meander", "subject_id": world.users["aios"],
        "data": {"decision_moment": "progress_meeting", "aios_informed_of_dispute_procedure": True,
                 "decision_date": "2026-03-03"}}), 422)
    assert "data.decision_date" in body["error"]["details"]
