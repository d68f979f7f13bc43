"""The escalation ladders: covenant art. 4 and agreement art. 2.5-2.7, level by level, with who is told."""
from __future__ import annotations

import pytest
from sqlalchemy import update

from engine.models import Deadline, Notification
from flows import fire, ok, with_rso_chair
from web.extensions import db


@pytest.fixture
def world(world):
    """conftest's world with a voorzitter RSO, the owner of escalated_rso_chair."""
    return with_rso_chair(world)


def told(world, case_id, kind=None) -> set[tuple[str, str]]:
    """(recipient e-mail or address, notification kind) pairs written for the case so far."""
    with world.app.app_context():
        rows = db.session.query(Notification).filter_by(case_id=case_id).all()
        from engine.models import User

        emails = {u.id: u.email for u in db.session.query(User)}
        return {(emails.get(n.recipient_user_id, n.recipient_address), n.kind) for n in rows
                if kind is None or n.kind == kind}


def signal(world, who="aios", institution="meander", **data):
    return ok(world.api(who).post("/cases", json={
        "workflow": "escalation", "institution": institution, "title": "Supervisie in de avonddienst",
        "data": {"description": "Aiossen staan 's avonds regelmatig zonder bereikbare supervisor", **data}}), 201)


def test_the_art4_ladder_from_signal_to_the_rgs_tells_the_right_people_at_every_level(world):
    rso, coc, rvb, rcoc = world.api("rso"), world.api("coc"), world.api("rvb"), world.api("rcoc")
    chair = world.api("rso_chair")
    case = signal(world)
    assert case["state"] == "signalled"
    assert told(world, case["id"], "level_reached") == {("rso@test.nl", "level_reached")}
    case = fire(rso, case, "discuss", {"with_coc_board": True, "inform_rvb": True})
    assert ("rvb@test.nl", "escalation_rvb_informed") in told(world, case["id"])
    case = fire(rso, case, "agree_actions", {"actions": [
        {"description": "Rooster aanpassen", "owner_role": "coc_chair", "due_date": "2026-04-01"},
        {"description": "Bereikbaarheid evalueren", "owner_role": "rso_board", "due_date": "2026-05-01"}]})
    first, second = (a["id"] for a in case["data"]["actions"])
    assert {(d["kind"], d["owner_role"]) for d in case["deadlines"] if d["kind"].startswith("action_")} == {
        (f"action_{first}", "coc_chair"), (f"action_{second}", "rso_board")}
    case = fire(coc, case, "complete_action", {"action": first, "note": "Rooster per 1 april aangepast"})
    assert {d["kind"]: d["status"] for d in case["deadlines"]}[f"action_{first}"] == "met"
    assert fire(rso, case, "complete_action", {"action": "a000000000"}, status=422)["error"]["code"] == \
        "precondition_failed"
    case = fire(rso, case, "monitor", {"review_date": "2026-06-01"})
    case = fire(rso, case, "escalate", {"reason": "Blijvende zorg"})
    assert case["state"] == "escalated_rso_chair"
    assert ("rso_chair@test.nl", "level_reached") in told(world, case["id"])
    assert {d["kind"]: d["status"] for d in case["deadlines"]}[f"action_{second}"] == "cancelled"
    assert fire(coc, case, "escalate", {"reason": "x"}, status=403)["error"]["code"] == "forbidden"
    assert fire(rso, case, "escalate", {"reason": "x"}, status=403)["error"]["code"] == "forbidden"
    case = fire(chair, case, "escalate", {"reason": "Geen verbetering"})
    assert case["state"] == "escalated_coc_chair"
    assert ("coc@test.nl", "level_reached") in told(world, case["id"])
    assert ("coc_gelre@test.nl", "level_reached") not in told(world, case["id"])
    responses = [d for d in case["deadlines"] if d["kind"] == "response"]
    assert sorted(d["status"] for d in responses) == ["met", "pending"]  # both fall due on the same day
    case = fire(coc, case, "escalate", {"reason": "Aanhoudende zorg"})
    assert case["state"] == "escalated_rvb" and ("rvb@test.nl", "level_reached") in told(world, case["id"])
    case = fire(rvb, case, "escalate", {"reason": "Geen adequate reactie"})
    assert case["state"] == "escalated_r_coc" and ("rcoc@test.nl", "level_reached") in told(world, case["id"])
    body = fire(rcoc, case, "escalate", {"reason": "Verschil van inzicht"}, status=422)
    assert [u["field"] for u in body["error"]["details"]["unmet"]] == ["data.fundamental_disagreement"]
    case = fire(rcoc, case, "escalate", {"reason": "Verschil van inzicht", "fundamental_disagreement": True})
    assert case["state"] == "reported_rgs"
    [letter] = [d for d in case["documents"] if d["kind"] == "rgs_escalation_letter"]
    with world.app.app_context():
        rgs = db.session.query(Notification).filter_by(case_id=case["id"], kind="rgs_escalation").one()
        assert rgs.recipient_address == "rgs@example.org"
        assert rgs.attachments == [{"type": "document_pdf", "document_id": letter["id"]}]
    case = fire(rcoc, case, "resolve", {"resolution": "Besluit van de RGS uitgevoerd"})
    assert case["state"] == "resolved" and ("aios@test.nl", "escalation_resolved") in told(world, case["id"])


def test_each_level_resolves_only_by_its_owner(world):
    rso, coc, chair = world.api("rso"), world.api("coc"), world.api("rso_chair")
    case = fire(rso, signal(world), "discuss")
    case = fire(rso, case, "escalate", {"reason": "x"})
    case = fire(chair, case, "escalate", {"reason": "x"})
    assert fire(rso, case, "resolve", {"resolution": "x"}, status=403)["error"]["code"] == "forbidden"
    assert ok(coc.get(f"/cases/{case['id']}"))["available_triggers"] == ["escalate", "resolve"]
    assert fire(coc, case, "resolve", {"resolution": "Opgelost met de vakgroep"})["state"] == "resolved"


def test_the_r_coc_chair_may_escalate_when_a_level_let_its_term_pass(world):
    rso, rcoc, chair = world.api("rso"), world.api("rcoc"), world.api("rso_chair")
    case = fire(rso, signal(world), "discuss")
    case = fire(rso, case, "escalate", {"reason": "x"})
    case = fire(chair, case, "escalate", {"reason": "x"})  # at the COC chair
    assert fire(rcoc, case, "escalate", {"reason": "x"}, status=403)["error"]["code"] == "forbidden"
    with world.app.app_context():
        db.session.execute(update(Deadline).where(Deadline.case_id == case["id"], Deadline.status == "pending")
                           .values(status="overdue"))
        db.session.commit()
    assert "escalate" in ok(rcoc.get(f"/cases/{case['id']}"))["available_triggers"]
    assert fire(rcoc, case, "escalate", {"reason": "Termijn verstreken"})["state"] == "escalated_rvb"


def test_a_signal_about_the_coc_chair_skips_them_and_hides_the_case_from_them(world):
    rso, coc = world.api("rso"), world.api("coc")
    case = signal(world, who="opleider", concerns_user_id=world.users["coc"])
    assert coc.get(f"/cases/{case['id']}").status_code == 404
    assert case["id"] not in [c["id"] for c in ok(coc.get("/cases"))["items"]]
    case = fire(rso, case, "discuss")
    case = fire(rso, case, "escalate", {"reason": "x"})
    case = fire(world.api("rso_chair"), case, "escalate", {"reason": "De COC-voorzitter is zelf betrokken"})
    assert case["state"] == "escalated_rvb"  # the COC level had nobody left to own it
    events = ok(rso.get(f"/cases/{case['id']}/events"))
    assert events[-1]["data"]["effects"] == [{"effect": "skipped_levels", "levels": ["escalated_coc_chair"]}]
    assert not {r for r, _ in told(world, case["id"])} & {"coc@test.nl"}
    assert ("rvb@test.nl", "level_reached") in told(world, case["id"])


def test_a_signal_via_the_vertrouwenspersoon_hides_the_signaller_from_everyone_else(world):
    vp, rso = world.api("vp"), world.api("rso")
    case = signal(world, who="vp", signaller="A. Aios, tweedejaars")
    assert ok(vp.get(f"/cases/{case['id']}"))["data"]["signaller"] == "A. Aios, tweedejaars"
    seen = ok(rso.get(f"/cases/{case['id']}"))
    assert seen["data"]["signaller"] == "[vertrouwelijk]"
    events = ok(rso.get(f"/cases/{case['id']}/events"))
    assert events[0]["data"]["input"]["signaller"] == "[vertrouwelijk]"
    assert "tweedejaars" not in str(ok(world.api("coc").get(f"/cases/{case['id']}")))


def test_the_coc_chair_of_another_hospital_and_the_aios_of_another_case_see_nothing(world):
    case = signal(world)
    assert world.api("coc_gelre").get(f"/cases/{case['id']}").status_code == 404
    assert world.api("aios2").get(f"/cases/{case['id']}").status_code == 404
    assert ok(world.api("regio").get(f"/cases/{case['id']}"))["state"] == "signalled"


def consultation(world, requirement):
    return ok(world.api("rso").post("/cases", json={
        "workflow": "rso_consultation", "institution": "meander", "title": "Onvoldoende supervisie",
        "data": {"shortcoming": "Supervisie voldoet niet aan het Kaderbesluit", "requirement": requirement}}), 201)


def test_art_2_5_consultation_has_a_30_day_term_and_escalates_into_art_2_6(world):
    rso, coc, rvb, rcoc, regio = (world.api(n) for n in ("rso", "coc", "rvb", "rcoc", "regio"))
    case = consultation(world, "quality")
    [term] = case["deadlines"]
    assert term["kind"] == "consultation_term" and term["due_at"].startswith("2026-04-01T21:59")  # 2 March + 30 days
    assert ("coc@test.nl", "consultation_started") in told(world, case["id"])
    body = fire(rso, case, "escalate_obligations", {"reason": "x"}, status=422)
    assert body["error"]["details"]["unmet"][0]["guard"] == "field_equals"
    body = fire(rso, case, "escalate_quality", {"reason": "Niet nagekomen"}, status=422)
    assert [u["field"] for u in body["error"]["details"]["unmet"]] == ["data.justification"]  # day 0 of 30
    case = fire(rso, case, "escalate_quality", {"reason": "Niet nagekomen",
                                                "justification": "De Partij weigert elk overleg"})
    [child_id] = case["child_ids"]
    ladder = ok(coc.get(f"/cases/{child_id}"))
    assert ladder["workflow"] == "rso_quality" and ladder["state"] == "reported_coc"
    assert ladder["opened_by"] is None  # art. 2.6: the reporter is not named
    assert ("coc@test.nl", "level_reached") in told(world, child_id)
    ladder = fire(coc, ladder, "escalate", {"reason": "Geen verbetering"})
    assert ladder["state"] == "escalated_rvb" and ("rvb@test.nl", "level_reached") in told(world, child_id)
    body = fire(rvb, ladder, "escalate", {"reason": "x"}, status=422)
    assert body["error"]["details"]["unmet"][0]["field"] == "data.other_parties_decision"
    ladder = fire(rso, ladder, "escalate", {"reason": "Geen verbetering",
                                            "other_parties_decision": "Partijen 12 mei 2026"})
    assert ladder["state"] == "escalated_r_coc" and ("rcoc@test.nl", "level_reached") in told(world, child_id)
    ladder = fire(rcoc, ladder, "escalate", {"reason": "Interventie zonder resultaat"})
    assert ladder["state"] == "escalated_regio_bestuur"
    assert ("regio@test.nl", "level_reached") in told(world, child_id)
    ladder = fire(regio, ladder, "escalate", {"reason": "Blijvend", "rgs_decision": "Regio-Bestuur 1 juli 2026"})
    assert ladder["state"] == "reported_rgs" and ("rgs@example.org", "rgs_quality_report") in told(world, child_id)
    ladder = fire(rcoc, ladder, "record_withdrawal", {"rgs_decision_date": "2026-09-01"})
    assert ladder["state"] == "recognition_withdrawn"


def test_art_2_7_sends_a_written_report_to_the_rvb_with_a_copy_to_the_r_coc(world):
    rso, coc, rvb, rcoc = world.api("rso"), world.api("coc"), world.api("rvb"), world.api("rcoc")
    case = fire(rso, consultation(world, "obligations"), "escalate_obligations",
                {"reason": "Niet nagekomen", "justification": "Herhaaldelijk niet nagekomen"})
    ladder = ok(coc.get(f"/cases/{case['child_ids'][0]}"))
    assert ladder["workflow"] == "rso_obligations"
    ladder = fire(coc, ladder, "escalate", {"reason": "Geen verbetering"})
    [letter] = [d for d in ladder["documents"] if d["kind"] == "rvb_report"]
    with world.app.app_context():
        rows = db.session.query(Notification).filter_by(case_id=ladder["id"], kind="rvb_obligations_report").all()
        assert {n.recipient_role for n in rows} == {"rvb", "r_coc_chair"}
        assert all(n.attachments == [{"type": "document_pdf", "document_id": letter["id"]}] for n in rows)
    ladder = fire(rvb, ladder, "escalate", {"reason": "Geen reactie"})  # the R-COC intervention follows
    assert ladder["state"] == "escalated_r_coc"
    assert fire(rcoc, ladder, "resolve", {"resolution": "Afspraken nagekomen"})["state"] == "resolved"


def test_a_consultation_that_is_complied_with_closes_and_meets_its_term(world):
    rso = world.api("rso")
    case = fire(rso, consultation(world, "quality"), "record_compliance", {"summary": "Rooster aangepast"})
    assert case["state"] == "complied" and case["deadlines"][0]["status"] == "met"


def test_a_region_override_makes_a_new_version_and_running_cases_keep_their_terms(app, world, clock):
    from engine.definitions import Definition
    from web.runtime import sync_definitions
    from workflows import load_definitions

    before = signal(world)
    before = fire(world.api("rso"), fire(world.api("rso"), before, "discuss"), "escalate", {"reason": "x"})
    region = {"workflows": {"escalation": {"deadlines": {"response": {"after": {"days": 7}}}}}}
    app.extensions["traject.definitions"] = load_definitions(app.extensions["traject"].registry, region=region)
    with app.app_context():
        [added] = [r for r in sync_definitions(app) if r.key == "escalation"]
    try:
        after = signal(world)
        assert after["workflow_version"] == added.version > before["workflow_version"]
        after = fire(world.api("rso"), fire(world.api("rso"), after, "discuss"), "escalate", {"reason": "x"})
        due = {c["id"]: [d["due_at"] for d in c["deadlines"] if d["kind"] == "response"][0] for c in (before, after)}
        assert due[before["id"]].startswith("2026-03-16") and due[after["id"]].startswith("2026-03-09")
    finally:  # later tests must open cases with the shipped version again
        from flows import empty_tables as _empty
        from engine.models import WorkflowDefinition

        with app.app_context():
            db.session.remove()
            _empty(db.engine)
            db.session.query(WorkflowDefinition).filter_by(id=added.id).delete()
            db.session.commit()
        Definition._cache.pop(added.id, None)
