"""Every error of the contract (CONTRACT.md section 2) through HTTP: status, code, message, details.

And after every refused write: nothing half-written (the case's version, state, events,
documents, deadlines and notifications, and no stray rows anywhere).
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, func, select

from engine.models import AuditEvent, Case, Deadline, Document, Notification, RoleAssignment, Signature, User
from flows import PLAN, evaluation, fire, ok, open_internal, sign, to_guidance, to_plan

API = "/api/v1"
PASSWORD = "paarse olifant op de fiets"  # passes the policy (web/passwords.py)


# -- helpers -------------------------------------------------------------------------


def error(response, status: int, code: str) -> dict:
    """The contract's error shape, exactly: {"error": {"code", "message", "details"}}."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.is_json, response.headers.get("Content-Type")
    body = response.get_json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"code", "message", "details"}, err
    assert err["code"] == code, err
    assert isinstance(err["message"], str) and err["message"].strip(), err
    assert isinstance(err["details"], dict), err
    return err


def strict_json(response):
    """The body parsed as standard JSON (no NaN or Infinity): what any client must be able to read."""
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(response.get_data(as_text=True), parse_constant=refuse)


def raw_post(world, api, path, data: bytes | str, content_type="application/json"):
    return world.client.post(API + path, data=data, content_type=content_type,
                             headers={"Authorization": f"Bearer {api.token}"})


def row_counts(world) -> dict:
    from web.extensions import db

    with world.app.app_context():
        return {model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
                for model in (Case, AuditEvent, Document, Signature, Deadline, Notification)}


def case_view(api, case_id) -> dict:
    case = ok(api.get(f"/cases/{case_id}"))
    events = ok(api.get(f"/cases/{case_id}/events"))
    notifications = ok(api.get(f"/cases/{case_id}/notifications"))
    return {
        "version": case["version"], "state": case["state"], "data": case["data"], "closed_at": case["closed_at"],
        "deadlines": case["deadlines"], "documents": case["documents"], "child_ids": case["child_ids"],
        "events": [(e["seq"], e["hash"]) for e in events], "notifications": [n["id"] for n in notifications],
    }


@contextmanager
def nothing_written(world, case_id=None, reader=None):
    """The refused request inside the block leaves the case, and every table, as it was."""
    reader = reader or world.api("admin")
    before = (case_view(reader, case_id) if case_id else None, row_counts(world))
    yield
    after = (case_view(reader, case_id) if case_id else None, row_counts(world))
    assert after == before


def set_password(world, *names, password=PASSWORD):
    from web.auth import hash_password
    from web.extensions import db

    with world.app.app_context():
        for name in names:
            db.session.get(User, world.users[name]).password_hash = hash_password(password)
        db.session.commit()


def login(world, email, password):
    return world.client.post(API + "/auth/tokens", json={"email": email, "password": password})


@pytest.fixture
def plan_case(world):
    """A case in `plan` with an unsigned improvement plan: (opleider, aios, case, document)."""
    opleider, aios = world.api("opleider"), world.api("aios")
    case, doc = to_plan(opleider, aios, open_internal(opleider, world.users["aios"]))
    return opleider, aios, case, doc


ADJUSTED_IOP = {
    "goals": ["Zelfstandig een elektieve lijst draaien"],
    "conditions": "Vaste supervisor",
    "start_date": "2026-04-01",
    "end_date": "2026-08-01",
    "assessment_method": "KPB en 360-graden feedback",
}


def open_gbt(opleider, aios_id, **data):
    return ok(opleider.post("/cases", json={
        "workflow": "intensified_guidance", "institution": "meander", "subject_id": aios_id, "title": "GBT",
        "data": {"decision_moment": "progress_meeting", "decision_date": "2026-03-02",
                 "reasons": "Onvoldoende voortgang", "aios_informed_of_dispute_procedure": True, **data}}), 201)


# -- 400 / 422 validation_error: the body ---------------------------------------------


WRITE_PATHS = ["/cases", "/cases/{case}/transitions", "/cases/{case}/documents", "/documents/{doc}/signatures"]


@pytest.mark.parametrize("path", WRITE_PATHS)
def test_it_answers_a_malformed_json_body_with_400_validation_error(world, plan_case, path):
    opleider, _, case, doc = plan_case
    with nothing_written(world, case["id"]):
        err = error(raw_post(world, opleider, path.format(case=case["id"], doc=doc["id"]), b"{not json"),
                    400, "validation_error")
    assert err["details"]


def test_it_answers_a_malformed_login_body_with_400_validation_error(world):
    response = world.client.post(API + "/auth/tokens", data=b"{not json", content_type="application/json")
    error(response, 400, "validation_error")


@pytest.mark.parametrize("body", [b"[1, 2]", b'"a string"', b"null", b"42"])
def test_it_refuses_a_json_body_that_is_not_an_object(world, body):
    opleider = world.api("opleider")
    with nothing_written(world):
        response = raw_post(world, opleider, "/cases", body)
        assert response.status_code in (400, 422), response.get_data(as_text=True)
        error(response, response.status_code, "validation_error")


def test_it_names_every_field_of_the_wrong_type_when_opening_a_case(world):
    opleider = world.api("opleider")
    with nothing_written(world):
        err = error(opleider.post("/cases", json={
            "workflow": 1, "institution": ["meander"], "subject_id": str(world.users["aios"]), "parent_id": 1.5,
            "title": 7, "data": ["signal"]}), 422, "validation_error")
    assert set(err["details"]) == {"workflow", "institution", "subject_id", "parent_id", "title", "data"}


def test_it_names_every_missing_field_when_opening_a_case(world):
    err = error(world.api("opleider").post("/cases", json={}), 422, "validation_error")
    assert set(err["details"]) == {"workflow", "institution"}


def test_it_names_unknown_fields_when_opening_a_case_and_opens_nothing(world):
    opleider = world.api("opleider")
    with nothing_written(world):
        err = error(opleider.post("/cases", json={
            "workflow": "internal_guidance", "institution": "meander", "subject_id": world.users["aios"],
            "data": {"signal": "Signaal"}, "state": "guidance", "opened_by": world.users["admin"]}),
            422, "validation_error")
    assert set(err["details"]) == {"state", "opened_by"}
    assert ok(opleider.get("/cases"))["items"] == []


def test_it_names_a_wrongly_typed_data_field_when_opening_a_case(world):
    opleider = world.api("opleider")
    with nothing_written(world):
        err = error(opleider.post("/cases", json={
            "workflow": "internal_guidance", "institution": "meander", "subject_id": world.users["aios"],
            "data": {"signal": 42}}), 422, "validation_error")
    assert set(err["details"]) == {"data.signal"}


def test_it_refuses_an_unknown_workflow_as_a_validation_error(world):
    opleider = world.api("opleider")
    with nothing_written(world):
        err = error(opleider.post("/cases", json={"workflow": "no_such_workflow", "institution": "meander",
                                                  "subject_id": world.users["aios"], "data": {}}),
                    422, "validation_error")
    assert set(err["details"]) == {"workflow"}


def test_it_refuses_an_unknown_institution_as_a_validation_error(world):
    err = error(world.api("opleider").post("/cases", json={
        "workflow": "internal_guidance", "institution": "nowhere", "subject_id": world.users["aios"],
        "data": {"signal": "Signaal"}}), 422, "validation_error")
    assert set(err["details"]) == {"institution"}


def test_it_requires_a_subject_where_the_workflow_has_one(world):
    err = error(world.api("opleider").post("/cases", json={
        "workflow": "internal_guidance", "institution": "meander", "data": {"signal": "Signaal"}}),
        422, "validation_error")
    assert set(err["details"]) == {"subject_id"}


def test_it_names_every_wrongly_typed_field_of_a_transition_and_changes_nothing(world):
    opleider = world.api("opleider")
    case = open_internal(opleider, world.users["aios"])
    with nothing_written(world, case["id"]):
        err = error(opleider.post(f"/cases/{case['id']}/transitions",
                                  json={"trigger": 5, "expected_version": "1", "data": "analyse"}),
                    422, "validation_error")
    assert set(err["details"]) == {"trigger", "expected_version", "data"}


@pytest.mark.parametrize("version", [True, 1.0, 1.5, None, [1]])
def test_it_accepts_only_an_integer_as_expected_version(world, version):
    opleider = world.api("opleider")
    case = open_internal(opleider, world.users["aios"])
    with nothing_written(world, case["id"]):
        err = error(opleider.post(f"/cases/{case['id']}/transitions",
                                  json={"trigger": "analyse", "expected_version": version}), 422, "validation_error")
    assert "expected_version" in err["details"]


def test_it_names_the_missing_fields_of_a_transition(world):
    opleider = world.api("opleider")
    case = open_internal(opleider, world.users["aios"])
    with nothing_written(world, case["id"]):
        err = error(opleider.post(f"/cases/{case['id']}/transitions", json={}), 422, "validation_error")
    assert set(err["details"]) == {"trigger", "expected_version"}


def test_it_names_unknown_fields_of_a_transition_and_changes_nothing(world):
    opleider = world.api("opleider")
    case = open_internal(opleider, world.users["aios"])
    with nothing_written(world, case["id"]):
        err = error(opleider.post(f"/cases/{case['id']}/transitions",
                                  json={"trigger": "analyse", "expected_version": 1, "state": "closed"}),
                    422, "validation_error")
    assert set(err["details"]) == {"state"}


def test_it_names_a_wrongly_typed_field_in_transition_data_and_changes_nothing(world):
    opleider = world.api("opleider")
    case = fire(opleider, open_internal(opleider, world.users["aios"]), "analyse")
    with nothing_written(world, case["id"]):
        err = error(opleider.post(f"/cases/{case['id']}/transitions", json={
            "trigger": "discuss", "expected_version": case["version"], "data": {"core_problem": ["a", "b"]}}),
            422, "validation_error")
    assert set(err["details"]) == {"data.core_problem"}


def test_it_names_a_wrongly_typed_nested_field_of_an_evaluation(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    with nothing_written(world, case["id"]):
        err = error(opleider.post(f"/cases/{case['id']}/transitions", json={
            "trigger": "record_evaluation", "expected_version": case["version"],
            "data": {"evaluation": {"date": "1 april", "summary": 3, "sufficient": "yes"}}}),
            422, "validation_error")
    assert set(err["details"]) == {"data.evaluation.date", "data.evaluation.summary", "data.evaluation.sufficient"}


def test_it_refuses_an_unknown_trigger_as_a_validation_error_and_changes_nothing(world):
    opleider = world.api("opleider")
    case = open_internal(opleider, world.users["aios"])
    with nothing_written(world, case["id"]):
        err = error(opleider.post(f"/cases/{case['id']}/transitions",
                                  json={"trigger": "teleport", "expected_version": 1}), 422, "validation_error")
    assert set(err["details"]) == {"trigger"}


def test_it_names_the_wrong_fields_of_a_document_and_writes_nothing(world, plan_case):
    opleider, _, case, _ = plan_case
    with nothing_written(world, case["id"]):
        types = error(opleider.post(f"/cases/{case['id']}/documents", json={"kind": 5, "content": "plan"}),
                      422, "validation_error")
        missing = error(opleider.post(f"/cases/{case['id']}/documents", json={}), 422, "validation_error")
        unknown = error(opleider.post(f"/cases/{case['id']}/documents",
                                      json={"kind": "improvement_plan", "content": PLAN, "version": 9}),
                        422, "validation_error")
    assert set(types["details"]) == {"kind", "content"}
    assert set(missing["details"]) == {"kind", "content"}
    assert set(unknown["details"]) == {"version"}


def test_it_names_every_wrong_field_inside_a_documents_content_and_writes_nothing(world, plan_case):
    opleider, _, case, _ = plan_case
    content = {"learning_goals": "not a list", "approach": 3, "support": "Supervisor", "bogus": "x"}
    with nothing_written(world, case["id"]):
        err = error(opleider.post(f"/cases/{case['id']}/documents",
                                  json={"kind": "improvement_plan", "content": content}), 422, "validation_error")
    assert set(err["details"]) == {"content.learning_goals", "content.approach", "content.term_end", "content.bogus"}


def test_it_names_every_missing_field_of_a_document(world, plan_case):
    opleider, _, case, _ = plan_case
    with nothing_written(world, case["id"]):
        err = error(opleider.post(f"/cases/{case['id']}/documents", json={
            "kind": "improvement_plan", "content": {"learning_goals": [], "approach": "  "}}), 422, "validation_error")
    assert set(err["details"]) == {"content.learning_goals", "content.approach", "content.support",
                                   "content.term_end"}


def test_it_keeps_optional_document_fields_optional(world):
    opleider = world.api("opleider")
    gbt = open_gbt(opleider, world.users["aios"])
    content = {"assessment_date": "2026-08-01", "outcome": "suitable", "motivation": "Voldoende gegroeid"}
    doc = ok(opleider.post(f"/cases/{gbt['id']}/documents",
                           json={"kind": "suitability_assessment", "content": content}), 201)
    assert doc["content"] == content


def test_it_requires_every_field_of_an_evaluation(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    with nothing_written(world, case["id"]):
        err = error(opleider.post(f"/cases/{case['id']}/transitions", json={
            "trigger": "record_evaluation", "expected_version": case["version"],
            "data": {"evaluation": {"date": "2026-04-01"}}}), 422, "precondition_failed")
    assert {u["field"] for u in err["details"]["unmet"]} == {"data.evaluation.summary", "data.evaluation.sufficient"}


def test_it_refuses_an_unknown_document_kind_and_writes_nothing(world, plan_case):
    opleider, _, case, _ = plan_case
    with nothing_written(world, case["id"]):
        err = error(opleider.post(f"/cases/{case['id']}/documents", json={"kind": "adjusted_iop", "content": {}}),
                    422, "validation_error")
    assert set(err["details"]) == {"kind"}


def test_it_refuses_a_gbt_plan_shorter_than_three_months_and_writes_nothing(world):
    opleider = world.api("opleider")
    gbt = open_gbt(opleider, world.users["aios"])
    with nothing_written(world, gbt["id"]):
        err = error(opleider.post(f"/cases/{gbt['id']}/documents", json={
            "kind": "adjusted_iop", "content": {**ADJUSTED_IOP, "end_date": "2026-06-29"}}), 422, "validation_error")
    assert set(err["details"]) == {"content.end_date"}


def test_it_names_the_wrong_fields_of_a_signature_and_signs_nothing(world, plan_case):
    opleider, _, case, doc = plan_case
    with nothing_written(world, case["id"]):
        types = error(opleider.post(f"/documents/{doc['id']}/signatures", json={"verdict": "maybe", "comment": 5}),
                      422, "validation_error")
        missing = error(opleider.post(f"/documents/{doc['id']}/signatures", json={}), 422, "validation_error")
        unknown = error(opleider.post(f"/documents/{doc['id']}/signatures",
                                      json={"verdict": "agreed", "signer_id": world.users["aios"]}),
                        422, "validation_error")
    assert set(types["details"]) == {"verdict", "comment"}
    assert set(missing["details"]) == {"verdict"}
    assert set(unknown["details"]) == {"signer_id"}


def test_it_lets_only_the_subject_sign_seen_not_agreed(world, plan_case):
    opleider, _, case, doc = plan_case
    with nothing_written(world, case["id"]):
        err = error(opleider.post(f"/documents/{doc['id']}/signatures", json={"verdict": "seen_not_agreed"}),
                    422, "validation_error")
    assert set(err["details"]) == {"verdict"}


@pytest.mark.parametrize("query, fields", [
    ("cursor=!!!", {"cursor"}),
    ("limit=0", {"limit"}),
    ("limit=201", {"limit"}),
    ("overdue=maybe", {"overdue"}),
    ("limit=ten&overdue=perhaps", {"limit", "overdue"}),
])
def test_it_names_wrong_query_parameters_of_the_case_list(world, query, fields):
    err = error(world.api("opleider").get(f"/cases?{query}"), 422, "validation_error")
    assert set(err["details"]) == fields


# -- 401 unauthenticated ---------------------------------------------------------------


def unauthenticated(response):
    err = error(response, 401, "unauthenticated")
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")
    return err


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer not-a-token"},
    {"Authorization": "Basic b3BsZWlkZXJAdGVzdC5ubDp4"},
    {"Authorization": "Bearer " + "x" * 5000},
], ids=["none", "empty", "garbage", "basic", "huge"])
def test_it_answers_401_without_a_valid_token(world, headers):
    case = open_internal(world.api("opleider"), world.users["aios"])
    for method, path in [("get", "/me"), ("get", "/cases"), ("get", f"/cases/{case['id']}"),
                         ("post", "/cases"), ("post", f"/cases/{case['id']}/transitions"),
                         ("delete", "/auth/tokens")]:
        unauthenticated(getattr(world.client, method)(API + path, headers=headers, json={}))


def test_it_refuses_a_write_without_a_token_and_changes_nothing(world):
    case = open_internal(world.api("opleider"), world.users["aios"])
    with nothing_written(world, case["id"]):
        unauthenticated(world.client.post(f"{API}/cases/{case['id']}/transitions",
                                          json={"trigger": "analyse", "expected_version": 1}))


def test_it_refuses_an_expired_token(world, clock):
    opleider = world.api("opleider")
    clock.advance(hours=11, minutes=59)
    assert ok(opleider.get("/me"))["id"] == world.users["opleider"]
    clock.advance(minutes=1, seconds=1)
    unauthenticated(opleider.get("/me"))
    unauthenticated(opleider.get("/cases"))


def test_it_refuses_a_token_after_logout_but_keeps_the_users_other_tokens(world):
    first, second = world.api("opleider"), world.api("opleider")
    response = world.client.delete(API + "/auth/tokens", headers={"Authorization": f"Bearer {first.token}"})
    assert response.status_code == 204, response.get_data(as_text=True)
    unauthenticated(first.get("/me"))
    unauthenticated(world.client.delete(API + "/auth/tokens", headers={"Authorization": f"Bearer {first.token}"}))
    assert ok(second.get("/me"))["id"] == world.users["opleider"]


def test_it_refuses_the_token_of_a_deactivated_user(world):
    from web.extensions import db

    opleider = world.api("opleider")
    with world.app.app_context():
        db.session.get(User, world.users["opleider"]).active = False
        db.session.commit()
    unauthenticated(opleider.get("/me"))


# -- logging in -----------------------------------------------------------------------


def test_it_exchanges_the_right_password_for_a_token_that_works(world, clock):
    set_password(world, "opleider")
    response = login(world, "opleider@test.nl", PASSWORD)
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) >= {"token", "expires_at"} and body["token"]
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert clock.now() < expires <= clock.now() + timedelta(days=1)
    me = world.client.get(API + "/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200 and me.get_json()["email"] == "opleider@test.nl"


def test_it_answers_a_wrong_password_and_an_unknown_account_alike(world):
    set_password(world, "opleider")
    wrong = error(login(world, "opleider@test.nl", "wrong"), 401, "unauthenticated")
    unknown = error(login(world, "nobody@test.nl", "wrong"), 401, "unauthenticated")
    no_password = error(login(world, "coc@test.nl", "wrong"), 401, "unauthenticated")  # never had a password
    assert wrong == unknown == no_password


def test_it_names_the_missing_fields_of_a_login(world):
    err = error(world.client.post(API + "/auth/tokens", json={"email": "opleider@test.nl"}), 422, "validation_error")
    assert set(err["details"]) == {"password"}


def test_it_rate_limits_repeated_wrong_passwords_for_one_account(world):
    set_password(world, "opleider", "aios")
    statuses = [login(world, "aios@test.nl", f"guess-{i}").status_code for i in range(10)]
    assert statuses == [401] * 10
    err = error(login(world, "aios@test.nl", "guess-10"), 429, "rate_limited")
    assert err["details"] == {}
    # the account stays locked, also for the right password and for the same address spelled otherwise
    error(login(world, "aios@test.nl", PASSWORD), 429, "rate_limited")
    error(login(world, " AIOS@Test.NL ", PASSWORD), 429, "rate_limited")
    # another account is not affected
    response = login(world, "opleider@test.nl", PASSWORD)
    assert response.status_code == 201 and response.get_json()["token"]


def test_it_tells_a_rate_limited_client_when_to_retry(world):
    set_password(world, "aios")
    for i in range(10):
        login(world, "aios@test.nl", f"guess-{i}")
    response = login(world, "aios@test.nl", "guess-10")
    error(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) > 0


def test_it_does_not_count_successful_logins_towards_the_limit(world):
    set_password(world, "aios")
    for _ in range(12):
        assert login(world, "aios@test.nl", PASSWORD).status_code == 201


# -- 403 forbidden ----------------------------------------------------------------------


def test_it_forbids_a_coc_chair_to_fire_a_transition_on_a_case_they_can_see(world):
    opleider, coc = world.api("opleider"), world.api("coc")
    case = open_internal(opleider, world.users["aios"])
    assert ok(coc.get(f"/cases/{case['id']}"))["available_triggers"] == []
    with nothing_written(world, case["id"]):
        err = error(coc.post(f"/cases/{case['id']}/transitions", json={"trigger": "analyse", "expected_version": 1}),
                    403, "forbidden")
    assert err["details"]["allowed_roles"] == ["opleider"]


def test_it_forbids_the_aios_to_move_their_own_case(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = open_internal(opleider, world.users["aios"])
    with nothing_written(world, case["id"]):
        error(aios.post(f"/cases/{case['id']}/transitions", json={"trigger": "analyse", "expected_version": 1}),
              403, "forbidden")
        error(aios.post(f"/cases/{case['id']}/transitions",
                        json={"trigger": "withdraw", "expected_version": 1, "data": {"reason": "Ongegrond"}}),
              403, "forbidden")


@pytest.mark.parametrize("workflow", ["internal_guidance", "intensified_guidance"])
def test_it_forbids_an_aios_to_open_a_guidance_case(world, workflow):
    aios = world.api("aios")
    with nothing_written(world):
        err = error(aios.post("/cases", json={
            "workflow": workflow, "institution": "meander", "subject_id": world.users["aios"],
            "data": {"signal": "Ik wil begeleiding", "decision_moment": "progress_meeting",
                     "aios_informed_of_dispute_procedure": True}}), 403, "forbidden")
    assert err["details"]["allowed_roles"] == ["opleider"]


def test_it_forbids_an_opleider_to_open_a_case_at_another_institution(world):
    with nothing_written(world):
        error(world.api("opleider").post("/cases", json={
            "workflow": "internal_guidance", "institution": "gelre", "subject_id": world.users["aios_gelre"],
            "data": {"signal": "Signaal"}}), 403, "forbidden")


def test_it_forbids_hr_to_add_a_document_or_move_a_gbt_case(world):
    opleider, hr = world.api("opleider"), world.api("hr")
    gbt = open_gbt(opleider, world.users["aios"])
    with nothing_written(world, gbt["id"]):
        error(hr.post(f"/cases/{gbt['id']}/documents", json={"kind": "adjusted_iop", "content": ADJUSTED_IOP}),
              403, "forbidden")
        error(hr.post(f"/cases/{gbt['id']}/transitions", json={"trigger": "start", "expected_version": 1}),
              403, "forbidden")


def test_it_forbids_a_colleague_who_is_no_required_signer_to_sign(world, plan_case):
    _, _, case, doc = plan_case
    opleider2 = world.api("opleider2")
    with nothing_written(world, case["id"]):
        error(opleider2.post(f"/documents/{doc['id']}/signatures", json={"verdict": "agreed"}), 403, "forbidden")


def test_it_forbids_the_aios_to_write_a_document_on_their_case(world, plan_case):
    _, aios, case, _ = plan_case
    with nothing_written(world, case["id"]):
        error(aios.post(f"/cases/{case['id']}/documents", json={"kind": "improvement_plan", "content": PLAN}),
              403, "forbidden")


# -- 404 not_found ----------------------------------------------------------------------


def case_requests(case_id, version=1):
    return [
        ("get", f"/cases/{case_id}", None),
        ("get", f"/cases/{case_id}/events", None),
        ("get", f"/cases/{case_id}/notifications", None),
        ("post", f"/cases/{case_id}/transitions", {"trigger": "analyse", "expected_version": version}),
        ("post", f"/cases/{case_id}/documents", {"kind": "improvement_plan", "content": PLAN}),
    ]


def test_it_answers_404_for_an_unknown_case_on_every_case_endpoint(world):
    opleider = world.api("opleider")
    for method, path, body in case_requests(987654):
        response = getattr(opleider, method)(path, **({"json": body} if body is not None else {}))
        err = error(response, 404, "not_found")
        assert err["details"] == {"case_id": 987654}, path


def test_a_case_outside_scope_is_indistinguishable_from_a_missing_one(world, plan_case):
    _, _, case, _ = plan_case
    gelre = world.api("opleider_gelre")
    missing_id = case["id"] + 1000
    with nothing_written(world, case["id"]):
        for (method, path, body), (_, missing_path, _) in zip(case_requests(case["id"], case["version"]),
                                                              case_requests(missing_id, case["version"])):
            kw = {"json": body} if body is not None else {}
            hidden = error(getattr(gelre, method)(path, **kw), 404, "not_found")
            missing = error(getattr(gelre, method)(missing_path, **kw), 404, "not_found")
            assert hidden["message"] == missing["message"], path
            assert hidden["details"] == {"case_id": case["id"]} and missing["details"] == {"case_id": missing_id}


def test_a_document_outside_scope_is_indistinguishable_from_a_missing_one(world, plan_case):
    _, _, case, doc = plan_case
    gelre = world.api("opleider_gelre")
    with nothing_written(world, case["id"]):
        for method, suffix, body in [("get", "", None), ("get", "/pdf", None),
                                 ("post", "/signatures", {"verdict": "agreed"})]:
            kw = {"json": body} if body is not None else {}
            hidden = error(getattr(gelre, method)(f"/documents/{doc['id']}{suffix}", **kw), 404, "not_found")
            missing = error(getattr(gelre, method)(f"/documents/{doc['id'] + 1000}{suffix}", **kw), 404, "not_found")
            assert hidden["message"] == missing["message"] == "document not found"
            assert hidden["details"] == {"document_id": doc["id"]}
            assert missing["details"] == {"document_id": doc["id"] + 1000}


def test_it_answers_404_for_an_unknown_route_and_workflow(world):
    opleider = world.api("opleider")
    error(opleider.get("/no-such-thing"), 404, "not_found")
    error(world.client.get(API + "/no-such-thing"), 404, "not_found")
    error(opleider.get("/workflows/no_such_workflow"), 404, "not_found")
    error(world.client.get("/no-such-page.json"), 404, "not_found")


@pytest.mark.parametrize("path", ["/cases/99999999999999999999", "/documents/99999999999999999999",
                                  "/cases?cursor=OTk5OTk5OTk5OTk5OTk5OTk5OTk5"])
def test_it_answers_an_id_beyond_64_bits_without_a_server_error(world, path):
    response = world.api("opleider").get(path)
    assert response.status_code in (404, 422), response.get_data(as_text=True)


# -- 405 ------------------------------------------------------------------------------


@pytest.mark.parametrize("method, path", [("put", "/cases/{case}"), ("delete", "/cases"), ("patch", "/cases/{case}"),
                                          ("get", "/cases/{case}/transitions"), ("delete", "/documents/{doc}")])
def test_it_answers_a_wrong_method_with_405_in_the_error_shape(world, plan_case, method, path):
    opleider, _, case, doc = plan_case
    with nothing_written(world, case["id"]):
        response = getattr(world.client, method)(API + path.format(case=case["id"], doc=doc["id"]), json={},
                                                 headers={"Authorization": f"Bearer {opleider.token}"})
        error(response, 405, "method_not_allowed")
    assert method.upper() not in response.headers["Allow"]


# -- 409 transition_not_allowed -----------------------------------------------------------


def test_it_refuses_a_trigger_that_does_not_leave_the_current_state(world):
    opleider = world.api("opleider")
    case = open_internal(opleider, world.users["aios"])
    with nothing_written(world, case["id"]):
        err = error(opleider.post(f"/cases/{case['id']}/transitions", json={
            "trigger": "close", "expected_version": 1, "data": {"outcome_summary": "Klaar"}}),
            409, "transition_not_allowed")
    assert err["details"]["state"] == "signalled" and err["details"]["trigger"] == "close"
    assert set(err["details"]["available"]) == {"analyse", "withdraw"}


def test_it_refuses_any_trigger_on_a_closed_case(world):
    opleider = world.api("opleider")
    case = fire(opleider, open_internal(opleider, world.users["aios"]), "withdraw", {"reason": "Ongegrond"})
    with nothing_written(world, case["id"]):
        error(opleider.post(f"/cases/{case['id']}/transitions",
                            json={"trigger": "analyse", "expected_version": case["version"]}),
              409, "transition_not_allowed")


def test_it_refuses_a_document_on_a_closed_case(world, plan_case):
    opleider, aios, case, doc = plan_case
    sign(opleider, doc)
    sign(aios, doc)
    case = fire(opleider, case, "start_guidance", {"iop_updated": True})
    case = fire(opleider, case, "record_evaluation", evaluation(True))
    case = fire(opleider, case, "close", {"outcome_summary": "Behaald"})
    with nothing_written(world, case["id"]):
        error(opleider.post(f"/cases/{case['id']}/documents", json={"kind": "improvement_plan", "content": PLAN}),
              409, "transition_not_allowed")


def test_it_refuses_to_sign_twice(world, plan_case):
    opleider, _, case, doc = plan_case
    sign(opleider, doc)
    with nothing_written(world, case["id"]):
        err = error(opleider.post(f"/documents/{doc['id']}/signatures", json={"verdict": "agreed"}),
                    409, "transition_not_allowed")
    assert err["details"] == {"document_id": doc["id"]}


# -- 409 version_conflict ------------------------------------------------------------------


@pytest.mark.parametrize("stale", [1, 3, 99])
def test_it_refuses_a_stale_or_future_expected_version_and_names_the_current_one(world, stale):
    opleider = world.api("opleider")
    case = fire(opleider, open_internal(opleider, world.users["aios"]), "analyse")
    assert case["version"] == 2
    with nothing_written(world, case["id"]):
        err = error(opleider.post(f"/cases/{case['id']}/transitions", json={
            "trigger": "discuss", "expected_version": stale, "data": {"core_problem": "Structuur"}}),
            409, "version_conflict")
    assert err["details"]["current_version"] == 2
    assert err["details"]["expected_version"] == stale


def test_the_same_request_twice_moves_the_case_once(world):
    opleider = world.api("opleider")
    case = open_internal(opleider, world.users["aios"])
    request = {"trigger": "analyse", "expected_version": 1}
    assert ok(opleider.post(f"/cases/{case['id']}/transitions", json=request))["version"] == 2
    with nothing_written(world, case["id"]):
        error(opleider.post(f"/cases/{case['id']}/transitions", json=request), 409, "version_conflict")


# -- 422 precondition_failed ------------------------------------------------------------------


def unmet_fields(err) -> set:
    unmet = err["details"]["unmet"]
    assert unmet and all(u["message"] and u["message_nl"] and u["guard"] for u in unmet)
    return {u["field"] for u in unmet}


def test_it_lists_every_unmet_condition_when_opening_a_gbt_and_opens_nothing(world):
    opleider = world.api("opleider")
    with nothing_written(world):
        err = error(opleider.post("/cases", json={
            "workflow": "intensified_guidance", "institution": "meander", "subject_id": world.users["aios"],
            "data": {"aios_informed_of_dispute_procedure": False, "report": "Verslag"}}), 422, "precondition_failed")
    fields = unmet_fields(err)
    assert fields >= {"data.decision_moment", "data.aios_informed_of_dispute_procedure"}
    assert "data.report" not in fields  # only what is missing or wrong


def test_it_lists_both_the_missing_input_and_the_missing_document(world):
    opleider = world.api("opleider")
    case = open_internal(opleider, world.users["aios"])
    case = fire(opleider, case, "analyse")
    case = fire(opleider, case, "discuss", {"core_problem": "Structuur"})
    case = fire(opleider, case, "draft_plan", {"discussion_summary": "Besproken"})
    with nothing_written(world, case["id"]):
        err = error(opleider.post(f"/cases/{case['id']}/transitions",
                                  json={"trigger": "start_guidance", "expected_version": case["version"]}),
                    422, "precondition_failed")
    assert unmet_fields(err) == {"data.iop_updated", "documents.improvement_plan"}


def test_it_lists_every_unsigned_document_of_an_assessment(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    gbt = open_gbt(opleider, world.users["aios"])
    iop = ok(opleider.post(f"/cases/{gbt['id']}/documents", json={"kind": "adjusted_iop", "content": ADJUSTED_IOP}),
             201)
    sign(opleider, iop)
    sign(aios, iop)
    gbt = fire(opleider, gbt, "start")
    report = ok(opleider.post(f"/cases/{gbt['id']}/documents", json={
        "kind": "progress_report", "content": {"meeting_date": "2026-06-01", "summary": "Voortgang"}}), 201)
    sign(opleider, report)
    with nothing_written(world, gbt["id"]):
        err = error(opleider.post(f"/cases/{gbt['id']}/transitions",
                                  json={"trigger": "assess", "expected_version": gbt["version"]}),
                    422, "precondition_failed")
    # and the minimum term: not before the IOP's start + 3 months (CONTRACT.md section 6)
    assert unmet_fields(err) == {"documents.progress_report", "documents.suitability_assessment",
                                 "documents.adjusted_iop.start_date"}
    waiting = {u.get("kind"): u.get("waiting_for") for u in err["details"]["unmet"]}
    assert waiting["progress_report"] == [world.users["aios"]]


def test_a_failing_linked_case_undoes_the_whole_transition(world):
    """intensify opens the GBT in the same transaction: when that fails, nothing of either remains."""
    from web.extensions import db

    opleider, aios = world.api("opleider"), world.api("aios")
    case = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    case = fire(opleider, case, "record_evaluation", evaluation(False))
    with world.app.app_context():  # the aios left meander meanwhile: the GBT cannot be opened for them
        db.session.execute(delete(RoleAssignment).where(RoleAssignment.user_id == world.users["aios"]))
        db.session.commit()
    with nothing_written(world, case["id"], reader=opleider):
        response = opleider.post(f"/cases/{case['id']}/transitions", json={
            "trigger": "intensify", "expected_version": case["version"],
            "data": {"report": "Onvoldoende", "decision_moment": "progress_meeting", "decision_date": "2026-03-02",
                     "reasons": "Geen verbetering", "aios_informed_of_dispute_procedure": True}})
        assert 400 <= response.status_code < 500
        error(response, response.status_code, response.get_json()["error"]["code"])
    assert [c["id"] for c in ok(opleider.get("/cases"))["items"]] == [case["id"]]


def test_it_does_not_let_the_client_forge_the_evaluations_a_guard_checks(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    with nothing_written(world, case["id"]):
        response = opleider.post(f"/cases/{case['id']}/transitions", json={
            "trigger": "close", "expected_version": case["version"],
            "data": {"outcome_summary": "Klaar", "evaluations": [{"sufficient": True}]}})
        assert response.status_code == 422, response.get_data(as_text=True)


# -- 413 -----------------------------------------------------------------------------------


def test_it_refuses_a_body_over_the_limit_in_the_error_shape(world):
    opleider = world.api("opleider")
    body = json.dumps({"workflow": "internal_guidance", "institution": "meander", "subject_id": world.users["aios"],
                       "data": {"signal": "x" * (513 * 1024)}})
    with nothing_written(world):
        error(raw_post(world, opleider, "/cases", body), 413, "payload_too_large")
        error(world.client.post(API + "/auth/tokens", data=body, content_type="application/json"),
              413, "payload_too_large")


def test_a_body_just_under_the_limit_is_read_and_judged_on_its_fields(world):
    opleider = world.api("opleider")
    body = json.dumps({"workflow": "internal_guidance", "institution": "meander", "subject_id": world.users["aios"],
                       "data": {"signal": "x" * (500 * 1024)}})
    err = error(raw_post(world, opleider, "/cases", body), 422, "validation_error")
    assert set(err["details"]) == {"data.signal"}


# -- long strings and Unicode ------------------------------------------------------------------


def test_it_keeps_unicode_intact_through_case_document_signature_and_events(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    title = "Begeleiding — Zoë Çelik 🚑 ĳ 中文 العربية"
    case = ok(opleider.post("/cases", json={
        "workflow": "internal_guidance", "institution": "meander", "subject_id": world.users["aios"],
        "title": title, "data": {"signal": "Signaal: “zelfstandigheid” ✓ \u202eomgekeerd"}}), 201)
    assert case["title"] == title
    case, _ = to_plan(opleider, aios, case)
    plan = {**PLAN, "learning_goals": ["Leerdoel één 🎯", "第二"], "approach": "Ω" * 20000}
    doc = ok(opleider.post(f"/cases/{case['id']}/documents", json={"kind": "improvement_plan", "content": plan}), 201)
    assert doc["content"] == plan
    sign(aios, doc, "seen_not_agreed", "Niet eens — 🙁")
    events = ok(opleider.get(f"/cases/{case['id']}/events"))
    assert events[0]["data"]["input"]["signal"].endswith("\u202eomgekeerd")
    assert events[-1]["data"]["comment"] == "Niet eens — 🙁"
    assert ok(opleider.get(f"/cases/{case['id']}"))["title"] == title
    pdf = opleider.get(f"/documents/{doc['id']}/pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


def test_it_accepts_strings_at_the_limits_and_refuses_one_character_more(world):
    opleider = world.api("opleider")
    base = {"workflow": "internal_guidance", "institution": "meander", "subject_id": world.users["aios"]}
    case = ok(opleider.post("/cases", json={**base, "title": "🚑" * 300, "data": {"signal": "é" * 20000}}), 201)
    assert case["title"] == "🚑" * 300 and len(case["data"]["signal"]) == 20000
    with nothing_written(world):
        title = error(opleider.post("/cases", json={**base, "title": "🚑" * 301, "data": {"signal": "s"}}),
                      422, "validation_error")
        signal = error(opleider.post("/cases", json={**base, "data": {"signal": "é" * 20001}}),
                       422, "validation_error")
        key = error(opleider.post("/cases", json={**base, "data": {"signal": "s", "k" * 101: 1}}),
                    422, "validation_error")
    assert set(title["details"]) == {"title"}
    assert set(signal["details"]) == {"data.signal"}
    assert set(key["details"]) == {"data"}


def test_it_refuses_an_overlong_comment_or_document_field(world, plan_case):
    opleider, _, case, doc = plan_case
    with nothing_written(world, case["id"]):
        comment = error(opleider.post(f"/documents/{doc['id']}/signatures",
                                      json={"verdict": "agreed", "comment": "c" * 20001}), 422, "validation_error")
        content = error(opleider.post(f"/cases/{case['id']}/documents", json={
            "kind": "improvement_plan", "content": {**PLAN, "learning_goals": ["g" * 20001]}}),
            422, "validation_error")
    assert set(comment["details"]) == {"comment"}
    assert set(content["details"]) == {"content.learning_goals"}


def _case_body(world, title='"Titel"', **data):
    return ('{"workflow": "internal_guidance", "institution": "meander", "subject_id": %d, "title": %s, "data": %s}'
            % (world.users["aios"], title, "{" + ", ".join(f'"{k}": {v}' for k, v in
                                                           {"signal": '"Signaal"', **data}.items()) + "}"))


@pytest.mark.parametrize("make_body", [
    pytest.param(lambda w: _case_body(w, title='"nul \\u0000 byte"'), id="nul-in-title"),
    pytest.param(lambda w: _case_body(w, extra='"nul \\u0000 byte"'), id="nul-in-data"),
    pytest.param(lambda w: _case_body(w, title='"\\u202e\\u200b\\ufeff\\u0301"'), id="format-characters"),
    pytest.param(lambda w: _case_body(w, title='"' + "\\ud83d\\ude91" * 300 + '"'), id="escaped-emoji-at-limit"),
    pytest.param(lambda w: _case_body(w, title='"lone \\ud83d"'), id="lone-surrogate-in-title"),
    pytest.param(lambda w: _case_body(w, signal='"lone \\udc00"'), id="lone-surrogate-in-data"),
    pytest.param(lambda w: _case_body(w, **{"\\ud800": '"x"'}), id="lone-surrogate-in-key"),
    pytest.param(lambda w: _case_body(w, extra="NaN"), id="nan"),
    pytest.param(lambda w: _case_body(w, extra="-Infinity"), id="infinity"),
    pytest.param(lambda w: _case_body(w, extra="[" * 5000 + "]" * 5000), id="deep-nesting"),
    pytest.param(lambda w: _case_body(w, extra="9" * 5000), id="huge-integer"),
])
def test_odd_text_and_numbers_get_a_clean_answer_never_a_server_error(world, make_body):
    opleider = world.api("opleider")
    response = raw_post(world, opleider, "/cases", make_body(world).encode("utf-8"))
    assert response.status_code < 500, response.get_data(as_text=True)
    body = strict_json(response)
    if response.status_code >= 400:
        error(response, response.status_code, body["error"]["code"])
    else:
        assert response.status_code == 201
        assert strict_json(opleider.get(f"/cases/{body['id']}"))["id"] == body["id"]


def test_a_body_that_is_not_utf8_is_a_clean_400(world):
    response = raw_post(world, world.api("opleider"), "/cases",
                        _case_body(world, title='"\xff\xfe"').encode("latin-1"))
    error(response, 400, "validation_error")


# -- every error is JSON in the contract's shape -------------------------------------------------


def test_every_error_response_is_json_with_a_code_a_message_and_details(world, plan_case):
    """A sweep over the table: the shape does not depend on which layer answered."""
    opleider, _, case, doc = plan_case
    seen = set()
    for response, status in [
        (raw_post(world, opleider, "/cases", b"{"), 400),
        (world.client.get(API + "/me"), 401),
        (world.api("coc").post(f"/cases/{case['id']}/transitions",
                               json={"trigger": "start_guidance", "expected_version": case["version"]}), 403),
        (opleider.get("/cases/424242"), 404),
        (world.client.put(f"{API}/cases/{case['id']}", headers={"Authorization": f"Bearer {opleider.token}"}), 405),
        (opleider.post(f"/cases/{case['id']}/transitions", json={"trigger": "close", "expected_version": 4}), 409),
        (opleider.post(f"/cases/{case['id']}/transitions", json={"trigger": "analyse", "expected_version": 1}), 409),
        (opleider.post(f"/cases/{case['id']}/transitions",
                       json={"trigger": "start_guidance", "expected_version": case["version"]}), 422),
        (opleider.post("/cases", json={"workflow": 3}), 422),
    ]:
        err = error(response, status, response.get_json()["error"]["code"])
        seen.add((status, err["code"]))
    assert seen == {(400, "validation_error"), (401, "unauthenticated"), (403, "forbidden"), (404, "not_found"),
                    (405, "method_not_allowed"), (409, "transition_not_allowed"), (409, "version_conflict"),
                    (422, "precondition_failed"), (422, "validation_error")}
