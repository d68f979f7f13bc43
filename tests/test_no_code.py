"""No code ever reaches a person: every page of every role, in Dutch and in English, after every workflow walked.

The region is walked through every procedure (tests/flows.py and the steps of the GBT, the dispute, the
art. 4 ladder and the art. 2.5-2.7 procedures), a sweep a year later makes every open term pass, and then
each role's pages are crawled from the start page, following every link on the site, in both languages.
The visible text (tags stripped; e-mail addresses, URLs and case numbers allowed) must hold no snake_case
token, no role key, and no English msgid on a Dutch page nor a Dutch label on an English page.
"""
from __future__ import annotations

import html as html_lib
import re
from datetime import timedelta
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from conftest import ROLES
from flows import browser, evaluation, fire, ok, open_internal, sign, to_guidance, with_rso_chair

PO = Path(__file__).resolve().parent.parent / "web" / "translations" / "nl" / "LC_MESSAGES" / "messages.po"
IOP = {"goals": ["Zelfstandig anesthesie bij ASA 1-2"], "conditions": "Vaste supervisor",
       "start_date": "2026-03-09", "end_date": "2026-07-09", "assessment_method": "KPB's"}
SKIP = re.compile(r"/(logout|language|static/|api/)|[./](pdf|zip|svg|csv)(\?|$)|/account/password")  # files
CASE = re.compile(r"^/cases/\d+$")
CASE_PAGES = 10  # per role and language: the walk leaves each procedure in a few states


def attempt(api, case, trigger, data=None, strict=True):
    """Fire if the procedure allows it (other lanes may reshape a ladder); the walk goes on either way."""
    response = api.post(f"/cases/{case['id']}/transitions",
                        json={"trigger": trigger, "expected_version": case["version"], "data": data or {}})
    assert not strict or response.status_code == 200, (trigger, response.get_json())
    return response.get_json() if response.status_code == 200 else case


def signed_doc(opleider, aios, case, kind, content):
    response = opleider.post(f"/cases/{case['id']}/documents", json={"kind": kind, "content": content})
    if response.status_code == 201:
        sign(opleider, response.get_json())
        sign(aios, response.get_json())


def walk_guidance_and_gbt(world):
    opleider, aios, coc = world.api("opleider"), world.api("aios"), world.api("coc")
    closed = to_guidance(opleider, world.api("aios2"), open_internal(opleider, world.users["aios2"]))
    attempt(opleider, attempt(opleider, closed, "record_evaluation", evaluation(True)), "close",
            {"outcome_summary": "Doelen behaald"})
    attempt(opleider, open_internal(opleider, world.users["aios2"]), "withdraw", {"reason": "Misverstand"})
    case = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    case = attempt(opleider, case, "record_evaluation", evaluation(False))
    case = attempt(opleider, case, "intensify", {
        "decision_moment": "suitability_assessment", "report": "Onvoldoende voortgang",
        "aios_informed_of_dispute_procedure": True})
    gbt = next((ok(opleider.get(f"/cases/{i}")) for i in case.get("child_ids", [])), None)
    if gbt is None:
        return
    signed_doc(opleider, aios, gbt, "adjusted_iop", IOP)
    gbt = attempt(opleider, gbt, "start")
    signed_doc(opleider, aios, gbt, "progress_report", {"meeting_date": "2026-05-09", "summary": "Op koers"})
    gbt = attempt(opleider, gbt, "record_progress_meeting")
    world.app.extensions["traject"].clock.advance(days=130)  # the assessment waits for the minimum term
    opleider, aios, coc = world.api("opleider"), world.api("aios"), world.api("coc")
    signed_doc(opleider, aios, gbt, "suitability_assessment", {
        "assessment_date": "2026-07-09", "outcome": "unsuitable", "motivation": "Beoordeeld"})
    gbt = attempt(opleider, gbt, "assess")
    gbt = attempt(opleider, gbt, "conclude", strict=False)  # refused (the outcome is not "suitable"): the page says why
    gbt = attempt(opleider, gbt, "terminate", {"end_date": "2026-09-01"})
    response = aios.post("/cases", json={"workflow": "dispute", "institution": "meander", "parent_id": gbt["id"],
                                         "data": {"grounds": "De beoordeling was onzorgvuldig"}})
    if response.status_code == 201:
        dispute = attempt(coc, response.get_json(), "acknowledge")
        attempt(coc, dispute, "refer", {"reason": "Geen overeenstemming"})


def walk_ladders(world):
    with_rso_chair(world)
    rso, coc, rvb, rcoc, regio = (world.api(n) for n in ("rso", "coc", "rvb", "rcoc", "regio"))
    chair = world.api("rso_chair")
    case = ok(world.api("aios").post("/cases", json={
        "workflow": "escalation", "institution": "meander", "title": "Supervisie in de avonddienst",
        "data": {"description": "Geen bereikbare supervisor", "source": "shop_floor"}}), 201)
    case = attempt(rso, case, "discuss", {"with_coc_board": True})
    case = attempt(rso, case, "agree_actions", {"actions": [
        {"description": "Rooster aanpassen", "owner_role": "coc_chair", "due_date": "2026-04-01"},
        {"description": "Bereikbaarheid evalueren", "owner_role": "rso_board", "due_date": "2026-05-01"}]})
    case = attempt(rso, case, "complete_action", {"action": case["data"]["actions"][0]["id"]})
    case = attempt(rso, case, "monitor", {"review_date": "2026-06-01"})
    for who in (rso, chair, coc, rvb):
        case = attempt(who, case, "escalate", {"reason": "Blijvende zorg"})
    attempt(rcoc, case, "escalate", {"reason": "Verschil van inzicht", "fundamental_disagreement": True})
    for requirement, trigger in (("quality", "escalate_quality"), ("obligations", "escalate_obligations")):
        consult = ok(rso.post("/cases", json={
            "workflow": "rso_consultation", "institution": "meander", "title": "Onvoldoende supervisie",
            "data": {"shortcoming": "Supervisie voldoet niet", "requirement": requirement}}), 201)
        consult = attempt(rso, consult, trigger, {"reason": "Niet nagekomen", "justification": "Direct gevaar"})
        for child_id in consult.get("child_ids", []):
            ladder = ok(coc.get(f"/cases/{child_id}"))
            for who, extra in ((coc, {}), (rso, {"other_parties_decision": "Partijen 12 mei 2026"}), (rvb, {}),
                               (rcoc, {}), (regio, {"rgs_decision": "Regio-Bestuur 1 juli 2026"})):
                ladder = attempt(who, ladder, "escalate", {"reason": "Geen verbetering", **extra}, strict=False)
    ok(rso.post("/cases", json={"workflow": "rso_consultation", "institution": "meander", "title": "Lopend overleg",
                                "data": {"shortcoming": "Roosters", "requirement": "quality"}}), 201)


@pytest.fixture
def walked(world, runner, clock):
    walk_guidance_and_gbt(world)
    walk_ladders(world)
    with world.app.app_context():
        from engine.models import Case
        from web.extensions import db

        walked_to = {(c.workflow_key, c.state) for c in db.session.query(Case)}
    assert {k for k, _ in walked_to} == {d.key for d in world.app.extensions["traject.definitions"]}
    later = clock.now() + timedelta(days=400)
    assert runner.invoke(["sweep", "--now", later.isoformat()]).exit_code == 0
    return world


def _catalogue():
    with PO.open("rb") as f:
        catalog = read_po(f, locale="nl")
    pairs = [(m.id, m.string) for m in catalog if m.id and isinstance(m.id, str) and m.string and m.id != m.string]
    return pairs


def _fragments(text: str) -> list[str]:
    """The long static parts of a message (its placeholders cut out): a page that shows one is untranslated."""
    return [p.strip() for p in re.split(r"%\(\w+\)[sd]|%[sd]|\{\w*\}", text) if len(p.strip()) >= 18 and " " in p]


def _definition_words(app) -> list[str]:
    """Dutch labels of the definitions that differ from their English ones: an English page never shows them."""
    out = set()
    for d in app.extensions["traject.definitions"]:
        specs = [*d.states]
        for step in [d.open, *d.transitions]:
            specs += [{"label": step.label, "label_en": step.label_en}, *step.input.values(), *step.deadlines]
        for doc in d.documents.values():
            specs += [{"label": doc["title"], "label_en": doc.get("title_en")}, *doc["fields"].values()]
        out |= {s["label"] for s in specs if s.get("label") and s.get("label_en") and s["label"] != s["label_en"]
                and " " in s["label"] and len(s["label"]) >= 12}
    return sorted(out)


def _codes(app) -> list[str]:
    """The one-word codes of the definitions (states, triggers, fields, choices, documents): a Dutch page never
    shows one as it is spelled in the YAML ("moet suitable zijn"); the words Dutch shares with them excepted."""
    out = set()
    for d in app.extensions["traject.definitions"]:
        out |= set(d.state_names) | set(d.triggers) | set(d.documents)
        for step in [d.open, *d.transitions]:
            out |= set(step.input) | {c for spec in step.input.values() for c in spec.get("choices") or []}
        out |= {c for doc in d.documents.values() for spec in doc["fields"].values() for c in spec.get("choices") or []}
    return sorted(w for w in out if "_" not in w and w not in DUTCH_TOO)


DUTCH_TOO = {"aios", "monitoring", "action"}  # "action" only inside "actions" forms' posted names


def visible(page: str) -> str:
    # <code class="ident">: an identifier an administrator types on the command line (a workflow's key)
    page = re.sub(r'(?is)<code class="ident">.*?</code>', " ", page)
    page = re.sub(r"(?is)<(script|style|title)\b.*?</\1>", " ", page)
    page = re.sub(r"(?s)<[^>]+>", " ", page)
    page = html_lib.unescape(page)
    page = re.sub(r"[\w.+-]+@[\w-]+(\.[\w-]+)+", " ", page)  # e-mail addresses
    page = re.sub(r"https?://\S+", " ", page)
    return re.sub(r"\s+", " ", page)


CODE = re.compile(r"(?<![\w.#/-])[a-z][a-z0-9]*_[a-z0-9_]+(?![\w-])")
ROLE_KEYS = re.compile(r"(?<![\w-])(rvb|hr|r_coc_chair|coc_chair|rso_board|regio_bestuur)(?![\w-])")


def problems_on(path: str, text: str, lang: str, forbidden: list[str]) -> list[str]:
    found = [f"{path} [{lang}]: code {m!r}" for m in sorted(set(CODE.findall(text)) | set(ROLE_KEYS.findall(text)))]
    found += [f"{path} [{lang}]: untranslated {getattr(w, 'pattern', w)!r}" for w in forbidden
              if (w.search(text) if isinstance(w, re.Pattern) else w in text)]
    return found


def refused_forms(client, path: str, page: str, lang: str, forbidden: list[str]) -> list[str]:
    """Every step's form on a case page sent back incomplete (one row of a list half filled in), and once stale:
    the refusals name fields, values and states in words."""
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    version = re.search(r'name="expected_version" value="(\d+)"', page)
    if not token or not version:
        return []
    found = []
    for n, trigger in enumerate(re.findall(r'name="trigger" value="([^"]+)"', page)):
        for sent_version in (version.group(1), "0") if n == 0 else (version.group(1),):
            response = client.post(f"{path}/fire", data={
                "csrf_token": token.group(1), "trigger": trigger, "expected_version": sent_version,
                "data.actions.0.description": "Rooster aanpassen"})
            if response.status_code in (409, 422):
                found += problems_on(f"{path} {trigger} ({response.status_code})",
                                     visible(response.get_data(as_text=True)), lang, forbidden)
    return found


def crawl(client, lang: str, forbidden: list[str], limit: int = 80, refuse: bool = False,
          case_pages: int = CASE_PAGES) -> tuple[list[str], int]:
    """The role's pages from its start page; case pages up to `case_pages` (each workflow's once first)."""
    with client.session_transaction() as session:
        session["lang"] = lang
    seen, queue, found, cases = set(), ["/"], [], 0
    while queue and len(seen) < limit:
        path = queue.pop(0)
        if path in seen or (CASE.match(path) and cases >= case_pages):
            continue
        seen.add(path)
        cases += bool(CASE.match(path))
        response = client.get(path)
        if response.status_code in (301, 302, 303):
            queue.append(response.headers["Location"].replace("http://localhost", ""))
            continue
        if response.mimetype != "text/html":
            continue
        page = response.get_data(as_text=True)
        found += problems_on(path, visible(page), lang, forbidden)
        if refuse and CASE.match(path):
            found += refused_forms(client, path, page, lang, forbidden)
        for href in re.findall(r'href="(/[^"#]*)', page):
            href = html_lib.unescape(href)
            if not SKIP.search(href) and href not in seen:
                queue.append(href)
    return found, len(seen)


@pytest.mark.one_database  # what is rendered does not depend on the database; SQLite's run covers it
def test_no_page_of_any_role_shows_a_code_in_either_language(walked):
    english = [f for msgid, _nl in _catalogue() for f in _fragments(msgid)]
    english += [re.compile(rf"(?<![\w-]){w}(?![\w-])") for w in _codes(walked.app)]
    dutch = sorted({f for _id, nl in _catalogue() for f in _fragments(nl)} | set(_definition_words(walked.app)))
    found, pages = [], 0
    for name, _role, _inst in ROLES:
        client = browser(walked, name)
        for lang, forbidden in (("nl", english), ("en", dutch)):
            problems, count = crawl(client, lang, forbidden, refuse=name in ("opleider", "rso", "rcoc"))
            found += problems
            pages += count
    assert pages > 100
    assert not found, "\n".join(found[:60])


def test_the_checker_finds_a_code_a_role_key_and_an_untranslated_string():
    text = visible("<p>Beslismoment suitability_assessment</p><p>Owner role: coc_chair, rvb</p>"
                   "<p>Mail aios_1@test.nl at https://x.nl/a_b, zaak #12</p><p>Deadline overdue</p>")
    found = problems_on("/x", text, "nl", ["Deadline overdue"])
    assert found == ["/x [nl]: code 'coc_chair'", "/x [nl]: code 'rvb'", "/x [nl]: code 'suitability_assessment'",
                     "/x [nl]: untranslated 'Deadline overdue'"]


# -- errors are pages in the reader's language ------------------------------------------------------------


@pytest.mark.parametrize("lang, heading", [("nl", "Niet gevonden"), ("en", "Not found")])
def test_an_unknown_address_is_a_page_in_the_readers_language_and_the_api_keeps_json(world, lang, heading):
    client = browser(world, "opleider")
    with client.session_transaction() as session:
        session["lang"] = lang
    for path in ("/no/such/page", "/cases/999999", "/cases/abc"):
        response = client.get(path)
        assert response.status_code == 404 and response.mimetype == "text/html", path
        assert heading in response.get_data(as_text=True)
    anonymous = world.app.test_client().get("/nergens")
    assert anonymous.status_code == 404 and "Niet gevonden" in anonymous.get_data(as_text=True)
    api = world.app.test_client().get("/api/v1/nothing-here")
    assert api.status_code == 404 and api.get_json()["error"]["code"] == "not_found"


def test_a_stale_tab_gets_a_409_page_that_says_what_happened_and_links_back_to_the_case(world):
    opleider = world.api("opleider")
    case = open_internal(opleider, world.users["aios"])
    client = browser(world, "opleider")
    page = client.get(f"/cases/{case['id']}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    ok(opleider.post(f"/cases/{case['id']}/transitions", json={"trigger": "analyse", "expected_version": 1}))
    stale = client.post(f"/cases/{case['id']}/fire", data={"csrf_token": token, "trigger": "analyse",
                                                          "expected_version": "1"})
    text = visible(stale.get_data(as_text=True))
    assert stale.status_code == 409 and stale.mimetype == "text/html"
    assert "Iemand anders heeft deze zaak intussen gewijzigd" in text or "Dit kan (niet meer)" in text
    assert f'href="/cases/{case["id"]}"' in stale.get_data(as_text=True)


# -- finding cases ----------------------------------------------------------------------------------------


def test_the_api_finds_cases_by_title_aios_name_and_number_within_scope_only(world):
    opleider, gelre = world.api("opleider"), world.api("opleider_gelre")
    mine = open_internal(opleider, world.users["aios"])
    theirs = open_internal(gelre, world.users["aios_gelre"], institution="gelre")

    def found(api, text):
        return [c["id"] for c in ok(api.get("/cases", query_string={"q": text}))["items"]]

    assert found(opleider, "aios") == [mine["id"]]  # the aios' name ("Aios"), case-insensitive
    assert found(opleider, "BEGELEID") == [mine["id"]]  # the title
    assert found(opleider, f"#{mine['id']}") == [mine["id"]] == found(opleider, str(mine["id"]))
    assert found(opleider, "Aios_gelre") == [] and found(opleider, str(theirs["id"])) == []  # out of scope
    assert found(gelre, "Aios_gelre") == [theirs["id"]]
    assert found(opleider, "100%") == [] and found(opleider, "_") == []  # wildcards are plain characters


def test_the_case_list_searches_filters_sorts_and_counts(world):
    opleider = world.api("opleider")
    first = open_internal(opleider, world.users["aios"])
    second = fire(opleider, open_internal(opleider, world.users["aios2"]), "analyse")
    client = browser(world, "opleider")

    def listed(**args):
        page = client.get("/cases", query_string=args)
        assert page.status_code == 200
        return [int(n) for n in re.findall(r'<a href="/cases/(\d+)">', page.get_data(as_text=True))], \
            visible(page.get_data(as_text=True))

    ids, text = listed(q="aios2")
    assert ids == [second["id"]] and "Zaken 1–1 van 1" in text
    assert listed(workflow="internal_guidance", state="analysis")[0] == [second["id"]]
    assert listed(sort="number")[0] == [first["id"], second["id"]]
    assert listed(sort="-number")[0] == [second["id"], first["id"]]
    assert listed(institution=world.institutions["gelre"])[0] == []
    assert listed(mine="1")[0] == [second["id"], first["id"]]  # both wait for their opleider
    assert listed(overdue="1")[0] == []
    assert "aria-sort=\"descending\"" in client.get("/cases").get_data(as_text=True)


# -- words from the definitions -----------------------------------------------------------------------------


def test_a_definition_with_a_code_without_words_does_not_load(tmp_path):
    from engine.errors import DefinitionError
    from workflows import DEFINITIONS_DIR, load_definitions

    source = (DEFINITIONS_DIR / "dispute.yaml").read_text(encoding="utf-8")
    broken = source.replace("    label_en: Acknowledge and start mediation\n", "", 1)
    assert broken != source
    (tmp_path / "dispute.yaml").write_text(broken, encoding="utf-8")
    with pytest.raises(DefinitionError) as refused:
        load_definitions(directory=tmp_path)
    assert "transitions.acknowledge: no label_en" in str(refused.value)
    unknown_choice = source.replace("    grounds:", "    kind_of_dispute: {type: choice, choices: [brand_new],"
                                               " label: Soort, label_en: Kind}\n    grounds:", 1)
    (tmp_path / "dispute.yaml").write_text(unknown_choice, encoding="utf-8")
    with pytest.raises(DefinitionError) as refused:
        load_definitions(directory=tmp_path)
    assert "choice 'brand_new' has no words in the vocabulary" in str(refused.value)


def test_unmet_conditions_name_fields_values_and_terms_in_words(world):
    rso = world.api("rso")
    case = ok(world.api("aios").post("/cases", json={
        "workflow": "escalation", "institution": "meander", "title": "Supervisie",
        "data": {"description": "Geen supervisor"}}), 201)
    case = fire(rso, case, "discuss")
    body = fire(rso, case, "agree_actions", {"actions": [{"description": "Rooster aanpassen"}]}, status=422)
    messages = {u["message_nl"] for u in body["error"]["details"]["unmet"]}
    assert "Acties 1: Eigenaar is verplicht" in messages and "Acties 1: Uiterlijk is verplicht" in messages
    case = fire(rso, case, "agree_actions", {"actions": [
        {"description": "Rooster", "owner_role": "coc_chair", "due_date": "2026-04-01"}]})
    body = fire(rso, case, "complete_action", {"action": "a5"}, status=422)  # actions are named by their id
    assert [u["message_nl"] for u in body["error"]["details"]["unmet"]] == ["er is geen openstaande Actie"]
    assert [u["message"] for u in body["error"]["details"]["unmet"]] == ["there is no open Action"]
    consult = ok(rso.post("/cases", json={"workflow": "rso_consultation", "institution": "meander", "title": "O",
                                          "data": {"shortcoming": "Roosters", "requirement": "quality"}}), 201)
    body = fire(rso, consult, "escalate_obligations", {"reason": "x"}, status=422)
    assert body["error"]["details"]["unmet"][0]["message_nl"] == "Betreft moet Verplichtingen (art. 2.7) zijn"


def test_get_workflow_describes_opening_and_every_steps_input(world):
    body = ok(world.api("opleider").get("/workflows/intensified_guidance"))
    moment = body["open"]["input"]["decision_moment"]
    assert body["open"]["roles"] == ["opleider"]
    assert moment["type"] == "choice" and moment["required"] is True and moment["label"] == "Beslismoment"
    assert moment["label_en"] == "Decision moment" and "suitability_assessment" in moment["choices"]
    assert moment["choice_labels"]["suitability_assessment"] == {"label": "Geschiktheidsbeoordeling",
                                                                 "label_en": "Suitability assessment"}
    terminate = next(t for t in body["transitions"] if t["trigger"] == "terminate")
    assert terminate["input"]["end_date"]["type"] == "date" and terminate["label_en"]
    actions = next(t for t in ok(world.api("rso").get("/workflows/escalation"))["transitions"]
                   if t["trigger"] == "agree_actions")["input"]["actions"]
    owner = actions["items"]["fields"]["owner_role"]
    assert owner["choice_labels"]["coc_chair"] == {"label": "voorzitter COC", "label_en": "COC chair"}


def test_field_errors_come_all_at_once_with_dutch_field_names_and_dates(world):
    opleider = world.api("opleider")
    gbt = ok(opleider.post("/cases", json={"workflow": "intensified_guidance", "institution": "meander",
                                           "subject_id": world.users["aios"], "title": "GBT", "data": {
                                               "decision_moment": "progress_meeting", "reasons": "Onvoldoende",
                                               "aios_informed_of_dispute_procedure": True}}), 201)
    client = browser(world, "opleider")
    page = client.get(f"/cases/{gbt['id']}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    refused = client.post(f"/cases/{gbt['id']}/documents", data={
        "csrf_token": token, "kind": "adjusted_iop", "content.start_date": "09-03-2026",
        "content.end_date": "09-04-2026", "content.goals": "Zelfstandig werken"})
    text = visible(refused.get_data(as_text=True))
    assert refused.status_code == 422
    assert "tussen 8 juni 2026 en 8 september 2026" in text  # the end date is the last day (CONTRACT.md §4)
    assert text.count("Dit veld is verplicht") >= 2  # conditions and assessment method, at once
