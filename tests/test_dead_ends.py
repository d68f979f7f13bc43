"""No dead ends on the pages: after a step that opens a linked case you are on it, a final decision
says which letters went to whom, a form that cannot succeed says why, and the opleider hears of a
signature, a dissent and a dispute."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from engine.models import Case, Notification
from flows import browser, evaluation, fire, ok, open_internal, to_guidance
from test_gbt import open_dispute, terminated, to_assessed
from test_web import page, post, text


def test_after_intensify_the_page_goes_to_the_new_gbt(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = fire(opleider, to_guidance(opleider, aios, open_internal(opleider, world.users["aios"])),
                "record_evaluation", evaluation(False))
    client = browser(world, "opleider")
    form = {
        "trigger": "intensify", "expected_version": str(case["version"]), "data.report": "Verslag",
        "data.decision_moment": "progress_meeting", "data.aios_informed_of_dispute_procedure": "on",
        # the pages ask for the joint decision of the RSO's opleiders (required_on_pages)
        "data.joint_decision.date": "2026-03-02", "data.joint_decision.consulted": "Kerngroep RSO"}
    # a final decision: first the letters of the GBT it opens, to the RGS and to the aios
    response, _ = post(client, f"/cases/{case['id']}/fire", form)
    shown = text(page(response))
    assert "Er wordt een gekoppelde zaak geopend: Geïntensiveerd begeleidingstraject." in shown
    assert "Brief “Schriftelijke melding GBT aan de RGS” aan RGS." in shown
    assert "Brief “Besluit geïntensiveerd begeleidingstraject” aan Aios." in shown
    response, _ = post(client, f"/cases/{case['id']}/fire", {**form, "confirm": "1"})
    assert response.status_code == 303, page(response, 303)
    with world.app.app_context():
        from web.extensions import db

        [gbt] = db.session.scalars(select(Case).where(Case.parent_id == case["id"])).all()
    assert response.headers["Location"].endswith(f"/cases/{gbt.id}")
    html = text(page(client.get(response.headers["Location"])))
    assert f"De gekoppelde zaak {gbt.id} is geopend" in html
    assert "Brief verstuurd: Schriftelijke melding GBT aan de RGS, aan RGS." in html
    assert "Brief verstuurd: Besluit geïntensiveerd begeleidingstraject, aan Aios." in html


def test_a_final_decision_says_which_letters_went_to_whom(world):
    case = to_assessed(world, "unsuitable")
    client = browser(world, "opleider")
    response, _ = post(client, f"/cases/{case['id']}/fire", {
        "trigger": "terminate", "expected_version": str(case["version"]), "data.end_date": "2026-09-01",
        "data.termination_joint_decision.date": "2026-07-09",
        "data.termination_joint_decision.consulted": "Kerngroep RSO", "confirm": "1"})  # after the preview
    assert response.status_code == 303, page(response, 303)
    html = text(page(client.get(response.headers["Location"])))
    # the notice to the aios; the RGS gets the outcome report (co-signed by opleider and aios) instead
    assert "Brief verstuurd: Besluit tot beëindiging van de opleiding, aan Aios." in html
    assert "Brief opgesteld: Melding uitkomst GBT aan de RGS, aan RGS; die vertrekt zodra iedereen hem heeft " \
           "ondertekend." in html


def test_the_dispute_form_says_why_it_is_closed_after_the_window(world, clock):
    case = terminated(world)
    aios = browser(world, "aios")
    assert 'action="/cases/%d/open/dispute' % case["id"] in page(aios.get(f"/cases/{case['id']}"))
    clock.at = clock.now() + timedelta(weeks=5)
    html = page(browser(world, "aios").get(f"/cases/{case['id']}"))  # a new login: the old session timed out
    assert "open/dispute" not in html
    assert "Niet (meer) mogelijk" in text(html) and "verstreken op" in text(html)


def test_the_opleider_is_told_when_the_aios_signs_dissents_or_disputes(world):
    case = to_assessed(world, "unsuitable")
    dispute_on = fire(world.api("opleider"), case, "terminate", {"end_date": "2026-09-01"})
    open_dispute(world, dispute_on)
    with world.app.app_context():
        from web.extensions import db

        told = db.session.execute(select(Notification.kind, Notification.subject).where(
            Notification.recipient_user_id == world.users["opleider"])).all()
    subjects = [s for k, s in told if k == "document_signed"]
    assert subjects and all(s.startswith("Ondertekend:") for s in subjects)
    assert any(k == "dispute_requested" for k, _ in told)


def test_a_dissent_is_named_in_the_subject(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = open_internal(opleider, world.users["aios"])
    from flows import to_plan

    case, doc = to_plan(opleider, aios, case)
    ok(aios.post(f"/documents/{doc['id']}/signatures", json={"verdict": "seen_not_agreed", "comment": "Nee"}),
       201)
    with world.app.app_context():
        from web.extensions import db

        subjects = db.session.scalars(select(Notification.subject).where(
            Notification.kind == "document_signed", Notification.recipient_user_id == world.users["opleider"])).all()
    assert subjects == ["Getekend voor gezien, niet akkoord: Verbeterplan (Begeleiding)"]


def test_every_dashboard_starts_with_what_waits_for_the_reader(world):
    case = to_assessed(world, "unsuitable")  # waits for the opleider's decision
    html = page(browser(world, "opleider").get("/"))
    todo = html.split('id="todo-h"')[1].split("</section>")[0]
    assert "Te doen" in html and html.index('id="todo-h"') < html.index("Mijn trajecten")
    assert f"/cases/{case['id']}" in todo and "Uw stap" in text(todo)


def test_a_coc_chair_on_an_overdue_case_can_send_a_reminder_that_is_audited(world, clock):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    clock.at = clock.now() + timedelta(days=120)  # the plan's term passed
    coc = browser(world, "coc")
    html = text(page(coc.get(f"/cases/{case['id']}")))
    assert "Herinnering sturen" in html and "niets voor u te doen" not in html
    response, _ = post(coc, f"/cases/{case['id']}/remind", {})
    assert response.status_code == 303
    with world.app.app_context():
        from engine.models import AuditEvent
        from web.extensions import db

        rows = db.session.scalars(select(Notification).where(Notification.kind == "reminder_sent")).all()
        events = db.session.scalars(select(AuditEvent.type).where(AuditEvent.case_id == case["id"])).all()
    assert [n.recipient_user_id for n in rows] == [world.users["opleider"]] and "reminder_sent" in events
    response, _ = post(browser(world, "aios"), f"/cases/{case['id']}/remind", {})
    assert response.status_code in (403, 404, 409)


def test_the_person_a_signal_concerns_is_picked_not_typed_and_must_exist(world):
    html = page(browser(world, "aios").get("/cases/new?workflow=escalation"))
    picker = html.split('name="data.concerns_user_id"')[1].split("</select>")[0]
    assert f'value="{world.users["coc"]}"' in picker and "Coc — Voorzitter COC, Meander MC" in text(picker)
    assert f'value="{world.users["admin"]}"' not in picker and f'value="{world.users["aios2"]}"' not in picker
    body = ok(world.api("aios").post("/cases", json={"workflow": "escalation", "institution": "meander",
                                                     "data": {"description": "Zorg", "concerns_user_id": 99999}}),
              422)
    assert body["error"]["details"]["data.concerns_user_id"] == ["must be a person in this region"]
