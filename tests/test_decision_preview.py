"""A final decision on the case page: first the letters it would write, as they would read, and who
receives what; nothing is written until it is confirmed; then the page says which letters went to whom.
The API fires directly, as before."""
from __future__ import annotations

import io
import re

from pypdf import PdfReader

from sqlalchemy import func, select

from engine.models import AuditEvent, Case, Document, Notification
from flows import browser, fire
from test_gbt import to_assessed
from test_no_code import problems_on, visible
from test_web import page, post, text
from workflows import is_final_decision, load_definitions

TERMINATE = {"trigger": "terminate", "data.end_date": "2026-09-01",
             "data.termination_joint_decision.date": "2026-07-09",
             "data.termination_joint_decision.consulted": "Kerngroep RSO"}


def counts(world) -> tuple[int, int, int, int]:
    from web.extensions import db

    with world.app.app_context():
        out = tuple(db.session.scalar(select(func.count()).select_from(m)) for m in (AuditEvent, Notification, Document))
        version = db.session.scalar(select(Case.version).order_by(Case.id.desc()).limit(1))
        db.session.remove()
    return (*out, version)


def hidden(html: str, name: str) -> list[str]:
    return re.findall(rf'<input type="hidden" name="{re.escape(name)}" value="([^"]*)"', html)


def test_final_decisions_come_from_the_definitions():
    final = {(d.key, t.trigger, t.sources) for d in load_definitions() for t in d.transitions
             if is_final_decision(d, t)}
    keys = {(k, trigger) for k, trigger, _sources in final}
    # closing the trajectory, or a letter (to the RGS, to the aios) in writing
    assert {("intensified_guidance", "terminate"), ("intensified_guidance", "extend"),
            ("intensified_guidance", "conclude"), ("internal_guidance", "intensify"),
            ("dispute", "acknowledge")} <= keys
    assert ("intensified_guidance", "start") not in keys and ("intensified_guidance", "assess") not in keys
    # the same trigger from another state: only where it writes to the RGS
    assert ("rso_quality", "escalate", ("escalated_regio_bestuur",)) in final
    assert ("rso_quality", "escalate", ("reported_coc",)) not in final


def test_the_preview_shows_the_letters_and_their_recipients_and_writes_nothing(world):
    case = to_assessed(world, "unsuitable")
    client = browser(world, "opleider")
    here = f"/cases/{case['id']}"
    form = page(client.get(here))
    assert "Opleiding beëindigen: eerst controleren" in text(form)
    before = counts(world)
    response, _ = post(client, f"{here}/fire", {**TERMINATE, "expected_version": str(case["version"])}, 200, here)
    html = page(response)
    assert counts(world) == before  # no audit event, no outbox row, no document, the case as it was
    shown = text(html)
    assert "Voorbeeld: controleren en bevestigen" in shown and "Concept, niet verzonden" in shown
    assert "Er is nog niets opgeslagen of verstuurd." in shown
    # the notice as the aios will read it: their name, the dates, the joint decision
    assert "Geachte Aios," in shown and "Besluit tot beëindiging van uw opleiding" in shown
    assert "Uw opleiding eindigt op 1 september 2026." in shown
    assert "op 9 juli 2026; geraadpleegd: Kerngroep RSO" in shown
    assert "Kenmerk zaak %d" % case["id"] in shown
    # who receives what
    assert "Brief “Besluit tot beëindiging van de opleiding” aan Aios." in shown
    assert re.search(r"Brief “Melding uitkomst GBT aan de RGS” aan RGS, zodra [^.]*Aios[^.]* ondertekend", shown)
    assert "De zaak wordt gesloten: Opleiding beëindigd." in shown
    assert "Ook per e-mail op de hoogte: " in shown and "Coc" in shown
    assert not problems_on(here, visible(html), "nl", [])
    # the confirmation posts the same input and the version the form was filled in on
    html = html[html.index('<div class="preview"'):]
    html = html[:html.index("</section>")]
    # (Bevestigen, Terug and each letter's PDF)
    assert hidden(html, "expected_version") == [str(case["version"])] * 4
    assert hidden(html, "data.end_date") == ["2026-09-01"] * 4 and hidden(html, "confirm") == ["1"]
    assert 'name="back" value="1"' in html


def test_each_letter_of_the_preview_opens_as_a_draft_pdf_from_the_same_template(world):
    case = to_assessed(world, "unsuitable")
    client = browser(world, "opleider")
    here = f"/cases/{case['id']}"
    html = page(post(client, f"{here}/fire", {**TERMINATE, "expected_version": str(case["version"])}, 200, here)[0])
    assert hidden(html, "draft_pdf") == ["0", "1"]
    before = counts(world)
    response, _ = post(client, f"{here}/fire", {**TERMINATE, "expected_version": str(case["version"]),
                                                "draft_pdf": "1"}, 200, here)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    letter = " ".join("\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.data)).pages).split())
    assert "CONCEPT — voorbeeld, niet verzonden" in letter
    assert "Geachte Aios," in letter and "Uw opleiding eindigt op 1 september 2026." in letter
    assert "SHA-256" not in letter  # a draft has no identity yet
    assert counts(world) == before
    response, _ = post(client, f"{here}/fire", {**TERMINATE, "expected_version": str(case["version"]),
                                                "draft_pdf": "7"}, 404, here)
    assert response.status_code == 404 and counts(world) == before


def test_the_preview_reads_in_english_around_the_dutch_letter(world):
    case = to_assessed(world, "unsuitable")
    client = browser(world, "opleider")
    with client.session_transaction() as session:
        session["lang"] = "en"
    here = f"/cases/{case['id']}"
    html = page(post(client, f"{here}/fire", {**TERMINATE, "expected_version": str(case["version"])}, 200, here)[0])
    shown = text(html)
    assert "Preview: check and confirm" in shown and "Draft, not sent" in shown and "Confirm" in shown
    assert '<div class="letter" lang="nl">' in html and "Geachte Aios," in shown


def test_an_invalid_input_shows_the_field_errors_and_no_preview(world):
    case = to_assessed(world, "unsuitable", end_date="2026-09-01")
    client = browser(world, "opleider")
    here = f"/cases/{case['id']}"
    before = counts(world)
    # the end date disagrees with the signed assessment (a guard of the step, as the API checks it)
    response, _ = post(client, f"{here}/fire", {**TERMINATE, "data.end_date": "2026-10-01",
                                                "expected_version": str(case["version"])}, 422, here)
    html = page(response, 422)
    assert "Voorbeeld: controleren" not in text(html) and 'name="confirm"' not in html
    assert "Dit kan nog niet:" in text(html) and "zoals in de ondertekende geschiktheidsbeoordeling" in text(html)
    # a field the engine refuses: the message next to the field
    response, _ = post(client, f"{here}/fire", {**TERMINATE, "data.termination_date": "2027-01-01",
                                                "expected_version": str(case["version"])}, 422, here)
    html = page(response, 422)
    assert "Voorbeeld: controleren" not in text(html) and "toekomst" in text(html)
    assert re.search(r'id="t-terminate-termination-date"[^>]*aria-invalid="true"', html) or \
        re.search(r'aria-invalid="true"[^>]*id="t-terminate-termination-date"', html)
    # a date the form cannot read: the form's own check, before the engine
    response, _ = post(client, f"{here}/fire", {**TERMINATE, "data.end_date": "morgen",
                                                "expected_version": str(case["version"])}, 422, here)
    assert "Voorbeeld: controleren" not in text(page(response, 422))
    assert counts(world) == before


def test_back_keeps_the_input_and_a_stale_confirmation_is_a_conflict(world):
    case = to_assessed(world, "unsuitable")
    client = browser(world, "opleider")
    here = f"/cases/{case['id']}"
    html = page(post(client, f"{here}/fire", {**TERMINATE, "expected_version": str(case["version"]),
                                              "back": "1"}, 200, here)[0])
    assert 'value="Kerngroep RSO"' in html or ">Kerngroep RSO<" in html
    assert "Voorbeeld: controleren" not in text(html)
    # a confirmation from a tab the case has moved on from (its version is older) changes nothing
    before = counts(world)
    response, _ = post(client, f"{here}/fire", {**TERMINATE, "expected_version": str(case["version"] - 1),
                                                "confirm": "1"}, 409, here)
    assert "Iemand anders heeft deze zaak intussen gewijzigd" in text(page(response, 409))
    assert counts(world) == before


def test_confirm_fires_and_the_page_names_the_recipients(world):
    case = to_assessed(world, "unsuitable")
    client = browser(world, "opleider")
    here = f"/cases/{case['id']}"
    preview = page(post(client, f"{here}/fire", {**TERMINATE, "expected_version": str(case["version"])}, 200,
                        here)[0])
    posted = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"',
                             preview.split('name="confirm"')[0].rsplit("<form", 1)[1]))
    posted.pop("csrf_token")
    response, _ = post(client, f"{here}/fire", {**posted, "confirm": "1"}, 303, here)
    assert response.status_code == 303, page(response, 303)
    html = text(page(client.get(response.headers["Location"])))
    assert "Gedaan: Opleiding beëindigen." in html
    assert "Brief verstuurd: Besluit tot beëindiging van de opleiding, aan Aios." in html
    assert "Brief opgesteld: Melding uitkomst GBT aan de RGS, aan RGS; die vertrekt zodra iedereen hem heeft " \
           "ondertekend." in html
    from web.extensions import db

    with world.app.app_context():
        assert db.session.get(Case, case["id"]).state == "terminated"


def test_the_api_still_fires_a_final_decision_directly(world):
    case = to_assessed(world, "unsuitable")
    case = fire(world.api("opleider"), case, "terminate", {"end_date": "2026-09-01"})
    assert case["state"] == "terminated"
