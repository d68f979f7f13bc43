"""Every letter kind read as its recipient reads it: the rendered PDF's text (pypdf).

The seven kinds written by the procedures (notifications/templates/letters/): the RGS notification
of a GBT, its outcome (suitable, or the extension of the training), the termination of the
training, the dispute receipt, the art. 4 escalation to the RGS, the art. 2.7 report to the board
of directors and the art. 2.6/2.7 report to the RGS.
"""
from __future__ import annotations

import io
import re

import pytest
from pypdf import PdfReader

from flows import fire, ok, with_rso_chair
from test_gbt import open_dispute, open_gbt, terminated, to_assessed
from test_ladders import signal

CODE = re.compile(r"\b[a-z]+_[a-z_]+\b")  # a snake_case token: a code that reached the reader


def read(api, case, kind) -> tuple[str, bytes]:
    [doc] = [d for d in case["documents"] if d["kind"] == kind]
    response = api.get(f"/documents/{doc['id']}/pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    pages = PdfReader(io.BytesIO(response.data)).pages
    return " ".join(" ".join(page.extract_text() for page in pages).split()), response.data


def check(text: str, case_id: int, salutation: str, *facts: str) -> None:
    assert f"Kenmerk zaak {case_id}" in text
    assert salutation in text and "Beste" not in text
    for fact in facts:
        assert fact in text, fact
    assert "@" not in text, "no e-mail address in a letter"
    assert not CODE.findall(text), CODE.findall(text)
    assert "Met vriendelijke groet" in text and "door iedereen ondertekend" not in text


def test_the_rgs_notification_of_a_gbt_is_a_letter_from_the_opleider_without_the_aios_address(world):
    opleider = world.api("opleider")
    case = open_gbt(opleider, world.users["aios"])
    text, raw = read(opleider, case, "rgs_notification")
    check(text, case["id"], "Geachte leden van de RGS,", "Registratiecommissie Geneeskundig Specialisten",
          "Hierbij meld ik u", "2 maart 2026", "aios anesthesiologie bij Meander MC", "een voortgangsgesprek",
          "tot en met 30 maart 2026",  # the aios' dispute window: 4 weeks after the decision
          "Opleider opleider anesthesiologie, Meander MC")
    assert "Afschrift aan" not in text  # it goes to the RGS only
    assert "aios@test.nl" not in text
    assert b"pdfaid:part" in raw and b"<pdfaid:part>2</pdfaid:part>" in raw.replace(b" ", b"")  # PDF/A-2b


def test_the_specialty_comes_from_the_region_not_from_the_letter(world, app):
    config = app.extensions["traject"].config
    saved = dict(config.region_facts)
    config.region_facts["specialty"] = "kindergeneeskunde"
    try:
        case = open_gbt(world.api("opleider"), world.users["aios"])
    finally:
        config.region_facts.clear()
        config.region_facts.update(saved)
    text, _ = read(world.api("opleider"), case, "rgs_notification")
    assert "aios kindergeneeskunde bij Meander MC" in text and "anesthesiologie" not in text


def test_the_outcome_report_and_the_extension_letter(world):
    case = to_assessed(world, "suitable")
    opleider = world.api("opleider")  # the walk moved the clock on: a fresh session
    case = fire(opleider, case, "conclude")
    text, _ = read(opleider, case, "rgs_outcome")
    check(text, case["id"], "Geachte leden van de RGS,", "Uitkomst geïntensiveerd begeleidingstraject",
          "Hierbij meld ik u de uitkomst", "9 juli 2026", "Uitkomst: geschikt", "Aios (aios)")


def test_the_extension_letter_names_the_new_end_date(world):
    case = to_assessed(world, "extend", new_training_end_date="2027-03-01")  # the signed assessment names it
    opleider = world.api("opleider")
    case = fire(opleider, case, "extend", {"new_training_end_date": "2027-03-01"})
    text, _ = read(opleider, case, "rgs_outcome")
    check(text, case["id"], "Geachte leden van de RGS,", "Verlenging van de opleiding",
          "nieuwe einddatum van de opleiding is 1 maart 2027", "9 juli 2026")


def test_the_termination_letter_is_written_by_the_opleider_in_the_first_person_with_the_dispute_date(world):
    case = terminated(world)
    aios = world.api("aios")
    text, _ = read(aios, case, "termination_notice")
    # decided on the day of the termination (10 July 2026, after the minimum term); the window: 4 weeks
    check(text, case["id"], "Geachte Aios,", "heb ik u beoordeeld", "heb ik op 10 juli 2026 besloten",
          "Uw opleiding eindigt op 1 september 2026", "tot en met 7 augustus 2026",
          "Bijlage(n) – Geschiktheidsbeoordeling, versie 1", "U en ik melden de uitkomst samen aan de RGS")
    assert "Afschrift aan" not in text  # the notice goes to the aios; the RGS gets the co-signed outcome report
    assert not re.search(r"\bde opleider\b", text), "the opleider signs: 'ik', not 'de opleider'"


def test_the_termination_mail_carries_the_letter_and_the_assessment(world):
    case = terminated(world)
    with world.app.app_context():
        from engine.models import Document, Notification
        from web.extensions import db

        rows = db.session.query(Notification).filter_by(case_id=case["id"], kind="gbt_termination_notice").all()
        kinds = {n.recipient_role: [db.session.get(Document, a["document_id"]).kind for a in n.attachments]
                 for n in rows}
    # the notice goes to the aios; the RGS gets the outcome report that opleider and aios sign together
    assert kinds == {"subject": ["termination_notice", "suitability_assessment"],
                     "external:rgs": ["rgs_outcome"]}


def test_the_dispute_receipt_is_signed_by_the_coc_chair_with_the_mediation_date(world):
    case = terminated(world)
    open_dispute(world, case)
    coc, aios = world.api("coc"), world.api("aios")
    dispute = fire(coc, ok(aios.get("/cases?workflow=dispute"))["items"][0], "acknowledge")
    text, _ = read(aios, dispute, "receipt_confirmation")
    # lodged on the day of the termination (10 July 2026); mediation within the configured 6 weeks
    check(text, dispute["id"], "Geachte Aios,", "Hierbij bevestig ik de ontvangst", "ingediend op 10 juli 2026",
          "Binnen 6 weken, dus uiterlijk op 21 augustus 2026,", "Coc voorzitter COC, Meander MC", "bewijs van ontvangst")


def test_the_art4_letter_to_the_rgs_comes_from_the_r_coc(world):
    with_rso_chair(world)  # the voorzitter RSO owns escalated_rso_chair
    rso, coc, rvb, rcoc = world.api("rso"), world.api("coc"), world.api("rvb"), world.api("rcoc")
    case = fire(rso, signal(world), "discuss", {"with_coc_board": True})
    case = fire(rso, case, "escalate", {"reason": "Blijvende zorg"})
    for api in (world.api("rso_chair"), coc, rvb):
        case = fire(api, case, "escalate", {"reason": "Geen verbetering"})
    case = fire(rcoc, case, "escalate", {"reason": "Verschil van inzicht", "fundamental_disagreement": True})
    text, _ = read(rcoc, case, "rgs_escalation_letter")
    check(text, case["id"], "Geachte leden van de RGS,", "artikel 4 van het convenant",
          "opleiding anesthesiologie bij Meander MC", "zonder bereikbare supervisor", "Verschil van inzicht",
          "Rcoc voorzitter R-COC")


@pytest.fixture
def obligations(world):
    return ok(world.api("rso").post("/cases", json={
        "workflow": "rso_obligations", "institution": "meander", "title": "Verplichtingen",
        "data": {"shortcoming": "Geen opleidingsplaatsen vrijgemaakt", "reason": "Afspraak 2025"}}), 201)


def test_the_art_2_7_letter_to_the_board_of_directors(world, obligations):
    case = fire(world.api("coc"), obligations, "escalate", {"reason": "Geen verbetering"})
    text, _ = read(world.api("rvb"), case, "rvb_report")
    check(text, case["id"], "Geachte leden van de Raad van Bestuur,", "Raad van Bestuur Meander MC",
          "Geen opleidingsplaatsen vrijgemaakt", "uiterlijk op 1 april 2026", "(art. 2.7)")


def test_the_art_2_7_report_to_the_rgs(world, obligations):
    case = fire(world.api("coc"), obligations, "escalate", {"reason": "Geen verbetering"})
    case = fire(world.api("rvb"), case, "escalate", {"reason": "Geen reactie"})
    case = fire(world.api("rcoc"), case, "escalate", {"reason": "Interventie zonder resultaat"})
    case = fire(world.api("regio"), case, "escalate", {"reason": "Blijvend", "rgs_decision": "Regio-Bestuur 1 juli"})
    text, _ = read(world.api("rcoc"), case, "rgs_report")
    check(text, case["id"], "Geachte leden van de RGS,", "artikel 2.7 van de samenwerkingsovereenkomst",
          "Geen opleidingsplaatsen vrijgemaakt", "Besluit om te melden: Regio-Bestuur 1 juli")


def test_the_art_2_6_report_to_the_rgs(world):
    rso = world.api("rso")
    case = ok(rso.post("/cases", json={"workflow": "rso_consultation", "institution": "meander", "title": "K",
                                       "data": {"shortcoming": "Supervisie onvoldoende", "requirement": "quality"}}),
              201)
    case = fire(rso, case, "escalate_quality", {"reason": "Niet nagekomen",  # within the 30-day term
                                                "justification": "De Partij weigert elk overleg"})
    ladder = ok(world.api("coc").get(f"/cases/{case['child_ids'][0]}"))
    ladder = fire(world.api("coc"), ladder, "escalate", {"reason": "Geen verbetering"})
    ladder = fire(rso, ladder, "escalate", {"reason": "Geen verbetering", "other_parties_decision": "Partijen"})
    ladder = fire(world.api("rcoc"), ladder, "escalate", {"reason": "Geen resultaat"})
    ladder = fire(world.api("regio"), ladder, "escalate", {"reason": "Blijvend", "rgs_decision": "Regio-Bestuur"})
    text, _ = read(world.api("rcoc"), ladder, "rgs_report")
    check(text, ladder["id"], "Geachte leden van de RGS,", "artikel 2.6", "de kwaliteitseisen",
          "Supervisie onvoldoende")
