"""Dates that bind in the GBT (CONTRACT.md sections 4 and 6), each at its boundary day.

The test clock stands at 2 March 2026 (Amsterdam); a GBT decided that day starts on 9 March.
"""
from __future__ import annotations

import threading

import pytest
from pypdf import PdfReader
import io

from flows import browser, evaluation, fire, ok, open_internal, sign, to_guidance
from test_gbt import DECISION, IOP, add_doc, later, open_gbt, signed

ASSESSMENT = {"assessment_date": "2026-06-09", "motivation": "Beoordeeld door de opleiders van het RSO"}


def words(api, document_id) -> str:
    response = api.get(f"/documents/{document_id}/pdf")
    assert response.status_code == 200
    return " ".join("\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.data)).pages).split())


def started(world, **decision):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = open_gbt(opleider, world.users["aios"], **decision)
    signed(opleider, aios, case, "adjusted_iop", IOP)
    return fire(opleider, case, "start")


def with_meeting(world, case):
    opleider, aios = world.api("opleider"), world.api("aios")
    signed(opleider, aios, case, "progress_report", {"meeting_date": "2026-05-09", "summary": "Op koers"})
    return fire(opleider, case, "record_progress_meeting")


def assessed(world, outcome, **assessment):
    case = with_meeting(world, started(world))
    opleider, aios = later(world, days=99)  # 9 June 2026: 9 March + 3 months
    signed(opleider, aios, case, "suitability_assessment", {**ASSESSMENT, "outcome": outcome, **assessment})
    return fire(opleider, case, "assess")


# -- rule 1: the end date is the last day, also for the deadlines ------------------------------------


def test_the_midpoint_and_the_assessment_deadline_count_the_end_date_as_the_last_day(world):
    case = started(world)  # 9 March through 9 July: 123 days, day 62 is 9 May
    due = {d["kind"]: d["due_at"] for d in case["deadlines"]}
    assert due["progress_meeting"].startswith("2026-05-09T21:59")
    assert due["suitability_assessment"].startswith("2026-07-09T21:59")  # by the end of the last day


def test_the_refusal_names_the_first_and_last_possible_end_dates(world):
    opleider = world.api("opleider")
    case = open_gbt(opleider, world.users["aios"])
    body = add_doc(opleider, case, "adjusted_iop", {**IOP, "start_date": "2026-04-01", "end_date": "2026-10-01"}, 422)
    [message] = body["error"]["details"]["content.end_date"]
    # the dates as a reader writes them, not ISO dates
    assert "between 30 June 2026 and 30 September 2026" in message
    assert "tussen 30 juni 2026 en 30 september 2026" in message


# -- rule 2: no decision ahead, IOP not before the decision, meetings within the period -------------


def test_a_decision_may_be_dated_today_or_in_the_past_but_not_tomorrow(world):
    opleider = world.api("opleider")
    assert open_gbt(opleider, world.users["aios"], decision_date="2026-03-02")["state"] == "decided"
    past = ok(world.api("opleider_gelre").post("/cases", json={
        "workflow": "intensified_guidance", "institution": "gelre", "subject_id": world.users["aios_gelre"],
        "data": {**DECISION, "decision_date": "2019-05-01"}}), 201)  # recorded afterwards
    assert past["data"]["decision_date"] == "2019-05-01"
    body = ok(opleider.post("/cases", json={"workflow": "intensified_guidance", "institution": "meander",
                                            "subject_id": world.users["aios2"],
                                            "data": {**DECISION, "decision_date": "2026-03-03"}}), 422)
    assert body["error"]["details"] == {"data.decision_date": ["must not be in the future"]}


def test_intensify_refuses_a_decision_dated_tomorrow(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    case = fire(opleider, case, "record_evaluation", evaluation(False))
    body = fire(opleider, case, "intensify", {"report": "Onvoldoende", "decision_date": "2026-03-03"}, status=422)
    assert "data.decision_date" in body["error"]["details"]


@pytest.mark.parametrize("start, accepted", [("2026-02-28", False), ("2026-03-01", True)])
def test_the_adjusted_iop_does_not_start_before_the_decision(world, start, accepted):
    opleider = world.api("opleider")
    case = open_gbt(opleider, world.users["aios"], decision_date="2026-03-01")
    response = opleider.post(f"/cases/{case['id']}/documents", json={
        "kind": "adjusted_iop", "content": {**IOP, "start_date": start, "end_date": "2026-06-30"}})
    if accepted:
        assert response.status_code == 201
    else:
        assert response.status_code == 422
        [message] = response.get_json()["error"]["details"]["content.start_date"]
        assert "2026-03-01" in message


@pytest.mark.parametrize("day, accepted", [("2026-03-08", False), ("2026-03-09", True), ("2026-07-09", True),
                                           ("2026-07-10", False)])
def test_a_progress_meeting_lies_within_the_gbt_period(world, day, accepted):
    case = started(world)
    response = world.api("opleider").post(f"/cases/{case['id']}/documents", json={
        "kind": "progress_report", "content": {"meeting_date": day, "summary": "Besproken"}})
    assert response.status_code == (201 if accepted else 422), response.get_json()


# -- assess not before start + 3 months --------------------------------------------------------------


def test_assess_waits_for_the_minimum_term_to_the_day(world):
    case = with_meeting(world, started(world))
    opleider, aios = later(world, days=98)  # 8 June 2026, one day short of 9 March + 3 months
    signed(opleider, aios, case, "suitability_assessment", {**ASSESSMENT, "outcome": "suitable"})
    body = fire(opleider, case, "assess", status=422)
    [unmet] = body["error"]["details"]["unmet"]
    assert unmet["guard"] == "months_passed" and unmet["earliest"] == "2026-06-09"
    opleider, _aios = later(world, days=1)
    assert fire(opleider, case, "assess")["state"] == "assessed"


# -- extend and terminate take their dates from the signed assessment --------------------------------


def test_an_extension_assessment_must_name_the_new_end_date(world):
    case = with_meeting(world, started(world))
    body = add_doc(world.api("opleider"), case, "suitability_assessment", {**ASSESSMENT, "outcome": "extend"}, 422)
    assert "content.new_training_end_date" in body["error"]["details"]


def test_extend_without_a_date_takes_the_assessments_and_another_date_is_refused(world):
    case = assessed(world, "extend", new_training_end_date="2027-05-16")
    opleider = world.api("opleider")
    body = fire(opleider, case, "extend", {"new_training_end_date": "2020-02-01"}, status=422)
    assert body["error"]["details"]["unmet"][0]["expected"] == "2027-05-16"
    case = fire(opleider, case, "extend", {})
    assert case["data"]["new_training_end_date"] == "2027-05-16"
    [report] = [d for d in case["documents"] if d["kind"] == "rgs_outcome"]
    assert "16 mei 2027" in words(opleider, report["id"])


def test_extend_must_follow_the_records_expected_end(world, monkeypatch):
    from datetime import date

    import workflows.guards as guards

    case = assessed(world, "extend", new_training_end_date="2027-05-16")
    monkeypatch.setattr(guards, "record_expected_end", lambda ctx: date(2027, 5, 16))
    body = fire(world.api("opleider"), case, "extend", {}, status=422)
    assert body["error"]["details"]["unmet"][0]["guard"] == "after_record_end"
    monkeypatch.setattr(guards, "record_expected_end", lambda ctx: date(2027, 5, 15))
    assert fire(world.api("opleider"), case, "extend", {})["state"] == "extended"


@pytest.mark.parametrize("end, status", [("2026-06-08", 422), ("2026-06-09", 200)])
def test_a_termination_does_not_end_the_training_before_the_decision(world, end, status):
    case = assessed(world, "unsuitable")  # decided 9 June 2026
    body = fire(world.api("opleider"), case, "terminate", {"end_date": end}, status=status)
    if status == 422:
        assert body["error"]["details"]["unmet"][0]["guard"] == "not_before"


def test_a_termination_recorded_afterwards_counts_from_its_own_decision_date(world):
    case = assessed(world, "unsuitable")
    opleider = world.api("opleider")
    body = fire(opleider, case, "terminate", {"end_date": "2026-06-01", "termination_date": "2026-06-10"},
                status=422)
    assert "data.termination_date" in body["error"]["details"]  # not in the future
    case = fire(opleider, case, "terminate", {"end_date": "2026-06-01", "termination_date": "2026-05-31"})
    [notice] = [d for d in case["documents"] if d["kind"] == "termination_notice"]
    # 31 May + 4 weeks is Sunday 28 June: the window rolls to the next working day (CONTRACT.md section 8)
    assert notice["content"]["dispute_closes_on"] == "2026-06-29"


def test_the_termination_end_date_agrees_with_the_assessment_that_names_one(world):
    case = assessed(world, "unsuitable", end_date="2026-09-30")
    opleider = world.api("opleider")
    body = fire(opleider, case, "terminate", {"end_date": "2026-10-01"}, status=422)
    assert body["error"]["details"]["unmet"][0]["guard"] == "agrees_with"
    assert fire(opleider, case, "terminate", {})["data"]["end_date"] == "2026-09-30"


# -- every date a real date in 1900..2199, never a 500 ----------------------------------------------

BAD_DATES = ["2026-02-30", "2026-13-01", "1899-12-31", "2200-01-01", "26-03-01", "2026-3-1", "20260301",
             "2026-W10-1", 20260301, None, ["2026-03-01"], ""]


@pytest.mark.parametrize("bad", BAD_DATES)
def test_a_document_date_that_is_not_a_real_date_is_a_422(world, bad):
    opleider = world.api("opleider")
    case = open_gbt(opleider, world.users["aios"])
    body = add_doc(opleider, case, "adjusted_iop", {**IOP, "start_date": bad}, 422)
    assert "content.start_date" in body["error"]["details"]


@pytest.mark.parametrize("bad", [b for b in BAD_DATES if b not in (None, "")])
def test_a_transition_date_that_is_not_a_real_date_is_a_422(world, bad):
    case = assessed(world, "unsuitable")
    body = fire(world.api("opleider"), case, "terminate", {"end_date": bad}, status=422)
    assert body["error"]["code"] == "validation_error" and "data.end_date" in body["error"]["details"]


@pytest.mark.parametrize("good", ["1900-01-01", "2199-12-31"])
def test_the_first_and_last_days_of_the_range_are_dates(world, good):
    opleider = world.api("opleider")
    case = open_gbt(opleider, world.users["aios"], decision_date="1900-01-01")
    content = {**IOP, "start_date": good, "end_date": "2199-12-31" if good == "2199-12-31" else "1900-03-31"}
    response = opleider.post(f"/cases/{case['id']}/documents", json={"kind": "adjusted_iop", "content": content})
    # 2199-12-31 through 2199-12-31 is too short: a term error, not a date error
    assert response.status_code == (201 if good == "1900-01-01" else 422)
    assert "content.start_date" not in (response.get_json().get("error") or {}).get("details", {})


# -- rule 3: one open GBT per aios, periods over all GBTs --------------------------------------------


def test_a_second_open_gbt_for_the_aios_is_refused_however_it_is_opened(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    internal = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    internal = fire(opleider, internal, "record_evaluation", evaluation(False))
    first = open_gbt(opleider, world.users["aios"])
    body = fire(opleider, internal, "intensify", {"report": "Onvoldoende voortgang"}, status=422)
    assert [u["guard"] for u in body["error"]["details"]["unmet"]] == ["one_open_per_subject"]
    assert body["error"]["details"]["unmet"][0]["open_case_id"] == first["id"]
    # directly, linked to another case, by another opleider: the same
    body = ok(world.api("opleider2").post("/cases", json={
        "workflow": "intensified_guidance", "institution": "meander", "subject_id": world.users["aios"],
        "parent_id": internal["id"], "data": DECISION}), 422)
    assert body["error"]["code"] == "precondition_failed"
    # another aios is not held up
    assert open_gbt(opleider, world.users["aios2"])["state"] == "decided"


def test_the_period_cap_counts_every_gbt_of_the_aios_linked_or_not(world):
    first = assessed(world, "suitable")
    opleider = world.api("opleider")
    fire(opleider, first, "conclude")
    second = open_gbt(opleider, world.users["aios"])  # not linked to the first
    with world.app.app_context():
        from engine.models import Case
        from web.extensions import db

        db.session.get(Case, second["id"]).closed_at = db.session.get(Case, first["id"]).closed_at
        db.session.commit()
    body = ok(opleider.post("/cases", json={"workflow": "intensified_guidance", "institution": "meander",
                                            "subject_id": world.users["aios"], "data": DECISION}), 422)
    assert [u["guard"] for u in body["error"]["details"]["unmet"]] == ["max_periods"]


def test_two_concurrent_openings_for_one_aios_let_exactly_one_win(app, world):
    opleider = world.api("opleider")
    for subject in ("aios", "aios2"):
        barrier, results = threading.Barrier(2), []

        def attempt():
            barrier.wait()
            response = app.test_client().post("/api/v1/cases", headers={"Authorization": f"Bearer {opleider.token}"},
                                              json={"workflow": "intensified_guidance", "institution": "meander",
                                                    "subject_id": world.users[subject], "data": DECISION})
            results.append((response.status_code, response.get_json()))

        threads = [threading.Thread(target=attempt) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(status for status, _ in results) == [201, 422], results
        loser = next(body for status, body in results if status == 422)
        assert loser["error"]["details"]["unmet"][0]["guard"] == "one_open_per_subject"
    listed = ok(opleider.get("/cases?workflow=intensified_guidance"))["items"]
    assert len(listed) == 2


# -- rule 6: the written decision to the aios; one dispute per decision --------------------------------


def test_the_aios_receives_the_written_decision_with_the_dispute_windows_closing_date(world):
    opleider = world.api("opleider")
    case = open_gbt(opleider, world.users["aios"])
    [letter] = [d for d in case["documents"] if d["kind"] == "gbt_decision"]
    assert letter["content"]["dispute_closes_on"] == "2026-03-30"  # 2 March + 4 weeks
    text = words(world.api("aios"), letter["id"])
    for fact in ["Leerdoelen van het verbeterplan niet behaald", "uiterlijk op 30 maart 2026", "Geschillenprocedure",
                 "geschil aanhangig maken bij de voorzitter van de COC van Meander MC"]:
        assert fact in text, fact
    mails = [n for n in ok(opleider.get(f"/cases/{case['id']}/notifications")) if n["kind"] == "gbt_decided"]
    with world.app.app_context():
        from engine.models import Notification
        from web.extensions import db

        [row] = db.session.query(Notification).filter_by(kind="gbt_decided", recipient_role="subject").all()
        assert row.attachments == [{"type": "document_pdf", "document_id": letter["id"]}]
    assert {n["recipient"] for n in mails} >= {"aios@test.nl"}


def test_the_window_length_comes_from_the_dispute_definition(world, monkeypatch):
    # The window is the GBT's configured term `dispute_window` (guards.dispute_window_closes); both the
    # letter's number of weeks and its last day follow that term.
    from engine.commands import Engine

    term_spec = Engine.term_spec

    def six_weeks(self, session, case, name):
        spec = term_spec(self, session, case, name)
        return {**spec, "after": {"weeks": 6}} if name == "dispute_window" and spec else spec

    monkeypatch.setattr(Engine, "term_spec", six_weeks)
    case = open_gbt(world.api("opleider"), world.users["aios"])
    [letter] = [d for d in case["documents"] if d["kind"] == "gbt_decision"]
    assert (letter["content"]["dispute_weeks"], letter["content"]["dispute_closes_on"]) == ("6", "2026-04-13")


def dispute(world, case, status=201):
    return ok(world.api("aios").post("/cases", json={"workflow": "dispute", "institution": "meander",
                                                     "parent_id": case["id"], "data": {"grounds": "Onterecht"}}),
              status)


def test_one_dispute_per_decision(world):
    case = open_gbt(world.api("opleider"), world.users["aios"])
    dispute(world, case)
    body = dispute(world, case, 422)
    assert [u["guard"] for u in body["error"]["details"]["unmet"]] == ["one_dispute_per_decision"]


def test_the_termination_is_a_decision_of_its_own_for_a_dispute(world):
    case = started(world)
    dispute(world, case)  # against the decision to start the GBT
    case = with_meeting(world, case)
    opleider, aios = later(world, days=99)
    signed(opleider, aios, case, "suitability_assessment", {**ASSESSMENT, "outcome": "unsuitable"})
    case = fire(opleider, fire(opleider, case, "assess"), "terminate", {"end_date": "2026-09-01"})
    dispute(world, case)  # against the termination
    assert dispute(world, case, 422)["error"]["details"]["unmet"][0]["guard"] == "one_dispute_per_decision"


# -- rule 7: the outcome report leaves for the RGS once the opleider and the aios signed it ---------------


def rgs_rows(world, case_id):
    with world.app.app_context():
        from engine.models import Notification
        from web.extensions import db

        return [(n.kind, n.status) for n in db.session.query(Notification).filter_by(
            case_id=case_id, recipient_address="rgs@example.org").order_by(Notification.id)]


@pytest.mark.parametrize("outcome, trigger, data", [("suitable", "conclude", {}),
                                                    ("extend", "extend", {}),
                                                    ("unsuitable", "terminate", {"end_date": "2026-09-01"})])
def test_the_outcome_report_is_held_until_opleider_and_aios_signed_it(world, outcome, trigger, data):
    extra = {"new_training_end_date": "2027-05-16"} if outcome == "extend" else {}
    case = assessed(world, outcome, **extra)
    case = fire(world.api("opleider"), case, trigger, data)
    opleider, aios = world.api("opleider"), world.api("aios")
    [report] = [d for d in case["documents"] if d["kind"] == "rgs_outcome"]
    assert report["required_signers"] == [world.users["opleider"], world.users["aios"]]
    assert rgs_rows(world, case["id"])[-1][1] == "held"
    inbox = ok(aios.get("/inbox"))
    inbox = inbox["items"] if isinstance(inbox, dict) else inbox  # paged (CONTRACT.md section 9) or not yet
    assert any(i["case_id"] == case["id"] and i["reason"] == "signature_requested" for i in inbox)
    sign(opleider, report)
    assert rgs_rows(world, case["id"])[-1][1] == "held"
    sign(aios, report, "seen_not_agreed", "Ik deel de conclusie niet")
    assert rgs_rows(world, case["id"])[-1][1] == "pending"
    text = words(opleider, report["id"])
    assert "gezien, niet akkoord" in text and "Ik deel de conclusie niet" in text
    # other documents of the closed case stay closed for signing
    other = next(d for d in case["documents"] if d["kind"] == "adjusted_iop")
    assert other["signatures"]


def test_the_worker_delivers_the_report_only_after_the_signatures(world, runner):
    case = assessed(world, "suitable")
    case = fire(world.api("opleider"), case, "conclude")
    runner.invoke(["sweep"])
    assert rgs_rows(world, case["id"])[-1] == ("rgs_gbt_outcome", "held")
    [report] = [d for d in case["documents"] if d["kind"] == "rgs_outcome"]
    sign(world.api("opleider"), report)
    sign(world.api("aios"), report)
    runner.invoke(["sweep"])
    assert rgs_rows(world, case["id"])[-1] == ("rgs_gbt_outcome", "sent")


# -- rule 5: the joint decision of the RSO's opleiders --------------------------------------------------


def test_the_joint_decision_is_recorded_in_the_letters_or_said_to_be_missing(world):
    opleider = world.api("opleider")
    joint = {"date": "2026-02-26", "consulted": "Opleiders van Meander, Gelre en UMC Utrecht"}
    case = open_gbt(opleider, world.users["aios"], joint_decision=joint)
    [letter] = [d for d in case["documents"] if d["kind"] == "rgs_notification"]
    assert "op 26 februari 2026; geraadpleegd: Opleiders van Meander, Gelre en UMC Utrecht" in words(
        opleider, letter["id"])
    other = open_gbt(opleider, world.users["aios2"])
    [letter] = [d for d in other["documents"] if d["kind"] == "gbt_decision"]
    assert "Gezamenlijk besluit van de opleiders van het RSO: niet vastgelegd" in words(opleider, letter["id"])


def test_the_joint_decision_at_termination_is_its_own(world):
    case = assessed(world, "unsuitable")
    joint = {"date": "2026-06-05", "consulted": "Kerngroep opleiders RSO"}
    case = fire(world.api("opleider"), case, "terminate", {"end_date": "2026-09-01",
                                                           "termination_joint_decision": joint})
    for kind in ("termination_notice", "rgs_outcome"):
        [doc] = [d for d in case["documents"] if d["kind"] == kind]
        assert "op 5 juni 2026; geraadpleegd: Kerngroep opleiders RSO" in words(world.api("opleider"), doc["id"])


def test_an_incomplete_joint_decision_is_named(world):
    body = ok(world.api("opleider").post("/cases", json={
        "workflow": "intensified_guidance", "institution": "meander", "subject_id": world.users["aios"],
        "data": {**DECISION, "joint_decision": {"date": "2026-02-26"}}}), 422)
    assert body["error"]["details"]["unmet"][0]["field"] == "data.joint_decision.consulted"


def test_the_pages_require_the_joint_decision_that_the_api_may_leave_out(world):
    from test_web import post, posted

    client = browser(world, "opleider")
    subject = f"{world.institutions['meander']}:{world.users['aios']}"
    fields = {"workflow": "intensified_guidance", "subject": subject, "data.decision_moment": "progress_meeting",
              "data.aios_informed_of_dispute_procedure": "1", "data.reasons": "Onvoldoende voortgang"}
    html = posted(client, "/cases/new", fields, 422)
    assert "Vul dit in: het wordt bij het besluit vastgelegd." in html
    response, _ = post(client, "/cases/new", {**fields, "data.joint_decision.date": "2026-02-26",
                                              "data.joint_decision.consulted": "Kerngroep RSO"})
    assert response.status_code == 303
    with world.app.app_context():
        from engine.models import Case
        from web.extensions import db

        [case] = db.session.query(Case).all()
        assert case.data["joint_decision"] == {"date": "2026-02-26", "consulted": "Kerngroep RSO"}
