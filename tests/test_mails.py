"""Every e-mail kind rendered and read (text): it stands on its own.

The procedures are walked through the API (internal guidance, the GBT to each of its ends and a
dispute, the art. 4 ladder, the RSO ladders), the deadlines are swept until they remind and pass,
and every outbox row is composed as the worker would. Each kind's sample is written to
tests/artifacts/mails/ for a human to read.
"""
from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from engine import deadlines, outbox
from engine.models import Case, Deadline, Notification, User
from flows import evaluation, fire, ok, open_internal, to_guidance, with_rso_chair
from notifications import digest
from notifications.render import MailSettings, compose
from test_gbt import IOP, open_dispute, open_gbt, signed, terminated, to_assessed
from test_ladders import signal
from web.extensions import db
from workflows import DEFINITIONS_DIR

SETTINGS = MailSettings(sender="Traject <noreply@traject.test>", base_url="https://traject.test")
CODE = re.compile(r"\b[a-z]+_[a-z_]+\b")
ARTIFACTS = Path(__file__).parent / "artifacts" / "mails"
ENGINE_KINDS = {"level_reached", "signature_requested", "document_signed", "deadline_reminder", "deadline_overdue",
                outbox.DIGEST_KIND}


def definition_kinds() -> set[str]:
    kinds = set()
    for path in DEFINITIONS_DIR.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        kinds |= set(re.findall(r"\bnotify_kind: ([a-z_]+)", text))
        kinds |= set(re.findall(r"\bkind: ([a-z_]+), subject:", text))
        kinds |= {k for k in re.findall(r"\{to: [a-z_:]+, kind: ([a-z_]+)", text)}
    return kinds


def another_aios(world, name: str):
    """The world seen with `name` (a new aios of Meander MC) as "aios": each GBT ending walks its own aios
    (one open GBT per aios, two GBTs at most, none after a termination: CONTRACT.md section 6)."""
    from engine.models import RoleAssignment

    with world.app.app_context():
        user = User(email=f"{name}@test.nl", name=name.capitalize(), active=True,
                    created_at=world.app.extensions["traject"].clock.now())
        user.roles.append(RoleAssignment(role="aios", institution_id=world.institutions["meander"],
                                         region_id=world.region_id))
        db.session.add(user)
        db.session.commit()
        world.users[name] = user.id
    return dataclasses.replace(world, users={**world.users, "aios": world.users[name]})


def walk_everything(world):
    with_rso_chair(world)  # the voorzitter RSO owns escalated_rso_chair
    api = world.api  # sessions are made where they are used: the GBT walks move the clock on (tokens expire)
    opleider, coc = api("opleider"), api("coc")
    internal = to_guidance(opleider, api("aios2"), open_internal(opleider, world.users["aios2"]))
    internal = fire(opleider, internal, "record_evaluation", evaluation(True))
    fire(opleider, internal, "close", {"outcome_summary": "Leerdoelen behaald"})
    # a GBT decided on 2 March 2026 is disputed (and the dispute resolved) within its window, before the walks
    other = open_gbt(opleider, world.users["aios2"])
    ok(api("aios2").post("/cases", json={"workflow": "dispute", "institution": "meander",
                                         "parent_id": other["id"], "data": {"grounds": "Onterecht"}}), 201)
    dispute = [d for d in ok(coc.get("/cases?workflow=dispute"))["items"] if d["state"] == "requested"][0]
    fire(coc, fire(coc, dispute, "acknowledge"), "resolve", {"resolution": "Afspraken gemaakt"})
    signed(opleider, api("aios2"), other, "adjusted_iop", IOP)  # that GBT runs, is suspended and resumed
    other = fire(opleider, ok(opleider.get(f"/cases/{other['id']}")), "start")
    other = fire(opleider, other, "suspend", {"suspension_reason": "illness"})
    fire(opleider, other, "resume")
    # the termination first: its end date (1 September 2026) must not lie before the decision (10 July 2026)
    gbt = terminated(world)
    open_dispute(world, gbt)
    coc, aios = api("coc"), api("aios")
    dispute = fire(coc, [d for d in ok(aios.get("/cases?workflow=dispute"))["items"]
                         if d["parent_id"] == gbt["id"]][0], "acknowledge")
    fire(coc, dispute, "refer", {"reason": "Geen overeenstemming"})
    case = to_assessed(another_aios(world, "aios3"), "suitable")
    fire(api("opleider"), case, "conclude")
    case = to_assessed(another_aios(world, "aios4"), "extend", new_training_end_date="2027-03-01")
    fire(api("opleider"), case, "extend", {"new_training_end_date": "2027-03-01"})
    rso, chair, coc, rvb, rcoc, regio = (api(n) for n in ("rso", "rso_chair", "coc", "rvb", "rcoc", "regio"))
    case = fire(rso, signal(world), "discuss", {"with_coc_board": True})
    case = fire(chair, fire(rso, case, "escalate", {"reason": "Zorg"}), "escalate", {"reason": "Geen verbetering"})
    for who in (coc, rvb):
        case = fire(who, case, "escalate", {"reason": "Geen verbetering"})
    case = fire(regio, case, "decide", {"decision": "Het Regio-Bestuur handhaaft het rooster"})
    case = fire(rcoc, case, "escalate", {"reason": "Verschil van inzicht", "fundamental_disagreement": True})
    fire(rcoc, case, "resolve", {"resolution": "Opgelost"})
    for requirement, trigger in (("quality", "escalate_quality"), ("obligations", "escalate_obligations")):
        rsoc = ok(rso.post("/cases", json={"workflow": "rso_consultation", "institution": "meander", "title": "K",
                                           "data": {"shortcoming": "Te weinig supervisie",
                                                    "requirement": requirement}}), 201)
        rsoc = fire(rso, rsoc, trigger, {"reason": "Niet nagekomen",  # within the 30-day term
                                         "justification": "De Partij weigert elk overleg"})
        ladder = fire(coc, ok(coc.get(f"/cases/{rsoc['child_ids'][0]}")), "escalate", {"reason": "Geen verbetering"})
        if requirement == "quality":
            ladder = fire(rso, ladder, "escalate", {"reason": "Nee", "other_parties_decision": "Partijen"})
        else:
            ladder = fire(rvb, ladder, "escalate", {"reason": "Nee"})
        ladder = fire(rcoc, ladder, "escalate", {"reason": "Geen resultaat"})
        fire(regio, ladder, "escalate", {"reason": "Blijvend", "rgs_decision": "Regio-Bestuur"})
    ok(rso.post("/cases", json={"workflow": "rso_consultation", "institution": "meander", "title": "Open",
                                "data": {"shortcoming": "Onderwijs", "requirement": "quality"}}), 201)
    left = fire(rso, fire(rso, signal(world), "discuss", {"with_coc_board": True}), "escalate", {"reason": "Zorg"})
    fire(chair, left, "escalate", {"reason": "Geen verbetering"})  # left with the COC chair: its term passes
    due = (world.app.extensions["traject"].clock.now() + timedelta(days=10)).date().isoformat()
    acting = fire(rso, signal(world), "discuss", {"with_coc_board": True})
    fire(rso, acting, "agree_actions", {"actions": [  # the action list; the action's term passes
        {"description": "Rooster aanpassen", "owner_role": "coc_chair", "due_date": due}]})
    waiting = ok(rso.post("/cases", json={"workflow": "rso_consultation", "institution": "meander", "title": "Wacht",
                                          "data": {"shortcoming": "Supervisie", "requirement": "quality"}}), 201)
    waiting = fire(rso, waiting, "escalate_quality", {"reason": "Niet nagekomen", "justification": "Geen overleg"})
    assert ok(coc.get(f"/cases/{waiting['child_ids'][0]}"))["state"] == "reported_coc"  # the COC's term passes


def sweep_until_everything_passed(app):
    engine = app.extensions["traject"]
    with app.app_context():
        moment = engine.clock.now()
        for _ in range(40):
            moment += timedelta(days=3)
            deadlines.sweep(db.session, engine, moment)
            db.session.commit()


def collected_digest(app, world):
    """HR's informational mail of the walks, collected into one daily digest (notifications/digest.py)."""
    engine = app.extensions["traject"]
    with app.app_context():
        news = [n for n in db.session.scalars(select(Notification).where(
            Notification.recipient_user_id == world.users["hr"])) if outbox.informational(
                n, engine.definition(db.session.get(Case, n.case_id).definition))]
        assert news
        db.session.execute(update(Notification).where(Notification.id.in_([n.id for n in news]))
                           .values(status="held", next_attempt_at=engine.clock.now()))
        db.session.commit()
        assert digest.collect(db.session, engine.clock.now()) == 1


@pytest.mark.one_database  # what is rendered does not depend on the database; SQLite's run covers it
def test_every_mail_kind_stands_on_its_own(app, world):
    walk_everything(world)
    sweep_until_everything_passed(app)
    collected_digest(app, world)
    samples: dict[str, list] = {}
    with app.app_context():
        people = {u.id: u.email for u in db.session.scalars(select(User))}
        cases = {c.id: (c.workflow_key, people.get(c.opened_by_id)) for c in db.session.scalars(select(Case))}
        for n in db.session.scalars(select(Notification).order_by(Notification.id)):
            message = compose(db.session, n, SETTINGS, app.extensions["traject"])
            samples.setdefault(n.kind, []).append((n, message))
    missing = (definition_kinds() | ENGINE_KINDS) - set(samples)
    assert not missing, missing
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for kind, rows in samples.items():
        (ARTIFACTS / f"{kind}.txt").write_text("\n\n======\n\n".join(
            f"To: {m.to}\nSubject: {m.subject}\nAttachments: {[a.filename for a in m.attachments]}\n\n{m.text}"
            for _, m in rows[:3]), encoding="utf-8")
        for n, m in rows:
            text = m.text
            assert "heer/mevrouw" not in text and "Dossier" not in text, (kind, text)
            bare = text
            for address in people.values():  # the fixture's addresses (rso_chair@test.nl) are no codes
                bare = bare.replace(address, "")
            assert not CODE.findall(bare), (kind, CODE.findall(bare))
            assert "Stand van zaken:" in text or kind.startswith("deadline_"), (kind, text)
            if n.recipient_user_id is None:  # the RGS: no account, so no link to a page it cannot open
                assert text.startswith("Geachte leden van de RGS,"), (kind, text)
                assert "https://traject.test" not in text and "https://traject.test" not in m.html, kind
            else:
                assert text.startswith("Beste ") and "https://traject.test/cases/" in text, (kind, text)
            if any(a.filename.endswith(".pdf") for a in m.attachments):
                assert "Zie bijlage:" in text, (kind, text)
            workflow, opener = cases.get(n.case_id, (None, None))
            if workflow in ("intensified_guidance", "internal_guidance", "dispute") \
                    and kind not in ("deadline_reminder", "deadline_overdue"):
                assert "Contactpersoon:" in text, (kind, text)
            if workflow in ("escalation", "rso_quality", "rso_obligations") and opener and opener != m.to:
                assert opener not in text, (kind, "a confidential opener is named")


def test_the_termination_mail_to_the_aios_tells_the_end_date_the_dispute_window_the_letter_and_a_contact(
        app, world):
    case = terminated(world)
    with app.app_context():
        n = db.session.scalar(select(Notification).where(
            Notification.case_id == case["id"], Notification.kind == "gbt_termination_notice",
            Notification.recipient_user_id == world.users["aios"]))
        message = compose(db.session, n, SETTINGS, app.extensions["traject"])
    text = " ".join(message.text.split())
    for fact in ("Beste Aios,", "Besluit: beëindiging van de opleiding", "Uw opleiding eindigt op 1 september 2026",
                 "tot en met 7 augustus 2026", "Geschil indienen",  # decided 10 July 2026 + 4 weeks
                 "Zie bijlage: Besluit tot beëindiging van de opleiding, Geschiktheidsbeoordeling (PDF)",
                 "Contactpersoon: Opleider (opleider@test.nl)", "Stand van zaken: Opleiding beëindigd"):
        assert fact in text, fact
    assert [a.filename.split("-zaak")[0] for a in message.attachments] == ["termination_notice",
                                                                           "suitability_assessment"]


def test_the_rgs_mail_has_no_link_and_no_aios_address(app, world):
    case = open_gbt(world.api("opleider"), world.users["aios"])
    with app.app_context():
        n = db.session.scalar(select(Notification).where(Notification.case_id == case["id"],
                                                         Notification.recipient_role == "external:rgs"))
        message = compose(db.session, n, SETTINGS, app.extensions["traject"])
    assert message.text.startswith("Geachte leden van de RGS,")
    assert "traject.test" not in message.text and "<a href" not in message.html
    assert "aios@test.nl" not in message.text and "U hoeft in Traject niets te doen" in message.text


def test_nobody_is_mailed_about_their_own_action(app, world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = open_internal(opleider, world.users["aios"])
    to_guidance(opleider, aios, case)
    with app.app_context():
        rows = db.session.scalars(select(Notification).where(Notification.case_id == case["id"])).all()
        from engine.models import AuditEvent

        actors = {e.seq: e.actor_id for e in db.session.scalars(select(AuditEvent).where(
            AuditEvent.case_id == case["id"]))}
    assert rows and all(n.recipient_user_id != actors.get(n.event_seq) for n in rows)


def test_the_mail_shows_the_state_at_the_event_not_at_delivery(app, world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case = open_internal(opleider, world.users["aios"])
    to_guidance(opleider, aios, case)  # the case moved on before the first mail went out
    with app.app_context():
        n = db.session.scalar(select(Notification).where(Notification.case_id == case["id"],
                                                         Notification.kind == "case_opened"))
        message = compose(db.session, n, SETTINGS, app.extensions["traject"])
    assert "Stand van zaken: Gesignaleerd" in message.text and "Wat er gebeurde:" in message.text


def test_a_reminder_counts_the_days_that_are_really_left(app, world, clock):
    """A deadline set 8 days ahead whose 14-day reminder is due at once says 'over 8 dagen'."""
    opleider = world.api("opleider")
    case = open_internal(opleider, world.users["aios"])
    engine = app.extensions["traject"]
    with app.app_context():
        now = clock.now()
        due = now + timedelta(days=8)
        deadline = Deadline(case_id=case["id"], kind="plan_term", label="Einde termijn", due_at=due,
                            remind_at=now, status="pending", owner_role="responsible", reminder_days=[14, 3],
                            created_at=now)
        db.session.add(deadline)
        db.session.commit()
        db.session.execute(update(Notification).values(status="sent"))
        assert deadlines.sweep(db.session, engine, now + timedelta(minutes=1)).reminded == 1
        db.session.commit()
        n = db.session.scalar(select(Notification).where(Notification.kind == "deadline_reminder"))
        message = compose(db.session, n, SETTINGS, engine)
    assert "over 8 dagen" in message.text and "over 14 dagen" not in message.text


def test_definition_kinds_are_found():
    assert {"gbt_termination_notice", "rgs_escalation", "dispute_receipt", "case_opened"} <= definition_kinds()
