"""Input an attacker with a demo account tried: dates the calendar cannot hold, invisible characters,
and lists that showed personal cases without a trace in the access log."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.fields import parse_date
from engine.models import AccessLog
from flows import evaluation, fire, ok, open_internal, to_guidance
from web.extensions import db


@pytest.mark.parametrize("text", ["0001-01-01", "9999-12-31", "1899-12-31", "2200-01-01", "2026-W01-1",
                                  "2026-02-30", "20260301", "2026-3-1", " 2026-03-01"])
def test_it_refuses_dates_outside_the_calendar_a_procedure_can_mean(text):
    assert parse_date(text) is None


@pytest.mark.parametrize("text", ["1900-01-01", "2026-03-01", "2199-12-31"])
def test_it_takes_calendar_dates_from_1900_to_2199(text):
    assert parse_date(text).isoformat() == text


@pytest.mark.parametrize("text", ["0001-01-01", "9999-12-31", "2026-W09-1"])
def test_a_date_out_of_range_is_a_422_not_a_500(world, text):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    body = fire(opleider, case, "record_evaluation", evaluation(False, text), status=422)
    assert body["error"]["code"] == "validation_error"
    assert "data.evaluation.date" in body["error"]["details"]


@pytest.mark.parametrize("text", ["Eerste\r\nBcc: iedereen@example.org", "bel\x07", "regel\u2028scheiding"])
def test_a_one_line_field_refuses_control_characters(world, text):
    body = ok(world.api("vp").post("/cases", json={
        "workflow": "escalation", "institution": "meander", "title": "Signaal",
        "data": {"description": "Zorg over supervisie", "signaller": text}}), 422)
    assert body["error"]["details"]["data.signaller"] == ["must not contain control characters"]


def test_a_text_refuses_control_characters_other_than_line_breaks_and_tabs(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    body = fire(opleider, case, "record_evaluation",
                {"evaluation": {"date": "2026-04-01", "summary": "bel\x07", "sufficient": False}}, status=422)
    assert body["error"]["details"]["data.evaluation.summary"] == ["must not contain control characters"]


def test_a_text_keeps_its_line_breaks(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    case = fire(opleider, case, "record_evaluation",
                {"evaluation": {"date": "2026-04-01", "summary": "Eerste regel\nTweede regel\tmet tab",
                                "sufficient": False}})
    assert case["state"] == "guidance"


def test_the_inbox_writes_the_access_log_for_every_personal_case_it_lists(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = open_internal(opleider, world.users["aios"])
    items = ok(opleider.get("/inbox"))["items"]
    assert case["id"] in {i["case_id"] for i in items}
    with world.app.app_context():
        rows = db.session.execute(select(AccessLog.case_id, AccessLog.action, AccessLog.detail)
                                  .where(AccessLog.user_id == world.users["opleider"])).all()
    assert (case["id"], "list", "/api/v1/inbox") in rows


def test_the_dashboard_logs_a_case_it_lists_once(world):
    from flows import browser

    opleider = world.api("opleider")
    case = open_internal(opleider, world.users["aios"])
    assert browser(world, "opleider").get("/").status_code == 200
    with world.app.app_context():
        rows = db.session.scalars(select(AccessLog.case_id).where(AccessLog.user_id == world.users["opleider"],
                                                                   AccessLog.detail == "/")).all()
    assert rows == [case["id"]]


def test_a_dossier_over_the_document_limit_is_a_413_and_its_read_is_logged_first(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    world.app.config["TRAJECT_DOSSIER_MAX_DOCUMENTS"] = 0
    response = opleider.get(f"/cases/{case['id']}/dossier.zip")
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "payload_too_large"
    with world.app.app_context():
        actions = db.session.scalars(select(AccessLog.action).where(AccessLog.case_id == case["id"])).all()
    assert "dossier_export" in actions
    world.app.config["TRAJECT_DOSSIER_MAX_DOCUMENTS"] = 300
    assert opleider.get(f"/cases/{case['id']}/dossier.zip").status_code == 200



# -- signatures and what a client may not write ------------------------------------------------------


def test_two_identical_signatures_at_the_same_moment_give_one_signature_and_a_409(app, world):
    import threading

    from flows import to_plan

    opleider, aios = world.api("opleider"), world.api("aios")
    for _ in range(3):
        _case, doc = to_plan(opleider, aios, open_internal(opleider, world.users["aios"]))
        barrier, results = threading.Barrier(2), []

        def attempt():
            barrier.wait()
            response = app.test_client().post(f"/api/v1/documents/{doc['id']}/signatures",
                                              headers={"Authorization": f"Bearer {aios.token}"},
                                              json={"verdict": "agreed"})
            results.append(response.status_code)

        threads = [threading.Thread(target=attempt) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(results) == [201, 409], results
        assert len(ok(aios.get(f"/documents/{doc['id']}"))["signatures"]) == 1


def test_a_document_of_a_closed_case_can_no_longer_be_signed(world):
    from flows import PLAN

    opleider, aios = world.api("opleider"), world.api("aios")
    case = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    case = fire(opleider, case, "record_evaluation", evaluation(True))
    doc = ok(opleider.post(f"/cases/{case['id']}/documents", json={"kind": "improvement_plan", "content": PLAN}), 201)
    fire(opleider, case, "close", {"outcome_summary": "Voldoende"})
    body = ok(aios.post(f"/documents/{doc['id']}/signatures", json={"verdict": "agreed"}), 409)
    assert body["error"]["code"] == "transition_not_allowed"


def test_provenance_is_the_servers_and_unknown_nested_keys_are_refused(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    forged = {"evaluation": {"date": "2026-04-01", "summary": "x", "sufficient": False,
                             "recorded_by": world.users["aios"], "recorded_at": "2020-01-01T00:00:00"}}
    body = fire(opleider, case, "record_evaluation", forged, status=422)
    assert set(body["error"]["details"]) == {"data.evaluation.recorded_by", "data.evaluation.recorded_at"}
    case = fire(opleider, case, "record_evaluation", evaluation(False))
    [entry] = case["data"]["evaluations"]
    assert entry["recorded_by"] == world.users["opleider"] and entry["recorded_at"].startswith("2026-03-02")


@pytest.mark.parametrize("title", ["Signaal\r\nBcc: iedereen@example.org", "tab\tin titel", "nul\x07"])
def test_a_title_with_control_characters_is_refused(world, title):
    body = ok(world.api("opleider").post("/cases", json={
        "workflow": "internal_guidance", "institution": "meander", "subject_id": world.users["aios"],
        "title": title, "data": {"signal": "Achterstand"}}), 422)
    assert body["error"]["details"]["title"] == ["must not contain control characters"]


# -- the conflict-of-interest exclusion --------------------------------------------------------------


def _signal_about(world, uid):
    return world.api("opleider").post("/cases", json={
        "workflow": "escalation", "institution": "meander", "title": "Signaal",
        "data": {"description": "Zorg", "concerns_user_id": uid}})


def test_the_exclusion_cannot_blind_the_only_owner_of_the_first_level(world):
    body = ok(_signal_about(world, world.users["rso"]), 422)  # the region's only RSO board member
    assert body["error"]["details"]["data.concerns_user_id"] == ["must not be the only rso_board"]


def test_the_exclusion_cannot_blind_the_administrator(world):
    body = ok(_signal_about(world, world.users["admin"]), 422)
    assert body["error"]["details"]["data.concerns_user_id"] == ["must not be an administrator"]


def test_the_exclusion_still_hides_the_case_from_someone_else_of_the_level(world):
    case = ok(_signal_about(world, world.users["coc"]), 201)
    assert world.api("coc").get(f"/cases/{case['id']}").status_code == 404
    assert ok(world.api("rso").get(f"/cases/{case['id']}"))["state"] == "signalled"


def test_the_case_list_page_logs_every_personal_case_it_shows(world):
    from flows import browser

    case = open_internal(world.api("opleider"), world.users["aios"])
    assert browser(world, "coc").get("/cases").status_code == 200
    with world.app.app_context():
        rows = db.session.scalars(select(AccessLog.case_id).where(AccessLog.user_id == world.users["coc"],
                                                                   AccessLog.detail == "/cases")).all()
    assert rows == [case["id"]]
