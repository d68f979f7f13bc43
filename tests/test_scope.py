"""Who sees which case (CONTRACT.md section 3), through the API only.

Not being allowed to see a case is indistinguishable from the case not existing (404);
every read of a personal case is access-logged with the reader.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select

from engine.models import AccessLog
from flows import PLAN, evaluation, fire, ok, open_internal, sign, to_guidance

REGIONAL_WITHOUT_GUIDANCE = ["rso", "rcoc", "regio", "vp"]
NO_GUIDANCE = ["rvb", *REGIONAL_WITHOUT_GUIDANCE]


# -- helpers ----------------------------------------------------------------------------


def not_found(response, case_id=None):
    assert response.status_code == 404, (response.status_code, response.get_data(as_text=True))
    err = response.get_json()["error"]
    assert err["code"] == "not_found" and err["message"]
    if case_id is not None:
        assert err == {"code": "not_found", "message": "case not found", "details": {"case_id": case_id}}
    return err


def listed(api, query="") -> list[int]:
    """Every case id the list endpoint shows, following the cursor to the end."""
    ids, cursor = [], None
    while True:
        page = ok(api.get(f"/cases?limit=200{query}" + (f"&cursor={cursor}" if cursor else "")))
        ids += [c["id"] for c in page["items"]]
        cursor = page["next"]
        if cursor is None:
            return ids


def open_gbt(opleider, aios_id, institution="meander"):
    return ok(opleider.post("/cases", json={
        "workflow": "intensified_guidance", "institution": institution, "subject_id": aios_id, "title": "GBT",
        "data": {"decision_moment": "suitability_assessment", "decision_date": "2026-03-02",
                 "reasons": "Onvoldoende voortgang", "aios_informed_of_dispute_procedure": True}}), 201)


def access_log(world, case_id=None) -> list[tuple[int, int, str]]:
    from web.extensions import db

    with world.app.app_context():
        q = select(AccessLog).order_by(AccessLog.id)
        if case_id is not None:
            q = q.where(AccessLog.case_id == case_id)
        return [(row.user_id, row.case_id, row.action) for row in db.session.scalars(q)]


@dataclass
class Region:
    """Cases in both institutions: internal guidance for aios, aios2 and aios_gelre; a GBT for aios."""

    internal: dict
    internal2: dict
    internal_gelre: dict
    gbt: dict
    gbt_gelre: dict
    doc: dict

    @property
    def all_ids(self):
        return {c["id"] for c in (self.internal, self.internal2, self.internal_gelre, self.gbt, self.gbt_gelre)}


@pytest.fixture
def region(world):
    opleider, opleider_gelre = world.api("opleider"), world.api("opleider_gelre")
    internal = open_internal(opleider, world.users["aios"])
    internal = fire(opleider, internal, "analyse")
    internal = fire(opleider, internal, "discuss", {"core_problem": "Structuur"})
    internal = fire(opleider, internal, "draft_plan", {"discussion_summary": "Besproken"})
    doc = ok(opleider.post(f"/cases/{internal['id']}/documents", json={"kind": "improvement_plan", "content": PLAN}),
             201)
    internal2 = open_internal(world.api("opleider2"), world.users["aios2"])
    internal_gelre = open_internal(opleider_gelre, world.users["aios_gelre"], institution="gelre")
    gbt = open_gbt(opleider, world.users["aios"])
    gbt_gelre = open_gbt(opleider_gelre, world.users["aios_gelre"], institution="gelre")
    return Region(internal, internal2, internal_gelre, gbt, gbt_gelre, doc)


# -- aios: only their own ------------------------------------------------------------------


def test_an_aios_sees_only_the_cases_they_are_the_subject_of(world, region):
    aios, aios2, aios_gelre = world.api("aios"), world.api("aios2"), world.api("aios_gelre")
    assert ok(aios.get(f"/cases/{region.internal['id']}"))["subject_id"] == world.users["aios"]
    assert ok(aios.get(f"/cases/{region.gbt['id']}"))["subject_id"] == world.users["aios"]
    assert sorted(listed(aios)) == sorted([region.internal["id"], region.gbt["id"]])
    assert listed(aios2) == [region.internal2["id"]]
    assert sorted(listed(aios_gelre)) == sorted([region.internal_gelre["id"], region.gbt_gelre["id"]])


def test_an_aios_gets_404_on_a_colleagues_case_exactly_as_on_a_missing_one(world, region):
    aios2 = world.api("aios2")
    case_id = region.internal["id"]
    not_found(aios2.get(f"/cases/{case_id}"), case_id)
    not_found(aios2.get(f"/cases/{case_id}/events"), case_id)
    not_found(aios2.get(f"/cases/{case_id}/notifications"), case_id)
    not_found(aios2.get(f"/cases/{region.gbt['id']}"), region.gbt["id"])
    hidden = not_found(aios2.get(f"/documents/{region.doc['id']}"))
    missing = not_found(aios2.get(f"/documents/{region.doc['id'] + 1000}"))
    assert hidden["message"] == missing["message"]
    not_found(aios2.post(f"/documents/{region.doc['id']}/signatures", json={"verdict": "agreed"}))


def test_an_aios_may_sign_their_own_plan_but_not_a_colleagues(world, region):
    aios, aios2 = world.api("aios"), world.api("aios2")
    not_found(aios2.post(f"/documents/{region.doc['id']}/signatures", json={"verdict": "agreed"}))
    sign(aios, region.doc)


# -- opleider and coc chair: their own institution ---------------------------------------------


@pytest.mark.parametrize("name, institution", [("opleider", "meander"), ("opleider2", "meander"),
                                                ("coc", "meander"), ("opleider_gelre", "gelre"),
                                                ("coc_gelre", "gelre")])
def test_opleider_and_coc_chair_see_every_case_of_their_institution_and_none_of_another(world, region, name,
                                                                                         institution):
    api = world.api(name)
    mine = {"meander": [region.internal, region.internal2, region.gbt],
            "gelre": [region.internal_gelre, region.gbt_gelre]}[institution]
    other = {"meander": [region.internal_gelre, region.gbt_gelre],
             "gelre": [region.internal, region.internal2, region.gbt]}[institution]
    for case in mine:
        assert ok(api.get(f"/cases/{case['id']}"))["institution"] == institution
        ok(api.get(f"/cases/{case['id']}/events"))
    for case in other:
        not_found(api.get(f"/cases/{case['id']}"), case["id"])
        not_found(api.get(f"/cases/{case['id']}/events"), case["id"])
        not_found(api.get(f"/cases/{case['id']}/notifications"), case["id"])
    assert sorted(listed(api)) == sorted(c["id"] for c in mine)
    other_code = "gelre" if institution == "meander" else "meander"
    assert listed(api, f"&institution={other_code}") == []


def test_an_opleider_of_another_institution_cannot_act_on_a_case_or_its_documents(world, region):
    gelre = world.api("opleider_gelre")
    case = region.internal
    not_found(gelre.post(f"/cases/{case['id']}/transitions",
                         json={"trigger": "withdraw", "expected_version": case["version"], "data": {"reason": "x"}}),
              case["id"])
    not_found(gelre.post(f"/cases/{case['id']}/documents", json={"kind": "improvement_plan", "content": PLAN}),
              case["id"])
    not_found(gelre.get(f"/documents/{region.doc['id']}"))
    assert ok(world.api("opleider").get(f"/cases/{case['id']}"))["version"] == case["version"]


def test_a_parent_outside_scope_is_refused_like_a_missing_one(world, region):
    gelre = world.api("opleider_gelre")
    body = {"workflow": "internal_guidance", "institution": "gelre", "subject_id": world.users["aios_gelre"],
            "data": {"signal": "Signaal"}}
    hidden = gelre.post("/cases", json={**body, "parent_id": region.internal["id"]})
    missing = gelre.post("/cases", json={**body, "parent_id": region.internal["id"] + 1000})
    assert hidden.status_code == missing.status_code == 422
    assert hidden.get_json() == missing.get_json()


def test_a_coc_chair_reads_but_cannot_move_an_internal_guidance_case(world, region):
    coc = world.api("coc")
    case = ok(coc.get(f"/cases/{region.internal['id']}"))
    assert case["available_triggers"] == []
    response = coc.post(f"/cases/{case['id']}/transitions",
                        json={"trigger": "start_guidance", "expected_version": case["version"],
                              "data": {"iop_updated": True}})
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"


# -- hr: intensified guidance of its institution, read only --------------------------------------


def test_hr_sees_the_gbt_cases_of_its_institution_but_no_internal_guidance(world, region):
    hr = world.api("hr")
    gbt = ok(hr.get(f"/cases/{region.gbt['id']}"))
    assert gbt["workflow"] == "intensified_guidance" and gbt["available_triggers"] == []
    ok(hr.get(f"/cases/{region.gbt['id']}/events"))
    ok(hr.get(f"/cases/{region.gbt['id']}/notifications"))
    for case in (region.internal, region.internal2, region.internal_gelre, region.gbt_gelre):
        not_found(hr.get(f"/cases/{case['id']}"), case["id"])
        not_found(hr.get(f"/cases/{case['id']}/events"), case["id"])
    not_found(hr.get(f"/documents/{region.doc['id']}"))
    assert listed(hr) == [region.gbt["id"]]
    assert listed(hr, "&workflow=internal_guidance") == []
    assert listed(world.api("hr_gelre")) == [region.gbt_gelre["id"]]


def test_hr_sees_a_gbt_opened_by_intensify_but_not_its_internal_parent(world):
    opleider, aios, hr = world.api("opleider"), world.api("aios"), world.api("hr")
    case = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    case = fire(opleider, case, "record_evaluation", evaluation(False))
    case = fire(opleider, case, "intensify", {"report": "Onvoldoende", "decision_moment": "progress_meeting",
                                              "decision_date": "2026-03-02", "reasons": "Geen verbetering",
                                              "aios_informed_of_dispute_procedure": True})
    [child_id] = case["child_ids"]
    child = ok(hr.get(f"/cases/{child_id}"))
    assert child["parent_id"] is None  # the internal trajectory is outside HR's scope: not even its id
    assert ok(opleider.get(f"/cases/{child_id}"))["parent_id"] == case["id"]
    not_found(hr.get(f"/cases/{case['id']}"), case["id"])
    assert listed(hr) == [child_id]
    not_found(world.api("hr_gelre").get(f"/cases/{child_id}"), child_id)


def test_hr_cannot_move_sign_or_write_on_a_gbt_case(world, region):
    opleider, hr = world.api("opleider"), world.api("hr")
    gbt = region.gbt
    iop = ok(opleider.post(f"/cases/{gbt['id']}/documents", json={"kind": "adjusted_iop", "content": {
        "goals": ["Zelfstandig"], "conditions": "Supervisor", "start_date": "2026-04-01", "end_date": "2026-08-01",
        "assessment_method": "KPB"}}), 201)
    for response in (
        hr.post(f"/cases/{gbt['id']}/transitions", json={"trigger": "start", "expected_version": gbt["version"]}),
        hr.post(f"/cases/{gbt['id']}/documents", json={"kind": "progress_report",
                                                         "content": {"meeting_date": "2026-05-01", "summary": "x"}}),
        hr.post(f"/documents/{iop['id']}/signatures", json={"verdict": "agreed"}),
    ):
        assert response.status_code == 403, response.get_data(as_text=True)
        assert response.get_json()["error"]["code"] == "forbidden"
    assert ok(hr.get(f"/documents/{iop['id']}"))["signatures"] == []
    assert ok(opleider.get(f"/cases/{gbt['id']}"))["version"] == gbt["version"]


# -- rvb and the regional roles: no guidance trajectories at all -----------------------------------


@pytest.mark.parametrize("name", NO_GUIDANCE)
def test_rvb_and_regional_roles_see_no_guidance_case_at_all(world, region, name):
    api = world.api(name)
    for case in (region.internal, region.internal2, region.internal_gelre, region.gbt, region.gbt_gelre):
        not_found(api.get(f"/cases/{case['id']}"), case["id"])
        not_found(api.get(f"/cases/{case['id']}/events"), case["id"])
        not_found(api.get(f"/cases/{case['id']}/notifications"), case["id"])
    not_found(api.get(f"/documents/{region.doc['id']}"))
    not_found(api.get(f"/documents/{region.doc['id']}/pdf"))
    assert listed(api) == []
    for query in ("&workflow=internal_guidance", "&workflow=intensified_guidance", "&institution=meander",
                  "&overdue=true", "&overdue=false"):
        assert listed(api, query) == []
    assert access_log(world) == []  # nothing was read


@pytest.mark.parametrize("name", NO_GUIDANCE)
def test_rvb_and_regional_roles_cannot_act_on_a_guidance_case(world, region, name):
    api = world.api(name)
    case = region.gbt
    not_found(api.post(f"/cases/{case['id']}/transitions", json={"trigger": "start", "expected_version": 1}),
              case["id"])
    not_found(api.post(f"/documents/{region.doc['id']}/signatures", json={"verdict": "agreed"}))


# -- admin: everything -----------------------------------------------------------------------


def test_admin_sees_every_case_of_every_institution(world, region):
    admin = world.api("admin")
    assert set(listed(admin)) == region.all_ids
    for case_id in region.all_ids:
        assert ok(admin.get(f"/cases/{case_id}"))["id"] == case_id
    assert ok(admin.get(f"/documents/{region.doc['id']}"))["id"] == region.doc["id"]
    assert sorted(listed(admin, "&institution=gelre")) == sorted([region.internal_gelre["id"],
                                                                  region.gbt_gelre["id"]])


def test_admin_may_look_but_not_act_as_an_opleider(world, region):
    admin = world.api("admin")
    case = ok(admin.get(f"/cases/{region.internal['id']}"))
    response = admin.post(f"/cases/{case['id']}/transitions",
                          json={"trigger": "start_guidance", "expected_version": case["version"],
                                "data": {"iop_updated": True}})
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"


# -- the list: filters and cursor pagination ----------------------------------------------------


def test_the_list_filters_by_workflow_state_and_institution(world, region):
    admin, opleider = world.api("admin"), world.api("opleider")
    assert sorted(listed(admin, "&workflow=intensified_guidance")) == sorted([region.gbt["id"],
                                                                              region.gbt_gelre["id"]])
    assert sorted(listed(admin, "&workflow=internal_guidance")) == sorted([
        region.internal["id"], region.internal2["id"], region.internal_gelre["id"]])
    assert listed(admin, "&state=plan") == [region.internal["id"]]
    assert sorted(listed(admin, "&state=signalled")) == sorted([region.internal2["id"], region.internal_gelre["id"]])
    assert listed(admin, "&state=no_such_state") == []
    assert listed(admin, "&workflow=no_such_workflow") == []
    assert listed(admin, "&workflow=internal_guidance&state=signalled&institution=gelre") == [
        region.internal_gelre["id"]]
    assert listed(opleider, "&workflow=intensified_guidance&institution=meander") == [region.gbt["id"]]
    items = ok(opleider.get("/cases?state=plan"))["items"]
    assert [c["state"] for c in items] == ["plan"] and items[0]["documents"][0]["id"] == region.doc["id"]


def test_the_list_filters_overdue_cases(world, clock):
    opleider, aios = world.api("opleider"), world.api("aios")
    late = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    on_time = open_internal(opleider, world.users["aios2"])
    assert listed(opleider, "&overdue=true") == []
    assert sorted(listed(opleider, "&overdue=false")) == sorted([late["id"], on_time["id"]])
    clock.advance(days=92)  # past the plan's term end (2026-06-01), before any sweep marked it
    opleider = world.api("opleider")  # the old token has expired by now
    assert listed(opleider, "&overdue=true") == [late["id"]]
    assert listed(opleider, "&overdue=false") == [on_time["id"]]
    assert listed(world.api("opleider_gelre"), "&overdue=true") == []
    assert listed(world.api("aios2"), "&overdue=true") == []


def test_cursor_pagination_returns_every_case_once(world):
    opleider = world.api("opleider")
    opened = {open_internal(opleider, world.users["aios" if i % 2 else "aios2"])["id"] for i in range(7)}
    seen, pages, cursor = [], [], None
    while True:
        page = ok(opleider.get("/cases?limit=3" + (f"&cursor={cursor}" if cursor else "")))
        pages.append(len(page["items"]))
        seen += [c["id"] for c in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert pages == [3, 3, 1]
    assert len(seen) == len(set(seen)) and set(seen) == opened
    assert seen == sorted(seen, reverse=True)  # newest first


def test_cursor_pagination_of_a_page_that_ends_exactly(world):
    opleider = world.api("opleider")
    opened = {open_internal(opleider, world.users["aios"])["id"] for _ in range(4)}
    first = ok(opleider.get("/cases?limit=2"))
    second = ok(opleider.get(f"/cases?limit=2&cursor={first['next']}"))
    assert second["next"] is None
    assert {c["id"] for c in first["items"] + second["items"]} == opened
    assert ok(opleider.get("/cases?limit=4"))["next"] is None


def test_cursor_pagination_keeps_filters_and_scope(world, region):
    opleider = world.api("opleider")
    extra = {open_internal(opleider, world.users["aios2"])["id"] for _ in range(4)}
    seen, cursor = [], None
    while True:
        page = ok(opleider.get("/cases?limit=2&workflow=internal_guidance&state=signalled"
                               + (f"&cursor={cursor}" if cursor else "")))
        assert all(c["workflow"] == "internal_guidance" and c["state"] == "signalled" and
                   c["institution"] == "meander" for c in page["items"])
        seen += [c["id"] for c in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert set(seen) == extra | {region.internal2["id"]}


def test_cases_opened_while_paging_do_not_disturb_the_pages(world):
    opleider = world.api("opleider")
    opened = [open_internal(opleider, world.users["aios"])["id"] for _ in range(4)]
    first = ok(opleider.get("/cases?limit=2"))
    open_internal(opleider, world.users["aios"])  # newer than the cursor: not on later pages
    second = ok(opleider.get(f"/cases?limit=2&cursor={first['next']}"))
    assert [c["id"] for c in first["items"] + second["items"]] == sorted(opened, reverse=True)


# -- the access log ----------------------------------------------------------------------------


@pytest.mark.parametrize("reader", ["aios", "opleider", "coc", "admin"])
def test_every_read_of_a_personal_case_is_logged_with_the_reader(world, region, reader):
    api = world.api(reader)
    case_id, doc_id = region.internal["id"], region.doc["id"]
    before = access_log(world, case_id)
    ok(api.get(f"/cases/{case_id}"))
    ok(api.get(f"/cases/{case_id}/events"))
    ok(api.get(f"/cases/{case_id}/notifications"))
    ok(api.get(f"/documents/{doc_id}"))
    pdf = api.get(f"/documents/{doc_id}/pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    new = access_log(world, case_id)[len(before):]
    uid = world.users[reader]
    assert new == [(uid, case_id, "read"), (uid, case_id, "events"), (uid, case_id, "notifications"),
                   (uid, case_id, "document"), (uid, case_id, "document_pdf")]


def test_hr_reading_a_gbt_is_logged(world, region):
    hr = world.api("hr")
    ok(hr.get(f"/cases/{region.gbt['id']}"))
    ok(hr.get(f"/cases/{region.gbt['id']}/events"))
    assert access_log(world, region.gbt["id"])[-2:] == [(world.users["hr"], region.gbt["id"], "read"),
                                                        (world.users["hr"], region.gbt["id"], "events")]


def test_listing_personal_cases_logs_each_listed_case_for_the_reader(world, region):
    coc = world.api("coc")
    before = len(access_log(world))
    page = ok(coc.get("/cases"))
    new = access_log(world)[before:]
    assert sorted(new) == sorted((world.users["coc"], c["id"], "list") for c in page["items"])
    assert {c["id"] for c in page["items"]} == {region.internal["id"], region.internal2["id"], region.gbt["id"]}


def test_a_refused_read_logs_no_read(world, region):
    before = access_log(world)
    not_found(world.api("opleider_gelre").get(f"/cases/{region.internal['id']}"), region.internal["id"])
    not_found(world.api("rso").get(f"/cases/{region.internal['id']}/events"), region.internal["id"])
    assert access_log(world) == before


# -- the subject of a case --------------------------------------------------------------------


@pytest.mark.parametrize("subject", ["opleider2", "coc", "hr", "aios_gelre", "admin", "rso", "no_such_user"])
@pytest.mark.parametrize("workflow", ["internal_guidance", "intensified_guidance"])
def test_a_subject_who_is_no_aios_here_is_refused_like_a_user_who_does_not_exist(world, subject, workflow):
    opleider = world.api("opleider")
    data = {"signal": "Signaal", "decision_moment": "progress_meeting", "decision_date": "2026-03-02",
            "reasons": "Onvoldoende voortgang", "aios_informed_of_dispute_procedure": True}
    body = {"workflow": workflow, "institution": "meander", "data": data}
    missing = opleider.post("/cases", json={**body, "subject_id": 10**9})
    refused = opleider.post("/cases", json={**body, "subject_id": world.users.get(subject, 10**9 + 1)})
    for response in (missing, refused):
        assert response.status_code == 422, response.get_data(as_text=True)
        assert response.get_json()["error"]["code"] == "validation_error"
        assert set(response.get_json()["error"]["details"]) == {"subject_id"}
    assert refused.get_json() == missing.get_json()
    assert listed(world.api("admin")) == []


def test_an_aios_of_another_institution_is_refused_there_too(world):
    gelre = world.api("opleider_gelre")
    body = {"workflow": "internal_guidance", "institution": "gelre", "data": {"signal": "Signaal"}}
    missing = gelre.post("/cases", json={**body, "subject_id": 10**9})
    refused = gelre.post("/cases", json={**body, "subject_id": world.users["aios"]})
    assert refused.status_code == missing.status_code == 422
    assert refused.get_json() == missing.get_json()
    assert ok(gelre.post("/cases", json={**body, "subject_id": world.users["aios_gelre"]}), 201)
