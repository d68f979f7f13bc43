"""The HTML pages through the Flask test client: login, CSRF, dashboards, case pages, forms, languages.

The browser tests (tests/browser) walk the same pages in chromium; these are the fast, exact checks.
"""
from __future__ import annotations

import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import event, select

from engine.models import AccessLog, Case, User
from flows import PLAN, browser, csrf_token, evaluation, fire, ok, open_internal, sign, to_guidance, to_plan

PASSWORD = "paarse olifant op de fiets"  # passes the policy (web/passwords.py)
WEB = Path(__file__).resolve().parent.parent / "web"


# -- helpers ---------------------------------------------------------------------------------


token = csrf_token


def page(response, status=200) -> str:
    html = response.get_data(as_text=True)
    assert response.status_code == status, (response.status_code, html[-3000:])
    return html


def post(client, path, data, status=303, origin="/"):
    return client.post(path, data={"csrf_token": token(client, origin), **data}), status


def posted(client, path, data, status=303, origin="/") -> str:
    response, expected = post(client, path, data, status, origin)
    return page(response, expected)


def set_password(world, name: str, password: str = PASSWORD):
    from web.auth import hash_password
    from web.extensions import db

    with world.app.app_context():
        db.session.get(User, world.users[name]).password_hash = hash_password(password)
        db.session.commit()


def text(html: str) -> str:
    """The page's visible text, roughly: tags out, whitespace folded."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def case_state(world, case_id) -> tuple[str, int]:
    from web.extensions import db

    with world.app.app_context():
        case = db.session.get(Case, case_id)
        return case.state, case.version


def open_gbt(opleider, aios_id):
    return ok(opleider.post("/cases", json={
        "workflow": "intensified_guidance", "institution": "meander", "subject_id": aios_id, "title": "GBT",
        "data": {"decision_moment": "suitability_assessment", "decision_date": "2026-03-02",
                 "reasons": "Onvoldoende voortgang", "report": "Verslag",
                 "aios_informed_of_dispute_procedure": True}}), 201)


# -- logging in and out ---------------------------------------------------------------------


def test_it_sends_strangers_to_the_login_page(world):
    response = browser(world).get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_it_logs_in_with_a_password_in_a_new_session(world):
    set_password(world, "opleider")
    client = browser(world)
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"  # session fixation: must not survive the login
    response, _ = post(client, "/login", {"email": "opleider@test.nl", "password": PASSWORD}, origin="/login")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    with client.session_transaction() as session:
        assert "planted" not in session and session["_user_id"] == str(world.users["opleider"])
    assert "Mijn trajecten" in page(client.get("/"))


def test_a_wrong_password_is_said_on_the_form(world):
    set_password(world, "opleider")
    html = posted(browser(world), "/login", {"email": "opleider@test.nl", "password": "wrong"}, 200, "/login")
    assert "Onjuist e-mailadres of wachtwoord." in html
    assert "_user_id" not in browser(world).get("/login").get_data(as_text=True)


def test_it_logs_out(world):
    client = browser(world, "opleider")
    response, _ = post(client, "/logout", {})
    assert response.status_code == 303
    assert client.get("/").status_code == 302


def test_it_changes_the_password(world):
    from web.auth import check_credentials

    set_password(world, "aios")
    client = browser(world, "aios")
    html = posted(client, "/account/password", {"current": "nope", "new": "short", "repeat": "short"}, 422)
    assert "Dit is niet uw huidige wachtwoord." in html and "minstens 12 tekens" in html
    posted(client, "/account/password", {"current": PASSWORD, "new": "a new long passphrase", "repeat":
                                         "a new long passphrase"})
    with world.app.app_context():
        assert check_credentials("aios@test.nl", "a new long passphrase") is not None
        assert check_credentials("aios@test.nl", PASSWORD) is None


def test_the_demo_chooser_logs_in_demo_accounts_only_in_a_demo_instance(world):
    from web.extensions import db

    with world.app.app_context():
        user = User(email="opleider.meander@demo.traject.nl", name="dr. Demo", active=True,
                    created_at=world.app.extensions["traject"].clock.now())
        db.session.add(user)
        db.session.commit()
    client = browser(world)
    assert 'data-role="opleider"' in page(client.get("/login"))
    response, _ = post(client, "/login/demo", {"email": "opleider.meander@demo.traject.nl"}, origin="/login")
    assert response.status_code == 303
    assert "dr. Demo" in page(client.get("/"))
    refused, _ = post(browser(world), "/login/demo", {"email": "opleider@test.nl"}, origin="/login")
    assert refused.status_code == 404  # not a demo account
    world.app.config["TRAJECT_DEMO"] = False
    other = browser(world)
    assert 'data-role="opleider"' not in page(other.get("/login"))
    response, _ = post(other, "/login/demo", {"email": "opleider.meander@demo.traject.nl"}, origin="/login")
    assert response.status_code == 404


# -- CSRF -------------------------------------------------------------------------------------


def test_forms_without_the_csrf_token_are_refused(world):
    case = open_internal(world.api("opleider"), world.users["aios"])
    client = browser(world, "opleider")
    response = client.post(f"/cases/{case['id']}/fire", data={"trigger": "analyse", "expected_version": "1"})
    assert response.status_code == 400
    assert "Het formulier is verlopen" in response.get_data(as_text=True)
    assert case_state(world, case["id"]) == ("signalled", 1)
    wrong = client.post(f"/cases/{case['id']}/fire", data={"trigger": "analyse", "expected_version": "1",
                                                           "csrf_token": "forged"})
    assert wrong.status_code == 400
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200  # still logged in


def test_the_json_api_needs_no_csrf_token(world):
    # bearer tokens are not sent by browsers on their own: the API is exempt from CSRF
    opleider = world.api("opleider")
    case = open_internal(opleider, world.users["aios"])
    fire(opleider, case, "analyse")


# -- dashboards ---------------------------------------------------------------------------------


@pytest.fixture
def busy(world):
    """A region with work: an internal trajectory in guidance, one in plan, a GBT, and one at Gelre."""
    opleider, aios = world.api("opleider"), world.api("aios")
    guided = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    planned, doc = to_plan(opleider, world.api("aios2"), open_internal(opleider, world.users["aios2"]))
    gbt = open_gbt(opleider, world.users["aios"])
    gelre = open_internal(world.api("opleider_gelre"), world.users["aios_gelre"], "gelre")
    return {"guided": guided, "planned": planned, "plan_doc": doc, "gbt": gbt, "gelre": gelre}


EVERYONE = ["opleider", "opleider2", "aios", "aios2", "coc", "hr", "rvb", "opleider_gelre", "aios_gelre", "coc_gelre",
            "hr_gelre", "rso", "rcoc", "regio", "vp", "admin"]  # every user of conftest.ROLES


@pytest.mark.parametrize("name", EVERYONE)
def test_every_role_has_a_dashboard(world, busy, name):
    html = page(browser(world, name).get("/"))
    assert "<h1>Overzicht</h1>" in html
    assert html.count("<h2") >= 1


def test_the_dashboards_show_each_role_its_work(world, busy):
    opleider = text(page(browser(world, "opleider").get("/")))
    assert "Mijn trajecten" in opleider and "Aios2" in opleider and "Einde termijn verbeterplan" in opleider
    assert 'name="subject"' in page(browser(world, "opleider").get("/"))  # open a trajectory: choose an aios
    aios = text(page(browser(world, "aios2").get("/")))
    assert "Wacht op uw handtekening" in aios and "Verbeterplan, versie 1" in aios
    hr = text(page(browser(world, "hr").get("/")))
    assert "Geïntensiveerde begeleidingstrajecten" in hr and "GBT" in hr and "Begeleiding" not in hr
    coc_gelre = text(page(browser(world, "coc_gelre").get("/")))
    assert "Aios_gelre" in coc_gelre and "Aios2" not in coc_gelre


def test_the_regional_overview_counts_without_names(world, busy):
    html = page(browser(world, "regio").get("/"))
    assert html.count('<svg class="chart"') == 5
    assert "&lt; 5" in html
    for name in ("Aios", "Aios2", "Aios_gelre"):
        assert f">{name}<" not in html
    assert "Begeleiding<" not in html or "Intern begeleidingstraject" in html  # states, not people
    assert page(browser(world, "regio").get("/overview")).count('<svg class="chart"') == 5
    assert browser(world, "opleider").get("/overview").status_code == 404


def test_the_admin_verifies_the_audit_trail(world, busy):
    client = browser(world, "admin")
    html = page(client.get("/admin"))
    assert "internal_guidance" in html and "opleider@test.nl" in html
    response, _ = post(client, "/admin/audit/verify", {})
    assert response.status_code == 303
    assert "Audittrail intact" in page(client.get("/admin"))
    assert browser(world, "opleider").get("/admin").status_code == 404


# -- the case page ------------------------------------------------------------------------------


def test_a_case_outside_your_scope_is_not_found(world, busy):
    case_id = busy["guided"]["id"]
    for name in ("opleider_gelre", "aios2", "regio", "rso", "hr_gelre"):
        client = browser(world, name)
        assert client.get(f"/cases/{case_id}").status_code == 404, name
        response, _ = post(client, f"/cases/{case_id}/fire", {"trigger": "close", "expected_version": "1"})
        assert response.status_code == 404, name
        response, _ = post(client, f"/documents/{busy['guided']['documents'][0]['id']}/sign", {"verdict": "agreed"})
        assert response.status_code == 404, name
    assert browser(world, "opleider").get("/cases/987654").status_code == 404


def test_the_case_page_shows_diagram_timeline_deadlines_documents_and_forms(world, busy):
    case_id = busy["guided"]["id"]
    html = page(browser(world, "opleider").get(f"/cases/{case_id}"))
    assert '<svg class="diagram"' in html and re.search(r'class="node[a-z ]* current"', html)
    assert "Begeleiding starten: van “Verbeterplan” naar “Begeleiding”" in text(html)
    assert "Einde termijn verbeterplan" in html and "nog 91 dagen" in html  # 1 June 2026 from 2 March
    assert "door iedereen ondertekend" in html
    for trigger in ("record_evaluation", "close", "intensify"):
        assert f'id="t-{trigger}"' in html
    assert 'id="t-withdraw"' not in html
    # the aios reads, signs nothing more and fires nothing
    aios = page(browser(world, "aios").get(f"/cases/{case_id}"))
    assert 'action="/cases/' not in aios.split("Wat u nu kunt doen")[1].split("Documenten")[0]
    with world.app.app_context():
        from web.extensions import db

        logged = db.session.scalars(select(AccessLog.action).where(AccessLog.case_id == case_id)).all()
    assert "read" in logged


def test_hr_reads_a_gbt_without_forms(world, busy):
    html = page(browser(world, "hr").get(f"/cases/{busy['gbt']['id']}"))
    assert "Er is in deze zaak nu niets voor u te doen." in html
    assert 'action="/cases/' not in html and 'action="/documents/' not in html


def test_a_trajectory_is_opened_and_walked_through_the_forms(world):
    client = browser(world, "opleider")
    aios = world.users["aios"]
    inst = world.institutions["meander"]
    html = posted(client, "/cases/new", {"workflow": "internal_guidance", "subject": f"{inst}:{aios}"}, 422)
    assert "Signaal is verplicht" in html and 'aria-invalid="true"' in html
    response, _ = post(client, "/cases/new", {"workflow": "internal_guidance", "subject": f"{inst}:{aios}",
                                              "title": "Via de pagina", "data.signal": "Onvolledige overdrachten"})
    assert response.status_code == 303
    case_id = int(response.headers["Location"].rsplit("/", 1)[1])
    here = f"/cases/{case_id}"

    def step(trigger, status=303, **data):
        version = str(case_state(world, case_id)[1])
        return posted(client, f"{here}/fire", {"trigger": trigger, "expected_version": version, **data}, status, here)

    step("analyse")
    html = step("discuss", 422)
    assert "Kernprobleem is verplicht" in html
    assert re.search(r'id="t-discuss-core-problem-error">Kernprobleem is verplicht', html)
    step("discuss", **{"data.core_problem": "Structuur"})
    step("draft_plan", **{"data.discussion_summary": "Besproken"})
    html = posted(client, f"{here}/documents", {"kind": "improvement_plan", "content.learning_goals": "",
                                                "content.term_end": "1-6-2026"}, 422, here)
    assert "Vul minstens 1 punt(en) in, één per regel." in html or "Dit veld is verplicht." in html
    posted(client, f"{here}/documents", {
        "kind": "improvement_plan", "content.learning_goals": "Zelfstandig screenen\n\nOverdracht volgens SBAR\n",
        "content.approach": "Casuïstiek", "content.support": "Supervisor", "content.term_end": "1-6-2026"}, 303, here)
    with world.app.app_context():
        from engine.models import Document
        from web.extensions import db

        doc = db.session.scalar(select(Document).where(Document.case_id == case_id))
        assert doc.content["learning_goals"] == ["Zelfstandig screenen", "Overdracht volgens SBAR"]
        assert doc.content["term_end"] == "2026-06-01"
    posted(client, f"/documents/{doc.id}/sign", {"verdict": "agreed"}, 303, here)
    html = step("start_guidance", 422, **{"data.iop_updated": "1"})
    assert "Verbeterplan (versie 1) is nog niet door iedereen ondertekend" in html
    aios_client = browser(world, "aios")
    html = posted(aios_client, f"/documents/{doc.id}/sign", {"verdict": "seen_not_agreed",
                                                             "comment": "Termijn is krap"}, 303, here)
    step("start_guidance", **{"data.iop_updated": "1"})
    assert case_state(world, case_id)[0] == "guidance"
    step("record_evaluation", **{"data.evaluation.date": "2026-04-01", "data.evaluation.summary": "Goed",
                                 "data.evaluation.sufficient": "true"})
    html = page(client.get(here))
    assert "gezien, niet akkoord" in html and "Termijn is krap" in html
    assert "Voldoende verbeterd: ja" in html


def test_preconditions_are_plain_english_on_request(world):
    case = open_internal(world.api("opleider"), world.users["aios"])
    fire(world.api("opleider"), case, "analyse")
    client = browser(world, "opleider")
    with client.session_transaction() as session:
        session["lang"] = "en"
    html = posted(client, f"/cases/{case['id']}/fire", {"trigger": "discuss", "expected_version": "2"}, 422,
                  f"/cases/{case['id']}")
    assert "Core problem is required" in html and 'lang="en"' in html
    assert "precondition" not in html and "input.required" not in html  # never codes


def test_a_stale_form_is_a_friendly_conflict(world):
    case = open_internal(world.api("opleider"), world.users["aios"])
    client = browser(world, "opleider")
    here = f"/cases/{case['id']}"
    form_token = token(client, here)
    fire(world.api("opleider"), case, "analyse")  # someone else, meanwhile
    response = client.post(f"{here}/fire", data={"csrf_token": form_token, "trigger": "withdraw",
                                                 "expected_version": "1", "data.reason": "Ongegrond"})
    html = page(response, 409)
    assert "Iemand anders heeft deze zaak intussen gewijzigd" in html and "Pagina opnieuw laden" in html
    assert case_state(world, case["id"]) == ("analysis", 2)


def test_the_pdf_link_serves_the_documents_pdf(world, busy):
    doc_id = busy["plan_doc"]["id"]
    response = browser(world, "aios2").get(f"/documents/{doc_id}/pdf")
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    assert browser(world, "opleider_gelre").get(f"/documents/{doc_id}/pdf").status_code == 404


# -- languages -------------------------------------------------------------------------------------


def test_the_language_switch_is_remembered(world):
    client = browser(world, "opleider")
    assert "<h1>Overzicht</h1>" in page(client.get("/"))
    response, _ = post(client, "/language", {"lang": "en", "next": "/cases"})
    assert response.status_code == 303 and response.headers["Location"] == "/cases"
    html = page(client.get("/"))
    assert "<h1>Dashboard</h1>" in html and '<html lang="en">' in html
    with world.app.app_context():
        from web.extensions import db

        assert db.session.get(User, world.users["opleider"]).language == "en"
    response, _ = post(client, "/language", {"lang": "en", "next": "https://evil.example/"})
    assert response.headers["Location"] == "/"  # never an open redirect


def test_times_are_shown_in_amsterdam_in_dutch(world, busy):
    html = page(browser(world, "opleider").get(f"/cases/{busy['guided']['id']}"))
    assert "2 mrt 2026 10:00" in html  # 09:00 UTC on 2 March is 10:00 in Amsterdam


def test_every_string_is_translated_and_compiled(tmp_path):
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    pot = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F", str(WEB / "babel.cfg"),
                    "-k", "_l", "-o", str(pot), "."], cwd=WEB.parent, check=True, capture_output=True)
    with pot.open("rb") as f:
        wanted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
    po_path = WEB / "translations/nl/LC_MESSAGES/messages.po"
    with po_path.open("rb") as f:
        po = {(m.id if isinstance(m.id, str) else m.id[0]): m for m in read_po(f, locale="nl") if m.id}
    untranslated = sorted(i for i in wanted if i not in po or not (
        po[i].string if isinstance(po[i].string, str) else all(po[i].string)) or po[i].fuzzy)
    assert not untranslated, f"run pybabel update and translate: {untranslated}"
    with po_path.with_suffix(".mo").open("rb") as f:
        mo = {(m.id if isinstance(m.id, str) else m.id[0]): m.string for m in read_mo(f) if m.id}
    def same(a, b):
        return (a if isinstance(a, str) else tuple(a or ())) == (b if isinstance(b, str) else tuple(b or ()))

    stale = sorted(i for i in wanted if not same(mo.get(i), po[i].string))
    assert not stale, f"compile the catalog (pybabel compile -d web/translations): {stale}"


# -- statements per page: constant in the number of cases ---------------------------------------


@contextmanager
def counted(app):
    from web.extensions import db

    with app.app_context():
        engine = db.engine
    statements = []

    def count(conn, cursor, statement, params, context, executemany):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


PAGES = [("opleider", "/"), ("aios", "/"), ("coc", "/"), ("hr", "/"), ("regio", "/"), ("admin", "/"),
         ("opleider", "/cases"), ("admin", "/cases?status=all"), ("admin", "/admin")]


def _more_cases(world, n):
    opleider, aios = world.api("opleider"), world.api("aios")
    for i in range(n):
        to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
        case, doc = to_plan(opleider, aios, open_internal(opleider, world.users["aios"]))
        open_gbt(opleider, _another_aios(world, f"extra{i}"))  # one open GBT per aios (CONTRACT.md section 6)


def _another_aios(world, name: str) -> int:
    from engine.models import RoleAssignment
    from web.extensions import db

    with world.app.app_context():
        user = User(email=f"{name}@test.nl", name=name.capitalize(), active=True,
                    created_at=world.app.extensions["traject"].clock.now())
        user.roles.append(RoleAssignment(role="aios", institution_id=world.institutions["meander"],
                                         region_id=world.region_id))
        db.session.add(user)
        db.session.commit()
        return user.id


def test_pages_issue_a_constant_number_of_statements(world, busy):
    def costs():
        out = {}
        for name, path in PAGES:
            client = browser(world, name)
            page(client.get(path))  # warm: definitions cached, session loaded
            with counted(world.app) as statements:
                page(client.get(path))
            out[(name, path)] = len(statements)
        return out

    before = costs()
    _more_cases(world, 3)
    after = costs()
    assert after == before, {k: (before[k], after[k]) for k in before if before[k] != after[k]}


def test_the_case_page_costs_the_same_with_more_history(world):
    opleider, aios = world.api("opleider"), world.api("aios")
    short = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    long = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    for i in range(4):
        long = fire(opleider, long, "record_evaluation", evaluation(False, f"2026-04-0{i + 1}"))
    sign(aios, ok(opleider.post(f"/cases/{long['id']}/documents", json={"kind": "improvement_plan",
                                                                         "content": PLAN}), 201))
    client = browser(world, "opleider")
    counts = []
    for case in (short, long):
        page(client.get(f"/cases/{case['id']}"))
        with counted(world.app) as statements:
            page(client.get(f"/cases/{case['id']}"))
        counts.append(len(statements))
    assert counts[0] == counts[1]


def test_the_aios_lodges_a_dispute_from_the_gbt_page(world):
    gbt = open_gbt(world.api("opleider"), world.users["aios"])
    client = browser(world, "aios")
    here = f"/cases/{gbt['id']}"
    html = page(client.get(here))
    assert 'id="c-dispute"' in html and "Geschil indienen" in html
    assert 'id="c-dispute"' not in page(browser(world, "opleider").get(here))  # only the aios lodges it
    html = posted(client, f"{here}/open/dispute", {}, 422, here)
    assert "Gronden van het bezwaar is verplicht" in html
    response, _ = post(client, f"{here}/open/dispute", {"data.grounds": "Het besluit is onvoldoende onderbouwd."},
                       origin=here)
    assert response.status_code == 303
    dispute_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert case_state(world, dispute_id)[0] == "requested"
    assert f'href="/cases/{gbt["id"]}"' in page(client.get(f"/cases/{dispute_id}"))  # linked both ways


def test_a_list_of_actions_is_entered_as_rows(world):
    from web.extensions import db

    with world.app.app_context():
        if "escalation" not in world.app.extensions["traject"].latest(db.session):
            pytest.skip("the escalation workflow does not exist yet")
    rso = world.api("rso")
    case = ok(rso.post("/cases", json={"workflow": "escalation", "institution": "meander", "title": "Supervisie",
                                       "data": {"description": "Te weinig supervisie"}}), 201)
    case = fire(rso, case, "discuss")
    client = browser(world, "rso")
    here = f"/cases/{case['id']}"
    html = page(client.get(here))
    assert 'name="data.actions.0.description"' in html and 'name="data.actions.2.due_date"' in html
    posted(client, f"{here}/fire", {
        "trigger": "agree_actions", "expected_version": str(case["version"]),
        "data.actions.0.description": "Roosters aanpassen", "data.actions.0.owner_role": "coc_chair",
        "data.actions.0.due_date": "2026-04-01", "data.actions.1.description": "",
        "data.actions.2.description": "Evaluatie met aios", "data.actions.2.owner_role": "opleider",
        "data.actions.2.due_date": "15-04-2026", "confirm": "1"}, 303, here)  # the action list is a letter
    with world.app.app_context():
        stored = db.session.get(Case, case["id"])
        assert stored.state == "action"
        assert [a["description"] for a in stored.data["actions"]] == ["Roosters aanpassen", "Evaluatie met aios"]
        assert stored.data["actions"][1]["due_date"] == "2026-04-15"
