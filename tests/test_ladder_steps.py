"""The ladders' steps as CONTRACT.md section 8 and the seeds write them (covenant art. 4, agreement art. 2.5-2.7):
the RSO chair's level, the COC chair at the RvB's level, the Regio-Bestuur's decision, the RGS letter with the
history and both positions, the signal and discussion terms, the RvB told only "zo nodig", the written action
list and the actions in their owners' inboxes, the 2.5 justification, the "zo nodig" skips, no subject_id."""
from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from engine.models import Notification
from flows import fire, ok, with_rso_chair
from test_ladders import consultation, signal, told
from web.extensions import db


@pytest.fixture
def world(world):
    """conftest's world with a voorzitter RSO, the owner of escalated_rso_chair."""
    return with_rso_chair(world)


ACTIONS = [{"description": "Rooster aanpassen zodat elke avonddienst een supervisor heeft", "owner_role": "coc_chair",
            "due_date": "2026-06-01"},
           {"description": "Aiossen bevragen over de bereikbaarheid", "owner_role": "opleider",
            "due_date": "2026-06-15"}]


def pdf_text(api, document_id) -> str:
    response = api.get(f"/documents/{document_id}/pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    # the common letter layout justifies its lines, which stretches their spaces
    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(response.data)).pages).split())


def inbox(api) -> list[dict]:
    body = ok(api.get("/inbox"))
    return body["items"] if isinstance(body, dict) else body  # paged or not (CONTRACT.md section 9)


def with_actions(world):
    rso = world.api("rso")
    case = fire(rso, signal(world), "discuss")
    return fire(rso, case, "agree_actions", {"actions": ACTIONS})


def to_r_coc(world, case):
    chair, coc = world.api("rso_chair"), world.api("coc")
    case = fire(world.api("rso"), case, "escalate", {"reason": "Blijvende zorg over de supervisie"})
    case = fire(chair, case, "escalate", {"reason": "Geen verbetering na de acties"})
    case = fire(coc, case, "escalate", {"reason": "Aanhoudende zorg"})
    return fire(coc, case, "escalate", {"reason": "De Raad van Bestuur reageert niet adequaat"})


@pytest.mark.parametrize("workflow,data", [
    ("escalation", {"description": "Zorg over de opleiding"}),
    ("rso_consultation", {"shortcoming": "Supervisie", "requirement": "quality"}),
    ("rso_quality", {"shortcoming": "Supervisie"}),
    ("rso_obligations", {"shortcoming": "Rooster"}),
])
def test_a_ladder_is_about_the_training_and_refuses_a_subject(world, workflow, data):
    body = ok(world.api("rso").post("/cases", json={"workflow": workflow, "institution": "meander",
                                                     "subject_id": world.users["aios"], "data": data}), 422)
    assert body["error"]["code"] == "validation_error" and "subject_id" in body["error"]["details"]


def test_a_signal_and_its_discussion_each_have_a_response_term_and_the_rvb_is_told_only_when_asked(world):
    rso = world.api("rso")
    case = signal(world)
    [term] = case["deadlines"]
    assert (term["kind"], term["owner_role"]) == ("signal_term", "rso_board")
    assert term["due_at"].startswith("2026-03-16")  # 2 March + 14 days (region.yaml, a proposal)
    case = fire(rso, case, "discuss", {"with_coc_board": True})
    assert not told(world, case["id"], "escalation_rvb_informed")  # "zo nodig": not asked
    terms = {d["kind"]: d for d in case["deadlines"]}
    assert terms["signal_term"]["status"] == "met" and terms["discussion_term"]["due_at"].startswith("2026-03-30")
    other = fire(rso, signal(world), "discuss", {"inform_rvb": True})
    assert told(world, other["id"], "escalation_rvb_informed") == {("rvb@test.nl", "escalation_rvb_informed")}


def test_agreed_actions_go_in_writing_to_each_owner_and_the_coc_chair_and_into_the_owners_inboxes(world):
    case = with_actions(world)
    assert fire(world.api("rso"), signal(world), "discuss")["state"] == "discussion"
    ids = [a["id"] for a in case["data"]["actions"]]
    assert len(set(ids)) == 2 and all(isinstance(i, str) and not i.isdigit() for i in ids)
    [letter] = [d for d in case["documents"] if d["kind"] == "action_list"]
    with world.app.app_context():
        rows = db.session.query(Notification).filter_by(case_id=case["id"], kind="action_list").all()
        assert sorted(n.recipient_role for n in rows) == ["coc_chair", "opleider", "opleider"]  # both opleiders
        assert all(n.attachments == [{"type": "document_pdf", "document_id": letter["id"]}] for n in rows)
    text = pdf_text(world.api("coc"), letter["id"])
    assert "Rooster aanpassen" in text and "voorzitter COC" in text and "15 juni 2026" in text
    assert "Aios —" not in text and ids[0] not in text  # about the training; no codes for people to read
    mine = [i for i in inbox(world.api("opleider")) if i["case_id"] == case["id"]]
    assert [i["reason"] for i in mine] == ["action_required"]  # at once, not only when it is due soon


def test_an_action_is_marked_done_by_its_owner_with_a_note_chosen_by_its_id(world):
    case = with_actions(world)
    coc_action, opleider_action = (a["id"] for a in case["data"]["actions"])
    body = fire(world.api("coc"), case, "complete_action", {"action": opleider_action}, status=422)
    assert [u["guard"] for u in body["error"]["details"]["unmet"]] == ["owns_item"]
    assert fire(world.api("coc"), case, "complete_action", {"action": 1}, status=422)["error"]["details"] == {
        "data.action": ["must be a string"]}
    case = fire(world.api("opleider"), case, "complete_action",
                {"action": opleider_action, "note": "Twaalf aiossen bevraagd; verslag in het RSO-bestuur"})
    assert {d["kind"]: d["status"] for d in case["deadlines"]}[f"action_{opleider_action}"] == "met"
    events = ok(world.api("rso").get(f"/cases/{case['id']}/events"))
    assert events[-1]["data"]["input"]["note"].startswith("Twaalf aiossen")
    case = fire(world.api("rso"), case, "monitor", {"review_date": "2026-07-01"})
    case = fire(world.api("coc"), case, "complete_action", {"action": coc_action})
    assert case["state"] == "monitoring"  # completing an action does not leave monitoring
    assert not [i for i in inbox(world.api("coc")) if i["case_id"] == case["id"]
                and i["reason"] == "action_required"]


def test_the_coc_chair_escalates_to_the_r_coc_when_the_rvb_does_not_act(world):
    case = to_r_coc(world, fire(world.api("rso"), signal(world), "discuss"))
    assert case["state"] == "escalated_r_coc"
    events = ok(world.api("rso").get(f"/cases/{case['id']}/events"))
    assert events[-1]["actor_id"] == world.users["coc"]


def test_the_regio_bestuur_decides_at_the_r_coc_level_and_the_rgs_letter_tells_the_whole_story(world):
    case = to_r_coc(world, with_actions(world))
    regio, rcoc = world.api("regio"), world.api("rcoc")
    assert fire(rcoc, case, "decide", {"decision": "x"}, status=403)["error"]["code"] == "forbidden"
    assert "decide" in ok(regio.get(f"/cases/{case['id']}"))["available_triggers"]
    case = fire(regio, case, "decide", {"decision": "Het Regio-Bestuur acht de maatregelen van de RvB voldoende."})
    assert case["state"] == "escalated_r_coc" and case["data"]["decision"].startswith("Het Regio-Bestuur")
    assert ("rcoc@test.nl", "regio_bestuur_decision") in told(world, case["id"])
    case = fire(rcoc, case, "escalate", {"reason": "De R-COC vindt de supervisie in de avonddienst onveilig.",
                                         "fundamental_disagreement": True})
    [letter] = [d for d in case["documents"] if d["kind"] == "rgs_escalation_letter"]
    text = pdf_text(rcoc, letter["id"])
    for part in ("Geachte leden van de RGS", "Verloop van de escalatieprocedure", "Opgeschaald naar de COC-voorzitter",
                 "Standpunt van de R-COC", "De R-COC vindt de supervisie", "Standpunt van het Regio-Bestuur",
                 "maatregelen van de RvB voldoende", "Gevraagd besluit", "erkenning van de opleiding",
                 "2 maart 2026"):
        assert part in text, part
    assert "Aios —" not in text and "aios@test.nl" not in text


def test_a_2_5_consultation_escalates_without_justification_once_its_term_has_passed(world, clock):
    case = consultation(world, "quality")
    clock.advance(days=31)
    case = fire(world.api("rso"), case, "escalate_quality", {"reason": "Niet nagekomen binnen 30 dagen"})
    assert case["state"] == "escalated"


def test_the_zo_nodig_rungs_of_2_6_may_be_skipped_with_a_recorded_reason(world):
    rso, rcoc = world.api("rso"), world.api("rcoc")
    case = fire(rso, consultation(world, "quality"), "escalate_quality",
                {"reason": "Niet nagekomen", "justification": "De Partij weigert elk overleg"})
    ladder = ok(rso.get(f"/cases/{case['child_ids'][0]}"))
    body = fire(rso, ladder, "skip_level", {"reason": "Geen verbetering", "other_parties_decision": "Partijen 1 april"},
                status=422)
    assert [u["field"] for u in body["error"]["details"]["unmet"]] == ["data.skip_reason"]
    ladder = fire(rso, ladder, "skip_level", {"reason": "Geen verbetering", "other_parties_decision": "Partijen 1 april",
                                              "skip_reason": "De RvB is zelf partij in het verschil"})
    assert ladder["state"] == "escalated_r_coc"  # past the RvB ("zo nodig met escalatie naar de raad van bestuur")
    events = ok(rso.get(f"/cases/{ladder['id']}/events"))
    assert events[-1]["data"]["input"]["skip_reason"] == "De RvB is zelf partij in het verschil"
    ladder = fire(rcoc, ladder, "skip_level", {"reason": "Interventie zonder resultaat", "rgs_decision": "R-COC 1 mei",
                                               "skip_reason": "Het Regio-Bestuur heeft al laten weten niet in te grijpen"})
    assert ladder["state"] == "reported_rgs" and ("rgs@example.org", "rgs_quality_report") in told(world, ladder["id"])


def test_the_rvb_rung_of_2_7_is_not_skipped(world):
    rso = world.api("rso")
    case = fire(rso, consultation(world, "obligations"), "escalate_obligations",
                {"reason": "Niet nagekomen", "justification": "Herhaaldelijk"})
    ladder = ok(rso.get(f"/cases/{case['child_ids'][0]}"))
    assert "skip_level" not in ladder["available_triggers"]  # art. 2.7: the written report to the RvB follows
    assert fire(rso, ladder, "skip_level", {"reason": "x"}, status=409)["error"]["code"] == "transition_not_allowed"


def test_an_owner_marks_their_action_done_on_the_case_page_by_choosing_it_from_the_open_ones(world):
    from flows import browser, csrf_token

    case = with_actions(world)
    coc_action, opleider_action = (a["id"] for a in case["data"]["actions"])
    client = browser(world, "coc")
    here = f"/cases/{case['id']}"
    html = client.get(here).get_data(as_text=True)
    assert 'name="data.action"' in html and f'value="{coc_action}"' in html and f'value="{opleider_action}"' not in html  # only their own
    response = client.post(f"{here}/fire", data={"csrf_token": csrf_token(client, here), "trigger": "complete_action",
                                                 "expected_version": str(case["version"]),
                                                 "data.action": coc_action, "data.note": "Rooster aangepast"})
    assert response.status_code == 303
    shown = ok(world.api("coc").get(f"/cases/{case['id']}"))
    assert {d["kind"]: d["status"] for d in shown["deadlines"]}[f"action_{coc_action}"] == "met"
    assert 'name="data.action"' not in client.get(here).get_data(as_text=True)  # none of theirs left: no form
