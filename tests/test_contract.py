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


# -- every workflow walked with only the fields CONTRACT.md section 4 names -----------------------------

from test_gbt import IOP, later, signed  # noqa: E402


def test_intensify_opens_a_gbt_with_only_the_report(world):
    """CONTRACT.md names only `data.report` for intensify; the opened GBT's decision_moment defaults to
    progress_meeting and the aios is informed by the written decision Traject sends (docs/dates.md)."""
    opleider, aios = world.api("opleider"), world.api("aios")
    case = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    case = fire(opleider, case, "record_evaluation", evaluation(False))
    case = fire(opleider, case, "intensify", {"report": "Onvoldoende voortgang"})
    assert case["state"] == "intensified"
    gbt = ok(opleider.get(f"/cases/{case['child_ids'][0]}"))
    assert gbt["data"]["decision_moment"] == "progress_meeting"
    assert gbt["data"]["aios_informed_of_dispute_procedure"] is True
    assert {d["kind"] for d in gbt["documents"]} == {"rgs_notification", "gbt_decision"}


def test_the_internal_trajectory_closes_and_withdraws_with_the_contracts_fields(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    case = fire(opleider, case, "record_evaluation", evaluation(True))
    assert fire(opleider, case, "close", {"outcome_summary": "Verbeterd"})["state"] == "closed"
    other = open_internal(opleider, world.users["aios2"])
    assert fire(opleider, other, "withdraw", {"reason": "Ongegrond"})["state"] == "withdrawn"


def _gbt_assessed(world, outcome, **assessment):
    opleider, aios = world.api("opleider"), world.api("aios")
    gbt = ok(opleider.post("/cases", json={
        "workflow": "intensified_guidance", "institution": "meander", "subject_id": world.users["aios"],
        "data": {"decision_moment": "progress_meeting", "aios_informed_of_dispute_procedure": True}}), 201)
    signed(opleider, aios, gbt, "adjusted_iop", IOP)
    gbt = fire(opleider, gbt, "start")
    opleider, aios = later(world, days=70)
    signed(opleider, aios, gbt, "progress_report", {"meeting_date": "2026-05-09", "summary": "Besproken"})
    gbt = fire(opleider, gbt, "record_progress_meeting")
    opleider, aios = later(world, days=60)
    signed(opleider, aios, gbt, "suitability_assessment", {"assessment_date": "2026-07-09", "outcome": outcome,
                                                           "motivation": "Beoordeeld", **assessment})
    return fire(opleider, gbt, "assess")


def test_the_gbt_concludes_with_the_contracts_fields(world):
    gbt = _gbt_assessed(world, "suitable")
    assert fire(world.api("opleider"), gbt, "conclude")["state"] == "completed"


def test_the_gbt_extends_with_the_contracts_fields(world):
    gbt = _gbt_assessed(world, "extend", new_training_end_date="2027-03-01")
    gbt = fire(world.api("opleider"), gbt, "extend", {"new_training_end_date": "2027-03-01"})
    assert gbt["state"] == "extended"


def test_the_gbt_terminates_and_is_disputed_with_the_contracts_fields(world):
    gbt = _gbt_assessed(world, "unsuitable")
    gbt = fire(world.api("opleider"), gbt, "terminate", {"end_date": "2026-09-01"})
    assert gbt["state"] == "terminated"
    dispute = ok(world.api("aios").post("/cases", json={"workflow": "dispute", "institution": "meander",
                                                        "parent_id": gbt["id"], "data": {"grounds": "Onterecht"}}),
                 201)
    coc = world.api("coc")
    dispute = fire(coc, dispute, "acknowledge")
    assert fire(coc, dispute, "resolve", {"resolution": "Bemiddeld"})["state"] == "resolved"


def test_the_escalation_and_the_consultation_walk_with_the_contracts_fields(world):
    rso = world.api("rso")
    case = ok(world.api("opleider").post("/cases", json={"workflow": "escalation", "institution": "meander",
                                                         "data": {"description": "Supervisie ontbreekt"}}), 201)
    case = fire(rso, case, "discuss")
    case = fire(rso, case, "agree_actions", {"actions": [
        {"description": "Rooster aanpassen", "owner_role": "coc_chair", "due_date": "2026-04-01"}]})
    case = fire(rso, case, "monitor", {"review_date": "2026-05-01"})
    assert fire(rso, case, "resolve", {"resolution": "Opgelost"})["state"] == "resolved"
    consult = ok(rso.post("/cases", json={"workflow": "rso_consultation", "institution": "meander",
                                          "data": {"shortcoming": "Geen opleidingsvergadering",
                                                   "requirement": "quality"}}), 201)
    assert fire(rso, consult, "record_compliance", {"summary": "Vergadering gepland"})["state"] != "consultation"
