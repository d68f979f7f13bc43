"""The geïntensiveerd begeleidingstraject: every path, every rejected precondition, letters and PDFs."""
from __future__ import annotations

import io
import json
import zipfile
import subprocess
import sys

import pytest
from pypdf import PdfReader

from flows import fire, ok, sign

DECISION = {"decision_moment": "progress_meeting", "decision_date": "2026-03-02",
            "reasons": "Leerdoelen van het verbeterplan niet behaald", "aios_informed_of_dispute_procedure": True}
IOP = {"goals": ["Zelfstandig anesthesie bij ASA 1-2 (mei 2026)"], "conditions": "Vaste supervisor",
       "start_date": "2026-03-09", "end_date": "2026-07-09", "assessment_method": "KPB's en 360-graden feedback"}


def pdf_text(api, document_id) -> str:
    response = api.get(f"/documents/{document_id}/pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.data)).pages)


def open_gbt(opleider, aios_id, **extra):
    return ok(opleider.post("/cases", json={"workflow": "intensified_guidance", "institution": "meander",
                                            "subject_id": aios_id, "title": "GBT", "data": {**DECISION, **extra}}),
              201)


def add_doc(api, case, kind, content, status=201):
    return ok(api.post(f"/cases/{case['id']}/documents", json={"kind": kind, "content": content}), status)


def signed(opleider, aios, case, kind, content):
    doc = add_doc(opleider, case, kind, content)
    sign(opleider, doc)
    sign(aios, doc)
    return doc


def later(world, **delta):
    """The clock moved on (tokens expire meanwhile): fresh sessions for the opleider and the aios."""
    world.app.extensions["traject"].clock.advance(**delta)
    return world.api("opleider"), world.api("aios")


def to_assessed(world, outcome, **assessment):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = open_gbt(opleider, world.users["aios"])
    signed(opleider, aios, case, "adjusted_iop", IOP)
    case = fire(opleider, case, "start")
    opleider, aios = later(world, days=65)  # 6 May 2026
    signed(opleider, aios, case, "progress_report", {"meeting_date": "2026-05-06", "summary": "Op koers"})
    case = fire(opleider, case, "record_progress_meeting")
    opleider, aios = later(world, days=65)  # 10 July 2026, after the minimum term
    signed(opleider, aios, case, "suitability_assessment", {
        "assessment_date": "2026-07-09", "outcome": outcome, "motivation": "Beoordeeld door de opleiders",
        **assessment})
    return fire(opleider, case, "assess")


def test_opening_writes_the_rgs_letter_and_tells_coc_hr_and_the_aios(world):
    opleider = world.api("opleider")
    case = open_gbt(opleider, world.users["aios"])
    assert case["state"] == "decided"
    [letter] = [d for d in case["documents"] if d["kind"] == "rgs_notification"]
    assert letter["content"]["decision_date"] == "2026-03-02" and letter["content"]["aios"] == "Aios"
    notifications = ok(opleider.get(f"/cases/{case['id']}/notifications"))
    by_role = {}
    for n in notifications:
        by_role.setdefault(n["recipient_role"], []).append(n)
    assert [n["recipient"] for n in by_role["external:rgs"]] == ["rgs@example.org"]
    assert [n["recipient"] for n in by_role["coc_chair"]] == ["coc@test.nl"]
    assert [n["recipient"] for n in by_role["hr"]] == ["hr@test.nl"]
    assert [n["recipient"] for n in by_role["subject"]] == ["aios@test.nl"]
    with world.app.app_context():
        from engine.models import Notification
        from web.extensions import db

        rgs = db.session.query(Notification).filter_by(recipient_role="external:rgs").one()
        assert rgs.attachments == [{"type": "document_pdf", "document_id": letter["id"]}]
    text = pdf_text(opleider, letter["id"])
    for fact in ["Schriftelijke melding GBT aan de RGS", "Aios", "Meander MC", "2 maart 2026",
                 "Leerdoelen van het verbeterplan niet behaald", "een voortgangsgesprek", letter["sha256"][:32]]:
        assert fact in text.replace("\n", " "), fact


def test_opening_requires_the_decision_and_the_dispute_pointer(world):
    opleider = world.api("opleider")
    body = ok(opleider.post("/cases", json={"workflow": "intensified_guidance", "institution": "meander",
                                            "subject_id": world.users["aios"],
                                            "data": {"aios_informed_of_dispute_procedure": False}}), 422)
    fields = {u["field"] for u in body["error"]["details"]["unmet"]}
    # decision_date and reasons have defaults (CONTRACT.md section 4): never required of a client
    assert fields == {"data.decision_moment", "data.aios_informed_of_dispute_procedure"}


@pytest.mark.parametrize("start, end, accepted", [
    # The end date is the last day (CONTRACT.md section 4): end + 1 day between start + 3 and + 6 months
    ("2026-02-01", "2026-04-30", True),   # three months in Dutch
    ("2026-02-01", "2026-04-29", False),
    ("2025-12-01", "2026-05-31", True),   # six months
    ("2025-12-01", "2026-06-01", False),  # six months and a day
    ("2026-01-31", "2026-04-29", True),   # 31 January + 3 months clamps to 30 April
    ("2026-01-31", "2026-04-28", False),
    ("2026-01-31", "2026-07-30", True),
    ("2026-01-31", "2026-07-31", False),
    ("2026-03-09", "2026-05-09", False),  # two months
])
def test_the_adjusted_iop_runs_three_to_six_calendar_months(world, start, end, accepted):
    opleider = world.api("opleider")
    case = open_gbt(opleider, world.users["aios"], decision_date="2025-11-20")  # recorded afterwards
    response = opleider.post(f"/cases/{case['id']}/documents",
                             json={"kind": "adjusted_iop", "content": {**IOP, "start_date": start, "end_date": end}})
    if accepted:
        assert response.status_code == 201
    else:
        body = ok(response, 422)
        [message] = body["error"]["details"]["content.end_date"]
        assert "at least 3 and at most 6 calendar months" in message and "kalendermaanden" in message


def test_start_creates_midpoint_and_end_deadlines_with_reminders(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = open_gbt(opleider, world.users["aios"])
    body = fire(opleider, case, "start", status=422)
    assert [u["guard"] for u in body["error"]["details"]["unmet"]] == ["document_signed"]
    signed(opleider, aios, case, "adjusted_iop", IOP)
    case = fire(opleider, case, "start")
    deadlines = {d["kind"]: d for d in case["deadlines"]}
    assert deadlines["progress_meeting"]["due_at"].startswith("2026-05-09T21:59")  # midpoint, 23:59 CEST
    assert deadlines["suitability_assessment"]["due_at"].startswith("2026-07-09T21:59")
    with world.app.app_context():
        from engine.models import Deadline
        from web.extensions import db

        row = db.session.query(Deadline).filter_by(kind="suitability_assessment").one()
        assert row.reminder_days == [14, 3]
        assert row.remind_at.isoformat().startswith("2026-06-25T07:00")  # 09:00 Amsterdam, 14 days before


def test_assess_needs_a_signed_progress_report_and_a_signed_assessment(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = open_gbt(opleider, world.users["aios"])
    signed(opleider, aios, case, "adjusted_iop", IOP)
    case = fire(opleider, case, "start")
    assert fire(opleider, case, "record_progress_meeting", status=422)["error"]["code"] == "precondition_failed"
    body = fire(opleider, case, "assess", status=422)
    assert {u.get("kind") for u in body["error"]["details"]["unmet"]} == {
        "progress_report", "suitability_assessment", None}  # None: the minimum term (test_gbt_dates.py)
    report = add_doc(opleider, case, "progress_report", {"meeting_date": "2026-05-09", "summary": "Redelijk"})
    sign(opleider, report)
    assert fire(opleider, case, "record_progress_meeting", status=422)["error"]["details"]["unmet"][0][
        "waiting_for"] == [world.users["aios"]]
    sign(aios, report, "seen_not_agreed", "Te negatief")
    case = fire(opleider, case, "record_progress_meeting")
    assert {d["kind"]: d["status"] for d in case["deadlines"]}["progress_meeting"] == "met"


def test_conclude_reports_the_outcome_to_the_rgs(world):
    case = to_assessed(world, "suitable")
    opleider = world.api("opleider")
    assert fire(opleider, case, "extend", {"new_training_end_date": "2027-01-01"}, status=422)[
        "error"]["code"] == "precondition_failed"
    case = fire(opleider, case, "conclude")
    assert case["state"] == "completed"
    [letter] = [d for d in case["documents"] if d["kind"] == "rgs_outcome"]
    text = pdf_text(opleider, letter["id"]).replace("\n", " ")
    assert "Uitkomst: geschikt" in text and "9 juli 2026" in text
    # held until the opleider and the aios both signed the report (test_gbt_dates.py)
    recipients = {(n["recipient"], n["status"]) for n in ok(opleider.get(f"/cases/{case['id']}/notifications"))
                  if n["kind"] == "rgs_gbt_outcome"}
    assert recipients == {("rgs@example.org", "held")}


def test_extend_records_the_new_training_end_date_for_the_rgs(world):
    case = to_assessed(world, "extend", new_training_end_date="2027-03-01")
    opleider = world.api("opleider")
    body = fire(opleider, case, "extend", {"new_training_end_date": "2020-02-01"}, status=422)
    assert [(u["guard"], u["field"]) for u in body["error"]["details"]["unmet"]] == [
        ("agrees_with", "data.new_training_end_date")]
    case = fire(opleider, case, "extend", {"new_training_end_date": "2027-03-01"})
    assert case["state"] == "extended"
    [letter] = [d for d in case["documents"] if d["kind"] == "rgs_outcome"]
    assert "1 maart 2027" in pdf_text(opleider, letter["id"]).replace("\n", " ")
    # A further GBT period is a new case, again 3-6 months, capped at two periods of the training.
    follow = ok(opleider.post("/cases", json={"workflow": "intensified_guidance", "institution": "meander",
                                              "subject_id": world.users["aios"], "parent_id": case["id"],
                                              "data": DECISION}), 201)
    assert follow["parent_id"] == case["id"]
    third = ok(opleider.post("/cases", json={"workflow": "intensified_guidance", "institution": "meander",
                                             "subject_id": world.users["aios"], "parent_id": follow["id"],
                                             "data": DECISION}), 422)
    assert {u["guard"] for u in third["error"]["details"]["unmet"]} == {"max_periods", "one_open_per_subject"}


def terminated(world):
    case = to_assessed(world, "unsuitable")
    return fire(world.api("opleider"), case, "terminate", {"end_date": "2026-09-01"})


def test_terminate_sends_a_written_notice_with_the_end_date_and_the_dispute_procedure(world):
    case = terminated(world)
    opleider, aios = world.api("opleider"), world.api("aios")
    assert case["state"] == "terminated"
    [notice] = [d for d in case["documents"] if d["kind"] == "termination_notice"]
    text = " ".join(pdf_text(aios, notice["id"]).split())  # justified lines stretch their spaces
    assert "1 september 2026" in text and "binnen 4 weken" in text and "Geschillenprocedure" in text
    # decided 10 July + 4 weeks; the term and its last day come from the configuration (`dispute_window`)
    assert "tot en met 7 augustus 2026" in text and notice["content"]["dispute_term"] == "4 weken"
    notifications = [n for n in ok(opleider.get(f"/cases/{case['id']}/notifications"))
                     if n["kind"] == "gbt_termination_notice"]
    # the notice to the aios now; the outcome report to the RGS once both signed it
    assert {(n["recipient"], n["status"]) for n in notifications} == {("aios@test.nl", "pending"),
                                                                      ("rgs@example.org", "held")}


def open_dispute(world, case, status=201):
    return ok(world.api("aios").post("/cases", json={"workflow": "dispute", "institution": "meander",
                                                     "parent_id": case["id"],
                                                     "data": {"grounds": "De beoordeling was onzorgvuldig"}}),
              status)


def test_the_aios_disputes_a_termination_and_the_coc_chair_confirms_receipt_in_writing(world, clock):
    case = terminated(world)
    coc, aios = world.api("coc"), world.api("aios")
    assert open_dispute(world, case, 201)
    dispute = ok(aios.get("/cases?workflow=dispute"))["items"][0]
    assert dispute["state"] == "requested" and dispute["subject_id"] == world.users["aios"]
    assert [d["kind"] for d in dispute["deadlines"]] == ["acknowledgement"]
    assert fire(aios, dispute, "acknowledge", status=403)["error"]["code"] == "forbidden"
    dispute = fire(coc, dispute, "acknowledge")
    assert dispute["state"] == "mediation"
    [receipt] = [d for d in dispute["documents"] if d["kind"] == "receipt_confirmation"]
    text = pdf_text(aios, receipt["id"]).replace("\n", " ")
    assert "bevestig ik de ontvangst" in text and "Coc" in text and "bewijs van ontvangst" in text
    kinds = {d["kind"]: d["status"] for d in dispute["deadlines"]}
    assert kinds == {"acknowledgement": "met", "mediation": "pending"}
    referred = fire(aios, dispute, "refer", {"reason": "Bemiddeling leverde niets op"})
    assert referred["state"] == "referred"


def test_a_dispute_is_refused_after_four_weeks_with_the_closing_date(world, clock):
    case = terminated(world)
    clock.advance(weeks=4, days=1)
    body = open_dispute(world, case, 422)
    [unmet] = body["error"]["details"]["unmet"]
    assert unmet["guard"] == "within_dispute_window" and unmet["window_closed_on"] == "2026-08-07"


def test_only_the_aios_concerned_can_dispute(world):
    case = terminated(world)
    other = world.api("aios2")
    body = ok(other.post("/cases", json={"workflow": "dispute", "institution": "meander",
                                         "parent_id": case["id"], "data": {"grounds": "x"}}), 422)
    assert body["error"]["details"] == {"parent_id": ["no such case"]}


def test_permissions_on_gbt_cases(world):
    opleider = world.api("opleider")
    case = open_gbt(opleider, world.users["aios"])
    hr, coc = world.api("hr"), world.api("coc")
    assert ok(hr.get(f"/cases/{case['id']}"))["available_triggers"] == []
    assert fire(hr, case, "start", status=403)["error"]["code"] == "forbidden"
    assert ok(coc.get(f"/cases/{case['id']}"))["id"] == case["id"]
    assert world.api("opleider_gelre").get(f"/cases/{case['id']}").status_code == 404
    assert world.api("hr_gelre").get(f"/cases/{case['id']}").status_code == 404
    assert world.api("aios2").get(f"/cases/{case['id']}").status_code == 404
    assert world.api("regio").get(f"/cases/{case['id']}").status_code == 404
    letter = case["documents"][0]
    assert world.api("aios2").get(f"/documents/{letter['id']}/pdf").status_code == 404
    assert add_doc(opleider, case, "rgs_notification", letter["content"], 403)["error"]["code"] == "forbidden"


def test_a_signed_document_cannot_change_even_in_the_database(world):
    from sqlalchemy import text

    from web.extensions import db

    opleider, aios = world.api("opleider"), world.api("aios")
    case = open_gbt(opleider, world.users["aios"])
    doc = signed(opleider, aios, case, "adjusted_iop", IOP)
    with world.app.app_context():
        with pytest.raises(Exception, match="immutable"):
            with db.engine.begin() as conn:
                conn.execute(text("UPDATE document SET content = :c WHERE id = :i"),
                             {"c": json.dumps({**IOP, "end_date": "2026-09-09"}), "i": doc["id"]})
    assert ok(opleider.get(f"/documents/{doc['id']}"))["content"] == IOP


def test_the_dossier_export_is_a_sealed_pack_that_verifies(world, tmp_path):
    case = terminated(world)
    aios = world.api("aios")
    open_dispute(world, case)
    response = world.api("opleider").get(f"/cases/{case['id']}/dossier.zip")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    names = archive.namelist()
    root = f"dossier-{case['id']}/"
    assert {root + n for n in ("manifest.json", "SEAL.txt", "verify.py", "README.txt")} <= set(names)
    manifest = json.loads(archive.read(root + "manifest.json"))
    assert len(manifest["cases"]) == 2  # the GBT and the aios's dispute (visible to the opleider)
    assert any(n.endswith("termination_notice-v1.pdf") for n in names)
    archive.extractall(tmp_path)
    check = subprocess.run([sys.executable, "verify.py"], cwd=tmp_path / root, capture_output=True, text=True)
    assert check.returncode == 0 and "OK: dossier intact" in check.stdout
    audit = tmp_path / root / f"cases/{case['id']}/audit.json"
    events = json.loads(audit.read_text())
    events[1]["data"] = {"input": {"forged": True}}
    audit.write_text(json.dumps(events))
    check = subprocess.run([sys.executable, "verify.py"], cwd=tmp_path / root, capture_output=True, text=True)
    assert check.returncode == 1 and f"changed: cases/{case['id']}/audit.json" in check.stdout
    assert aios.get(f"/cases/{case['id']}/dossier.zip").status_code == 200
    assert world.api("aios2").get(f"/cases/{case['id']}/dossier.zip").status_code == 404
