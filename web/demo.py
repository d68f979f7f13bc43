"""The demo region (CONTRACT.md section 5): five hospitals, a user for every role, example cases.

No real staff names (DOMAIN.md §2.2). Passwords are random per instance, printed once,
kept in the instance folder, and refused outside a demo instance.
"""
from __future__ import annotations

import random
import secrets
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from engine.commands import Engine
from engine import records
from engine.models import Case, Institution, Programme, RecordStatus, Region, RoleAssignment, TrainingRecord, User

from .auth import hash_password
from .extensions import db
from .files import write_private
from .runtime import sync_definitions

DEMO_DOMAIN = "demo.traject.nl"
REGION = ("cluster-utrecht", "Cluster Utrecht — anesthesiologie")
INSTITUTIONS = [
    ("meander", "Meander Medisch Centrum", "Amersfoort"),
    ("gelre", "Gelre ziekenhuizen", "Apeldoorn"),
    ("rijnstate", "Rijnstate", "Arnhem"),
    ("gelderse_vallei", "Ziekenhuis Gelderse Vallei", "Ede"),
    ("umcu", "UMC Utrecht", "Utrecht"),
]
# Invented names: never real staff.
NAMES = {
    "opleider": ["dr. A. de Vries", "dr. B. Jansen", "dr. C. Bakker", "dr. D. Visser", "prof. dr. E. Smit"],
    "plv_opleider": ["dr. K. Verhoeven", "dr. L. Postma", "dr. M. Kuiper", "dr. N. Huisman", "dr. O. Scholten"],
    "aios": ["F. Meijer", "G. de Boer", "H. Mulder", "I. de Groot", "J. Bos", "K. Vos", "L. Peters",
             "M. Hendriks", "N. van Leeuwen", "O. Dekker"],
    "coc_chair": ["dr. P. Brouwer", "dr. Q. de Wit", "dr. R. Dijkstra", "dr. S. Smits", "prof. dr. T. de Graaf"],
    "rvb": ["U. van der Meer", "V. van der Linden", "W. Kok", "X. Jacobs", "Y. de Haan"],
    "hr": ["Z. Vermeulen", "A. van den Heuvel", "B. van der Veen", "C. van den Berg", "D. van Dijk"],
}
# The aios who trained in the region over the two years of history (`_history`): invented names,
# initial and surname paired so that none repeats (22 x 30 pairs), none a staff member's surname.
COHORT_INITIALS = "ABCDEFGHIJKLMNOPRSTVWY"
COHORT_SURNAMES = ["Willemsen", "Kramer", "van Wijk", "Prins", "Hoekstra", "van Vliet", "Verbeek", "Blom",
                   "Timmermans", "Lammers", "de Bruijn", "Gerritsen", "Wouters", "van Dam", "Bosman", "Claassen",
                   "Evers", "Franken", "Hermans", "Jonker", "Koning", "Martens", "Nijland", "Oosterhuis", "Pauwels",
                   "Reijnders", "Siebers", "Tromp", "Veenstra", "Zijlstra"]
HISTORY_MONTHS, HISTORY_PER_MONTH = 24, 6
REGIONAL = [
    ("rso_board", "RSO-bestuur (secretariaat)"),
    ("rso_chair", "dr. H. Kuipers (voorzitter RSO)"),
    ("r_coc_chair", "dr. E. Schouten (voorzitter R-COC)"),
    ("regio_bestuur", "F. van Beek (Regio-Bestuur)"),
    ("vertrouwenspersoon", "G. Willems (vertrouwenspersoon)"),
    ("admin", "Beheerder Traject"),
]


def email(role: str, code: str | None = None, n: int | None = None) -> str:
    local = role.replace("_", "-") + (f".{code.replace('_', '-')}" if code else "") + (f".{n}" if n else "")
    return f"{local}@{DEMO_DOMAIN}"


def _password(instance: Path) -> str:
    path = instance / "demo_password.txt"
    if not path.exists():
        write_private(path, secrets.token_urlsafe(9))
    return path.read_text().strip()


def _user(address: str, name: str, role: str, inst: Institution | None, region: Region, pw_hash: str, now,
          programme: str | None = None):
    account = db.session.scalar(select(User).where(User.email == address))
    if account is None:
        account = User(email=address, name=name, password_hash=pw_hash, language="nl", active=True, created_at=now)
        account.roles.append(RoleAssignment(role=role, institution_id=inst.id if inst else None, region_id=region.id,
                                            programme=programme))
        db.session.add(account)
    return account


def load(app, scale: int = 0, echo=print) -> None:
    sync_definitions(app)
    eng: Engine = app.extensions["traject"]
    now = eng.clock.now()
    password = _password(Path(app.instance_path))
    pw_hash = hash_password(password)

    region = db.session.scalar(select(Region).where(Region.code == REGION[0]))
    if region is None:
        region = Region(code=REGION[0], name=REGION[1])
        db.session.add(region)
        db.session.flush()
    insts = {}
    for code, name, city in INSTITUTIONS:
        inst = db.session.scalar(select(Institution).where(Institution.code == code))
        if inst is None:
            inst = Institution(code=code, name=name, city=city, region_id=region.id)
            db.session.add(inst)
            db.session.flush()
        insts[code] = inst
    users: dict[str, User] = {}
    for i, (code, _, _) in enumerate(INSTITUTIONS):
        for role in (r for r in NAMES if r != "aios"):  # the staff; the aios are numbered, below
            users[email(role, code)] = _user(email(role, code), NAMES[role][i], role, insts[code], region, pw_hash, now)
        for n in (1, 2):
            address = email("aios", code, n)
            users[address] = _user(address, NAMES["aios"][2 * i + n - 1], "aios", insts[code], region, pw_hash, now)
    for role, name in REGIONAL:
        users[email(role)] = _user(email(role), name, role, None, region, pw_hash, now)
    for address, (code, name) in _cohort().items():
        users[address] = _user(address, name, "aios", insts[code], region, pw_hash, now)
    _second_programme(region, insts, users, pw_hash, now)
    db.session.commit()
    _training_records(app, eng, region, insts, users, now)
    db.session.commit()

    if not db.session.scalar(select(func.count()).select_from(Case).where(Case.region_id == region.id)):
        _example_cases(app, eng, users, now)
        _second_programme_case(eng, users)
        db.session.commit()
    if scale:
        synthetic(app, eng, users, scale, echo)

    echo(f"Demo region {REGION[1]!r}: {len(insts)} institutions, {len(users)} users.")
    echo(f"Log in as e.g. {email('opleider', 'meander')} / {email('aios', 'meander', 1)} / "
         f"{email('coc_chair', 'meander')} / {email('regio_bestuur')} / {email('admin')}")
    echo(f"Demo password (every demo user; only valid in a demo instance): {password}")


# A second specialty at two hospitals, so that programme scope shows: an anesthesiology opleider
# does not see these aios' trajectories (CONTRACT.md section 7).
SECOND_PROGRAMME = ("kindergeneeskunde", "Kindergeneeskunde", ("meander", "umcu"))
SECOND_NAMES = {"meander": ("dr. H. Koster (kindergeneeskunde)", "P. Sanders"),
                "umcu": ("dr. J. Wolters (kindergeneeskunde)", "R. Maas")}


def programme_email(role: str, code: str) -> str:
    return f"{role.replace('_', '-')}-{SECOND_PROGRAMME[0]}.{code.replace('_', '-')}@{DEMO_DOMAIN}"


def _second_programme(region, insts, users, pw_hash, now) -> None:
    for code, name in (("anesthesiologie", "Anesthesiologie"), SECOND_PROGRAMME[:2]):
        if db.session.scalar(select(Programme).where(Programme.code == code)) is None:
            db.session.add(Programme(region_id=region.id, code=code, name=name))
    for code in SECOND_PROGRAMME[2]:
        opleider_name, aios_name = SECOND_NAMES[code]
        address = programme_email("opleider", code)
        users[address] = _user(address, opleider_name, "opleider", insts[code], region, pw_hash, now,
                               programme=SECOND_PROGRAMME[0])
        address = programme_email("aios", code)
        users[address] = _user(address, aios_name, "aios", insts[code], region, pw_hash, now)


def _training_records(app, eng: Engine, region, insts, users, now) -> None:
    """Every demo aios has a record: employed by UMC Utrecht, placed at their hospital (seed 000, 1932-1934)."""
    if db.session.scalar(select(func.count()).select_from(TrainingRecord)):
        return
    today = now.date()
    cohort = _cohort()
    for address, account in users.items():
        if not any(a.role == "aios" for a in account.roles):
            continue
        placement = account.roles[0].institution_id
        code = next(c for c, inst in insts.items() if inst.id == placement)
        second = address.startswith("aios-" + SECOND_PROGRAMME[0])
        opleider = users[programme_email("opleider", code) if second else email("opleider", code)]
        # The aios of the history's cohort started before it (three to five years ago), today's aios since.
        start = date(today.year - (3 if address in cohort else 1) - account.id % 3, 9 if account.id % 2 else 3, 1)
        records.change(db.session, subject_id=account.id, region_id=region.id,
                       programme=SECOND_PROGRAMME[0] if second else "anesthesiologie", actor_id=None, now=now,
                       reason="demo", placement_id=placement, values={
                           "start_date": start, "expected_end_date": date(start.year + 5, start.month, 1)
                           - timedelta(days=1), "employer_id": insts["umcu"].id, "responsible_opleider_id": opleider.id})


def _second_programme_case(eng: Engine, users) -> None:
    kopl, kaios = users[programme_email("opleider", "meander")], users[programme_email("aios", "meander")]
    eng.open_case(db.session, eng.actor_for(kopl), workflow="internal_guidance", institution="meander",
                  subject_id=kaios.id, title=f"Begeleiding {kaios.name}",
                  data={"signal": "Onvoldoende voortgang in de kinderreanimatie-vaardigheden."})


def _at(eng: Engine, moment: datetime) -> Engine:
    # Shares the engine's caches (stored definitions, scope clauses): a new Engine per step read the
    # definitions from the database again on every step.
    return eng.at(moment)


def _walk(eng, moment, actor, case_id, steps):
    """Fire (trigger, data) pairs a few days apart; returns the moment after the last."""
    for trigger, data in steps:
        case = db.session.get(Case, case_id)
        _at(eng, moment).fire(db.session, actor, case_id, trigger, case.version, data)
        moment += timedelta(days=random.randint(3, 12))
    return moment


def _plan(eng, moment, opleider, aios, case_id, term_end: date, sign_both=True):
    e = _at(eng, moment)
    doc = e.add_document(db.session, opleider, case_id, "improvement_plan", {
        "learning_goals": ["Zelfstandig een preoperatieve screening afronden binnen 30 minuten (datum: "
                           f"{term_end.isoformat()})", "Overdracht volgens SBAR bij elke dienstwissel"],
        "approach": "Wekelijks casuïstiekbespreking met de supervisor; twee KPB's per week.",
        "support": "Vaste supervisor op de OK; gesprek met de onderwijskundige.",
        "term_end": term_end.isoformat(),
    })
    e.sign(db.session, opleider, doc.id, "agreed")
    if sign_both:
        e.sign(db.session, aios, doc.id, "agreed", "Eens met de afspraken.")


def _example_cases(app, eng: Engine, users: dict, now: datetime) -> None:
    random.seed(2026)
    today = now.date()
    actor = lambda address: eng.actor_for(users[address])  # noqa: E731
    rows = [
        ("meander", 1, "signalled", 5), ("meander", 2, "guidance", 70), ("gelre", 1, "analysis", 12),
        ("gelre", 2, "plan", 30), ("rijnstate", 1, "closed", 200), ("rijnstate", 2, "intensified", 160),
        ("gelderse_vallei", 1, "withdrawn", 40), ("umcu", 1, "guidance_overdue", 150), ("gelderse_vallei", 1, "discussion", 20),
    ]
    _history(eng, users, now)
    _gbt_cases(eng, users, now)
    _escalations(eng, users, now)
    for code, n, target, days_ago in rows:
        opleider, aios_user = actor(email("opleider", code)), users[email("aios", code, n)]
        aios = eng.actor_for(aios_user)
        moment = now - timedelta(days=days_ago)
        case = _at(eng, moment).open_case(
            db.session, opleider, workflow="internal_guidance", institution=code, subject_id=aios_user.id,
            title=f"Begeleiding {aios_user.name}",
            data={"signal": "Supervisoren melden achterblijvende zelfstandigheid bij de preoperatieve screening "
                            "en onvolledige overdrachten."})
        db.session.flush()
        moment += timedelta(days=2)
        if target == "signalled":
            continue
        if target == "withdrawn":
            _walk(eng, moment, opleider, case.id, [("analyse", {}), ("withdraw", {
                "reason": "Na analyse van het portfolio blijkt het signaal niet terecht."})])
            continue
        moment = _walk(eng, moment, opleider, case.id, [("analyse", {})])
        if target == "analysis":
            continue
        moment = _walk(eng, moment, opleider, case.id, [("discuss", {
            "core_problem": "Onvoldoende structuur in de voorbereiding; twijfel over eigen kunnen."})])
        if target == "discussion":
            continue
        moment = _walk(eng, moment, opleider, case.id, [("draft_plan", {
            "discussion_summary": "Oorzaken besproken; aios herkent het beeld en wil extra begeleiding."})])
        term_end = today + timedelta(days=45) if target != "guidance_overdue" else today - timedelta(days=10)
        _plan(eng, moment, opleider, aios, case.id, term_end, sign_both=target != "plan")
        if target == "plan":
            continue
        moment = _walk(eng, moment, opleider, case.id, [("start_guidance", {"iop_updated": True})])
        sufficient = target == "closed"
        moment = _walk(eng, moment, opleider, case.id, [("record_evaluation", {"evaluation": {
            "date": (moment.date()).isoformat(), "summary": "Duidelijke vooruitgang in zelfstandigheid."
            if sufficient else "Nog onvoldoende vooruitgang; overdrachten blijven onvolledig.",
            "sufficient": sufficient}})])
        if target == "closed":
            _walk(eng, moment, opleider, case.id, [("close", {
                "outcome_summary": "Leerdoelen behaald; terug naar het reguliere opleidingstraject."})])
        elif target == "intensified":
            _walk(eng, moment, opleider, case.id, [("intensify", {
                "report": "Verslag onvoldoende voortgang: leerdoelen na twee evaluaties niet behaald.",
                "decision_moment": "progress_meeting", "aios_informed_of_dispute_procedure": True,
                "decision_date": moment.date().isoformat(),
                "reasons": "Onvoldoende verbetering binnen het interne traject."})])


def _signed(eng, moment, opleider, aios, case_id, kind, content, aios_verdict="agreed", comment=""):
    e = _at(eng, moment)
    doc = e.add_document(db.session, opleider, case_id, kind, content)
    e.sign(db.session, opleider, doc.id, "agreed")
    e.sign(db.session, aios, doc.id, aios_verdict, comment)


def _gbt_cases(eng: Engine, users: dict, now: datetime) -> None:
    """GBT cases in several states: active, assessed, completed, terminated with a dispute in mediation."""
    for code, n, target, days_ago in [("gelderse_vallei", 2, "active", 60), ("meander", 1, "assessed", 150),
                                      ("gelre", 1, "completed", 260), ("umcu", 2, "terminated", 170)]:
        opleider = eng.actor_for(users[email("opleider", code)])
        aios_user = users[email("aios", code, n)]
        aios = eng.actor_for(aios_user)
        moment = now - timedelta(days=days_ago)
        decided = moment.date()
        case = _at(eng, moment).open_case(
            db.session, opleider, workflow="intensified_guidance", institution=code, subject_id=aios_user.id,
            title=f"GBT {aios_user.name}", data={
                "decision_moment": "suitability_assessment", "decision_date": decided.isoformat(),
                "reasons": "Onvoldoende voortgang in klinisch redeneren en zelfstandigheid ondanks intern traject.",
                "aios_informed_of_dispute_procedure": True,
                "justification": "Intern traject in de vorige opleidingsinstelling doorlopen."})
        db.session.flush()
        start = decided + timedelta(days=7)
        moment += timedelta(days=5)
        _signed(eng, moment, opleider, aios, case.id, "adjusted_iop", {
            "goals": ["Zelfstandig anesthesie bij ASA 1-3 electieve ingrepen", "Gestructureerde overdracht (SBAR)"],
            "conditions": "Vaste supervisor; twee KPB's per week; geen nachtdiensten zonder achterwacht.",
            "start_date": start.isoformat(), "end_date": (start + timedelta(days=122)).isoformat(),
            "assessment_method": "KPB's, 360-graden feedback en een afsluitende geschiktheidsbeoordeling."})
        moment = _walk(eng, moment + timedelta(days=2), opleider, case.id, [("start", {})])
        if target == "active":
            continue
        moment += timedelta(days=50)
        _signed(eng, moment, opleider, aios, case.id, "progress_report", {
            "meeting_date": moment.date().isoformat(), "summary": "Voortgang besproken; deels op koers."},
            "seen_not_agreed" if target == "terminated" else "agreed",
            "Ik herken mij niet in het beeld." if target == "terminated" else "")
        moment = _walk(eng, moment, opleider, case.id, [("record_progress_meeting", {})])
        outcome = {"assessed": "extend", "completed": "suitable", "terminated": "unsuitable"}[target]
        moment += timedelta(days=60)
        _signed(eng, moment, opleider, aios, case.id, "suitability_assessment", {
            "assessment_date": moment.date().isoformat(), "outcome": outcome,
            "motivation": "Beoordeeld door de opleiders van het RSO op basis van KPB's en 360-graden feedback.",
            **({"new_training_end_date": _extended_end(aios_user.id, moment.date()).isoformat()}
               if outcome == "extend" else {})})
        moment = _walk(eng, moment, opleider, case.id, [("assess", {})])
        if target == "completed":
            _walk(eng, moment, opleider, case.id, [("conclude", {})])
        elif target == "terminated":
            moment = _walk(eng, moment, opleider, case.id, [("terminate", {
                "end_date": (moment.date() + timedelta(days=60)).isoformat()})])
            dispute = _at(eng, moment).open_case(
                db.session, aios, workflow="dispute", institution=code, parent_id=case.id,
                title=f"Geschil {aios_user.name}", data={"grounds": "De beoordeling woog de laatste maanden "
                                                                    "onvoldoende mee."})
            db.session.flush()
            coc = eng.actor_for(users[email("coc_chair", code)])
            _walk(eng, moment + timedelta(days=3), coc, dispute.id, [("acknowledge", {})])


def _extended_end(aios_id: int, today: date) -> date:
    """An extension half a year beyond the end the training record expects: the extend step refuses a new
    end date that is not later (the demo's assessed GBT must be extendable from its page)."""
    record = records.get(db.session, aios_id)
    current = record.expected_end_date if record is not None and record.expected_end_date else today
    return max(current, today) + timedelta(days=182)


# The art. 4 ladder at a rung in every hospital (CONTRACT.md section 5): (hospital, rung, days ago).
# Gelre's and UMC Utrecht's COC chairs let the 14-day term pass, so their item is overdue.
LADDER = [("meander", "escalated_coc_chair", 4), ("gelre", "escalated_coc_chair", 19),
          ("rijnstate", "escalated_rvb", 6), ("gelderse_vallei", "escalated_r_coc", 5),
          ("umcu", "reported_rgs", 30), ("umcu", "escalated_coc_chair", 17)]
SIGNALS = {
    "meander": "Aiossen staan in de avonddienst regelmatig zonder bereikbare supervisor.",
    "gelre": "Het onderwijsprogramma valt al maanden uit door productiedruk.",
    "rijnstate": "Er is structureel te weinig gelegenheid voor de verplichte KPB's.",
    "gelderse_vallei": "Aiossen worden ingeroosterd als vervanging van ontbrekende specialisten.",
    "umcu": "De opleidingsvergadering is sinds het voorjaar niet meer bijeengekomen.",
}


def _escalations(eng: Engine, users: dict, now: datetime) -> None:
    """Escalations (art. 4) standing at the rungs of LADDER, and an RSO report (art. 2.6 / 2.7) with the
    COC chairs of Rijnstate and Gelderse Vallei, so that every COC chair has an escalation waiting."""
    rso, r_coc = eng.actor_for(users[email("rso_board")]), eng.actor_for(users[email("r_coc_chair")])
    rso_chair = eng.actor_for(users[email("rso_chair")])
    for code, rung, days_ago in LADDER:
        signaller = eng.actor_for(users[email("aios", code, 2)])
        moment = now - timedelta(days=days_ago + 20)
        case = _at(eng, moment).open_case(db.session, signaller, workflow="escalation", institution=code,
                                          title=f"Signaal {dict((c, n) for c, n, _ in INSTITUTIONS)[code]}",
                                          data={"description": SIGNALS[code]})
        db.session.flush()
        steps = [(rso, "discuss", {"with_coc_board": True}), (rso, "escalate", {"reason": "Geen verbetering na "
                 "het gesprek met de opleider."}), (rso_chair, "escalate", {"reason": "De RSO-voorzitter ziet geen "
                                                                            "verbetering."})]
        coc, rvb = eng.actor_for(users[email("coc_chair", code)]), eng.actor_for(users[email("rvb", code)])
        steps += [(coc, "escalate", {"reason": "De maatregelen van de afdeling helpen onvoldoende."}),
                  (rvb, "escalate", {"reason": "De Raad van Bestuur ziet geen ruimte in de formatie."}),
                  (r_coc, "escalate", {"reason": "Het Regio-Bestuur deelt de zorg van de R-COC niet.",
                                       "fundamental_disagreement": True})]
        stop = {"escalated_coc_chair": 3, "escalated_rvb": 4, "escalated_r_coc": 5, "reported_rgs": 6}[rung]
        for i, (who, trigger, data) in enumerate(steps[:stop]):
            at = moment + timedelta(days=2 * i) if i < stop - 1 else now - timedelta(days=days_ago)
            _at(eng, at).fire(db.session, who, case.id, trigger, db.session.get(Case, case.id).version, data)
    for code, workflow in (("rijnstate", "rso_quality"), ("gelderse_vallei", "rso_obligations")):
        _at(eng, now - timedelta(days=9)).open_case(
            db.session, rso, workflow=workflow, institution=code, title=f"Melding RSO {code.replace('_', ' ')}",
            data={"shortcoming": "Het afgesproken aantal opleidingsplaatsen is niet beschikbaar gesteld.",
                  "reason": "Besproken in de RSO-vergadering; geen verbetering."})
        db.session.flush()


def _history_slots() -> list[tuple[int, int, str, int]]:
    """(month, k, hospital, aios number) of every historical trajectory, oldest first.

    Each hospital's trajectories go to the aios of its cohort in turn, one each; the last eighth to
    aios who had one long before (a second signal a year or more later): most aios of the region have
    no or one trajectory in two years, a few two, none more (tests/test_demo.py)."""
    codes = [c for c, _, _ in INSTITUTIONS]
    moments = [(month, k, codes[(month + k) % len(codes)]) for month in range(HISTORY_MONTHS, 0, -1)
               for k in range(HISTORY_PER_MONTH)]
    slots = []
    for code in codes:
        mine = [m for m in moments if m[2] == code]
        first = len(mine) - len(mine) // 8  # this many aios; the last eighth are second trajectories
        for j, (month, k, _) in enumerate(mine):
            n = 3 + (j if j < first else (j - first) * 3 % first)
            slots.append((month, k, code, n))
    return sorted(slots, key=lambda s: (-s[0], s[1]))


def _cohort() -> dict[str, tuple[str, str]]:
    """The hospitals' historical cohorts: address (email("aios", code, n), n > 2) -> (hospital, invented name)."""
    numbers = sorted({(code, n) for _month, _k, code, n in _history_slots()})
    return {email("aios", code, n): (code, f"{COHORT_INITIALS[g % len(COHORT_INITIALS)]}. "
                                           f"{COHORT_SURNAMES[g % len(COHORT_SURNAMES)]}")
            for g, (code, n) in enumerate(numbers)}


def _history(eng: Engine, users: dict, now: datetime) -> None:
    """Two years of internal guidance before today, about six a month over the region, most of them
    ended (withdrawn, or closed after a plan and an evaluation): the overview's monthly
    figures are numbers, not "< 5". They belong to the hospitals' cohorts of aios (`_history_slots`),
    not to today's demo aios."""
    rng = random.Random(24)
    for month, k, code, n in _history_slots():
        opleider = eng.actor_for(users[email("opleider", code)])
        aios_user = users[email("aios", code, n)]
        moment = now - timedelta(days=30 * month + rng.randint(0, 27))
        case = _at(eng, moment).open_case(
            db.session, opleider, workflow="internal_guidance", institution=code, subject_id=aios_user.id,
            title=f"Begeleiding {aios_user.name} ({moment:%m-%Y})",
            data={"signal": "Signaal uit het opleidersoverleg over de voortgang."})
        db.session.flush()
        if month == 1 and k % 2:
            continue  # still open
        if k:  # most signals turn out unfounded at once; one a month ends in a closed trajectory
            _walk(eng, moment + timedelta(days=3), opleider, case.id, [("withdraw", {
                "reason": "Na analyse van het portfolio en gesprekken met supervisoren is geen traject nodig."})])
            continue
        moment = _walk(eng, moment + timedelta(days=1), opleider, case.id, [("analyse", {})])
        moment = _walk(eng, moment, opleider, case.id, [
            ("discuss", {"core_problem": "Planning en prioriteren."}),
            ("draft_plan", {"discussion_summary": "Besproken; aios herkent het beeld."})])
        _plan(eng, moment, opleider, eng.actor_for(aios_user), case.id, moment.date() + timedelta(days=60))
        _walk(eng, moment, opleider, case.id, [
            ("start_guidance", {"iop_updated": True}),
            ("record_evaluation", {"evaluation": {"date": moment.date().isoformat(), "summary": "Verbeterd.",
                                                  "sufficient": True}}),
            ("close", {"outcome_summary": "Leerdoelen behaald."})])


def synthetic(app, eng: Engine, users: dict, n: int, echo) -> None:
    """N extra internal_guidance cases with realistic histories, committed in batches, with progress."""
    rng = random.Random(n)
    codes = [c for c, _, _ in INSTITUTIONS]
    start = time.monotonic()
    batch = 200
    # Not an aios whose training the demo's history terminated: no new trajectory may open for them.
    ended = set(db.session.scalars(select(TrainingRecord.subject_id)
                                   .where(TrainingRecord.status == RecordStatus.TERMINATED)))
    subjects = {code: [u for k in (1, 2) if (u := users[email("aios", code, k)]).id not in ended] for code in codes}
    codes = [c for c in codes if subjects[c]]
    for i in range(n):
        if i % batch == 0:
            # (Re)fill the caches that every _at() copy shares: the stored definitions, the scope clauses.
            eng.scope(db.session, eng.actor_for(users[email("opleider", codes[0])]))
        code = rng.choice(codes)
        opleider = eng.actor_for(users[email("opleider", code)])
        aios_user = users[rng.choice(subjects[code]).email]
        moment = eng.clock.now() - timedelta(days=rng.randint(1, 700))
        case = _at(eng, moment).open_case(
            db.session, opleider, workflow="internal_guidance", institution=code, subject_id=aios_user.id,
            title=f"Synthetisch traject {i + 1}", data={"signal": "Synthetisch signaal voor de belastingproef."})
        db.session.flush()
        depth = rng.randint(0, 3)
        steps = [("analyse", {}), ("discuss", {"core_problem": "Synthetisch kernprobleem"}),
                 ("draft_plan", {"discussion_summary": "Synthetisch verslag"})][:depth]
        _walk(eng, moment + timedelta(days=1), opleider, case.id, steps)
        if (i + 1) % batch == 0 or i + 1 == n:
            db.session.commit()
            db.session.expunge_all()
            users.update({u.email: u for u in db.session.scalars(select(User))})
            rate = (i + 1) / max(time.monotonic() - start, 1e-6)
            echo(f"  synthetic cases: {i + 1}/{n} ({rate:.0f}/s)")
