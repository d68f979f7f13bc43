"""The training record, programmes as scope, and who is involved (CONTRACT.md section 7, issue 14)."""
from __future__ import annotations

import pytest
from flows import fire, ok, open_internal
from sqlalchemy import select
from test_gbt import DECISION, open_gbt, terminated, to_assessed

from engine import records
from engine.models import AccessLog, Institution, Programme, RoleAssignment, User


def _add_user(world, name, role, code, programme=None):
    from web.extensions import db

    with world.app.app_context():
        user = User(email=f"{name}@test.nl", name=name.capitalize(), active=True,
                    created_at=world.app.extensions["traject"].clock.now())
        user.roles.append(RoleAssignment(role=role, institution_id=world.institutions[code] if code else None,
                                         region_id=world.region_id, programme=programme))
        db.session.add(user)
        db.session.commit()
        world.users[name] = user.id
    return world.api(name)


@pytest.fixture
def paediatrics(world):
    """A second programme at meander with its own opleider, aios and a personal case."""
    from web.extensions import db

    with world.app.app_context():
        db.session.add_all([Programme(region_id=world.region_id, code="anesthesiologie", name="Anesthesiologie"),
                            Programme(region_id=world.region_id, code="kindergeneeskunde", name="Kindergeneeskunde")])
        db.session.commit()
    kopl = _add_user(world, "kopleider", "opleider", "meander", "kindergeneeskunde")
    _add_user(world, "kaios", "aios", "meander")
    admin = world.api("admin")
    ok(admin.put(f"/training-records/{world.users['kaios']}", json={"programme": "kindergeneeskunde"}))
    case = open_internal(kopl, world.users["kaios"])
    assert case["programme"] == "kindergeneeskunde"
    return case


def test_an_opleider_sees_only_the_personal_cases_of_their_own_programme(world, paediatrics):
    anes, kopl = world.api("opleider"), world.api("kopleider")
    assert anes.get(f"/cases/{paediatrics['id']}").status_code == 404
    assert paediatrics["id"] not in [c["id"] for c in ok(anes.get("/cases"))["items"]]
    own = open_internal(anes, world.users["aios"])
    assert own["programme"] == "anesthesiologie"
    assert kopl.get(f"/cases/{own['id']}").status_code == 404
    assert ok(kopl.get(f"/cases/{paediatrics['id']}"))["id"] == paediatrics["id"]
    # the COC chair covers every programme of the institution
    coc = world.api("coc")
    assert {c["id"] for c in ok(coc.get("/cases"))["items"]} >= {own["id"], paediatrics["id"]}
    # nor may the other programme's opleider open a trajectory for this programme's aios
    body = ok(kopl.post("/cases", json={"workflow": "internal_guidance", "institution": "meander",
                                        "subject_id": world.users["aios"], "data": {"signal": "x"}}), 403)
    assert body["error"]["code"] == "forbidden"


def test_rso_roles_see_only_ladders_of_their_programme(world, paediatrics):
    krso = _add_user(world, "krso", "rso_board", None, "kindergeneeskunde")
    rso = world.api("rso")
    esc = ok(world.api("opleider").post("/cases", json={"workflow": "escalation", "institution": "meander",
                                                        "data": {"description": "Te weinig supervisie"}}), 201)
    assert esc["programme"] == "anesthesiologie"
    assert ok(rso.get(f"/cases/{esc['id']}"))["id"] == esc["id"]
    assert krso.get(f"/cases/{esc['id']}").status_code == 404


def test_the_record_reads_like_a_personal_case_and_every_change_is_in_its_history(world):
    aios_id = world.users["aios"]
    admin, coc, opl = world.api("admin"), world.api("coc"), world.api("opleider")
    body = ok(coc.put(f"/training-records/{aios_id}", json={
        "start_date": "2024-09-01", "expected_end_date": "2029-08-31", "employer": "gelre", "placement": "meander",
        "responsible_opleider_id": world.users["opleider"], "reason": "start"}))
    assert body["status"] == "in_training" and body["employer"] == "gelre" and body["placement"] == "meander"
    assert body["history"][0]["changes"]["expected_end_date"] == [None, "2029-08-31"]
    assert ok(world.api("aios").get(f"/training-records/{aios_id}"))["start_date"] == "2024-09-01"
    assert ok(opl.get(f"/training-records/{aios_id}"))["responsible_opleider_id"] == world.users["opleider"]
    # others: 404 whoever they are (it must not tell who is an aios); the aios cannot edit their own
    for name in ("aios2", "opleider_gelre", "rso", "regio", "rvb"):
        assert world.api(name).get(f"/training-records/{aios_id}").status_code == 404, name
    assert world.api("aios").put(f"/training-records/{aios_id}", json={"start_date": "2020-01-01"}).status_code == 403
    assert world.api("hr").get(f"/training-records/{aios_id}").status_code == 404  # HR of gelre, the employer:
    assert ok(world.api("hr_gelre").get(f"/training-records/{aios_id}"))["employer"] == "gelre"
    # every date is a real date in 1900-2199; unknown codes are named
    bad = ok(admin.put(f"/training-records/{aios_id}", json={"start_date": "2024-02-30", "employer": "nowhere",
                                                            "expected_end_date": "2300-01-01"}), 422)
    assert set(bad["error"]["details"]) == {"start_date", "employer", "expected_end_date"}
    with world.app.app_context():
        from web.extensions import db

        assert records.chain_intact(db.session, aios_id)
        reads = db.session.scalars(select(AccessLog.user_id).where(AccessLog.subject_id == aios_id)).all()
        assert world.users["opleider"] in reads and world.users["aios"] in reads


def test_a_new_placement_hands_the_open_trajectories_to_its_opleider_recorded(world):
    aios_id, admin = world.users["aios"], world.api("admin")
    case = open_internal(world.api("opleider"), aios_id)
    body = ok(admin.put(f"/training-records/{aios_id}", json={"placement": "gelre", "reason": "stage Gelre"}))
    assert body["responsible_opleider_id"] == world.users["opleider_gelre"]
    events = ok(admin.get(f"/cases/{case['id']}/events"))
    handover = [e for e in events if e["type"] == "handed_over"]
    assert handover and handover[0]["data"]["to"] == world.users["opleider_gelre"]
    assert ok(admin.get(f"/cases/{case['id']}"))["responsible_id"] == world.users["opleider_gelre"]
    # an opleider who is not of the programme cannot be made responsible
    kopl = _add_user(world, "kopl2", "opleider", "gelre", "kindergeneeskunde")
    assert kopl.user_id
    bad = ok(admin.put(f"/training-records/{aios_id}", json={"responsible_opleider_id": kopl.user_id}), 422)
    assert "responsible_opleider_id" in bad["error"]["details"]


def test_the_deputy_acts_on_the_responsible_opleiders_behalf(world):
    plv = _add_user(world, "plv", "plv_opleider", "meander")
    case = open_internal(world.api("opleider"), world.users["aios"])
    case = fire(plv, case, "analyse")
    [event] = [e for e in ok(plv.get(f"/cases/{case['id']}/events")) if e["trigger"] == "analyse"]
    assert event["actor_id"] == plv.user_id and event["data"]["on_behalf_of"] == world.users["opleider"]
    # the opleider's own steps carry no such mark
    case = fire(world.api("opleider"), case, "discuss", {"core_problem": "Structuur"})
    [own] = [e for e in ok(plv.get(f"/cases/{case['id']}/events")) if e["trigger"] == "discuss"]
    assert "on_behalf_of" not in own["data"]


def test_hr_of_the_employer_is_involved_not_hr_of_the_hospital(world):
    aios_id = world.users["aios"]
    ok(world.api("admin").put(f"/training-records/{aios_id}", json={"employer": "gelre", "placement": "meander"}))
    case = open_gbt(world.api("opleider"), aios_id)
    told = {n["recipient"] for n in ok(world.api("opleider").get(f"/cases/{case['id']}/notifications"))
            if n["kind"] == "gbt_decided"}
    assert "hr_gelre@test.nl" in told and "hr@test.nl" not in told and "coc@test.nl" in told
    assert ok(world.api("hr_gelre").get(f"/cases/{case['id']}"))["id"] == case["id"]
    assert world.api("hr").get(f"/cases/{case['id']}").status_code == 404


def test_extend_writes_the_new_end_into_the_record(world):
    aios_id = world.users["aios"]
    case = to_assessed(world, "extend", new_training_end_date="2030-03-01")
    opleider = world.api("opleider")  # the walk moved the clock on: a token of now
    fire(opleider, case, "extend", {"new_training_end_date": "2030-03-01"})
    record = ok(opleider.get(f"/training-records/{aios_id}"))
    assert record["status"] == "extended" and record["expected_end_date"] == "2030-03-01"
    assert record["history"][-1]["case_id"] == case["id"]


def test_a_terminated_aios_gets_no_new_trajectory_but_may_still_dispute(world):
    aios_id = world.users["aios"]
    case = terminated(world)
    opleider = world.api("opleider")
    assert ok(opleider.get(f"/training-records/{aios_id}"))["status"] == "terminated"
    for workflow, data in (("internal_guidance", {"signal": "x"}), ("intensified_guidance", DECISION)):
        body = ok(opleider.post("/cases", json={"workflow": workflow, "institution": "meander",
                                                "subject_id": aios_id, "data": data}), 422)
        assert body["error"]["details"]["unmet"][0]["guard"] == "training_not_terminated", workflow
    dispute = ok(world.api("aios").post("/cases", json={"workflow": "dispute", "institution": "meander",
                                                         "parent_id": case["id"],
                                                         "data": {"grounds": "Oneens met het besluit"}}), 201)
    assert dispute["state"] == "requested"


def test_programme_codes_are_checked(world):
    with world.app.app_context():
        from web.extensions import db

        db.session.add(Programme(region_id=world.region_id, code="anesthesiologie", name="Anesthesiologie"))
        db.session.commit()
        assert db.session.scalar(select(Institution.id).where(Institution.code == "meander"))
    body = ok(world.api("admin").put(f"/training-records/{world.users['aios']}", json={"programme": "astrologie"}), 422)
    assert body["error"]["details"] == {"programme": ["unknown programme"]}


def test_the_record_page_for_the_aios_and_the_form_for_the_opleider(world, paediatrics):
    from flows import browser, csrf_token

    aios_id = world.users["aios"]
    ok(world.api("admin").put(f"/training-records/{aios_id}", json={
        "start_date": "2024-09-01", "expected_end_date": "2029-08-31", "employer": "gelre", "placement": "meander"}))
    page = browser(world, "aios").get(f"/records/{aios_id}").get_data(as_text=True)
    assert "Opleidingsgegevens" in page and "31 aug 2029" in page and "Gelre ziekenhuizen" in page
    assert 'name="reason"' not in page  # the aios reads, does not edit
    opl = browser(world, "opleider")
    path = f"/records/{aios_id}"
    response = opl.post(path, data={"csrf_token": csrf_token(opl, path), "programme": "anesthesiologie",
                                    "start_date": "2024-09-01", "expected_end_date": "2030-02-28",
                                    "employer": "gelre", "placement": "meander", "reason": "verlof verrekend"})
    assert response.status_code == 303
    page = opl.get(path).get_data(as_text=True)
    assert "28 feb 2030" in page and "verlof verrekend" in page
    bad = opl.post(path, data={"csrf_token": csrf_token(opl, path), "programme": "anesthesiologie",
                               "start_date": "2024-02-30", "placement": "meander"})
    assert bad.status_code == 200 and "niet opgeslagen" in bad.get_data(as_text=True)
    # the other programme's aios: not found for an anesthesiology opleider
    assert opl.get(f"/records/{world.users['kaios']}").status_code == 404
    assert opl.get(f"/cases/{paediatrics['id']}").status_code == 404
