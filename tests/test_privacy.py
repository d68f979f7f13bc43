"""Privacy: retention with legal holds, redaction that keeps `audit verify` passing, who read a file,
the access-log export, the subject access export, the daily audit check, the overview's small cells.

Every test runs on SQLite and on PostgreSQL (where the guard triggers must admit the redaction).
"""
from __future__ import annotations

import csv
import io
import json
import logging
import re

import pytest
from sqlalchemy import func, select, text

from engine import audit, privacy
from engine.models import (
    AccessLog,
    AuditEvent,
    Case,
    CaseRetention,
    Document,
    LegalHold,
    Notification,
    User,
)
from flows import PLAN, evaluation, fire, ok, open_internal, sign, to_guidance, to_plan
from web.extensions import db
from web.jobs.daily import pseudonym_key

COMMENT = "Ik zie het anders, maar doe mee."
TWO_YEARS_AND_A_DAY = "2028-03-03T12:00:00Z"  # the fixed clock closes cases on 2 March 2026, 09:00 UTC
SEVEN_YEARS = "2033-03-03T12:00:00Z"


def closed_case(world):
    """An internal trajectory walked to `closed`: a plan signed "seen, not agreed" with a comment."""
    opleider, aios = world.api("opleider"), world.api("aios")
    case, doc = to_plan(opleider, aios, open_internal(opleider, world.users["aios"]))
    sign(opleider, doc)
    sign(aios, doc, "seen_not_agreed", COMMENT)
    case = fire(opleider, case, "start_guidance", {"iop_updated": True})
    case = fire(opleider, case, "record_evaluation", evaluation(True))
    case = fire(opleider, case, "close", {"outcome_summary": "Leerdoelen behaald"})
    assert case["state"] == "closed"
    return case, doc


def retention(runner, now, *extra):
    result = runner.invoke(["privacy", "retention", "--now", now, *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def verify_ok(runner):
    result = runner.invoke(["audit", "verify"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def dump(app, case_id) -> str:
    """Everything stored about one case, as text (to search for what must be gone)."""
    with app.app_context():
        s = db.session
        case = s.get(Case, case_id)
        parts = [case.title, json.dumps(case.data, ensure_ascii=False)]
        parts += [json.dumps(e.data, ensure_ascii=False) for e in s.scalars(select(AuditEvent)
                                                                          .where(AuditEvent.case_id == case_id))]
        for doc in s.scalars(select(Document).where(Document.case_id == case_id)):
            parts.append(json.dumps(doc.content, ensure_ascii=False))
            parts += [sig.comment for sig in doc.signatures]
        parts += [f"{n.subject} {n.body_text}" for n in s.scalars(select(Notification)
                                                                  .where(Notification.case_id == case_id))]
        return "\n".join(parts)


# -- retention ----------------------------------------------------------------------------------------


def test_a_closed_trajectory_is_pseudonymised_then_erased_and_the_chain_still_verifies(app, world, runner):
    case, doc = closed_case(world)
    cid, aios_id, opleider_id = case["id"], world.users["aios"], world.users["opleider"]
    ok(world.api("opleider").get(f"/cases/{cid}"))
    ok(world.api("aios").get(f"/cases/{cid}"))
    before = dump(app, cid)
    assert COMMENT in before and PLAN["approach"] in before and "Leerdoelen behaald" in before

    assert retention(runner, "2028-03-01T00:00:00Z")["pseudonymised"] == []  # not yet two years
    summary = retention(runner, TWO_YEARS_AND_A_DAY)
    assert summary["pseudonymised"] == [cid] and summary["erased"] == []
    assert verify_ok(runner)["cases"] == 1

    after = dump(app, cid)
    for gone in (COMMENT, PLAN["approach"], PLAN["learning_goals"][0], "Leerdoelen behaald", "Begeleiding",
                 "Achterblijvende zelfstandigheid"):
        assert gone not in after
    with app.app_context():
        s = db.session
        stored = s.get(Case, cid)
        assert (stored.subject_id, stored.title, stored.data, stored.state) == (None, "", {}, "closed")
        d = s.get(Document, doc["id"])
        assert d.content == {"redacted": True} and d.sha256 == doc["sha256"]  # content gone, hash kept
        assert d.required_signer_ids == [opleider_id, None]
        sigs = {s_.verdict: s_ for s_ in d.signatures}
        assert sigs["seen_not_agreed"].signer_id is None and sigs["seen_not_agreed"].comment == ""
        assert sigs["agreed"].signer_id == opleider_id  # the opleider acted in a role: kept
        assert {x.document_sha256 for x in d.signatures} == {doc["sha256"]}
        events = s.scalars(select(AuditEvent).where(AuditEvent.case_id == cid).order_by(AuditEvent.seq)).all()
        assert aios_id not in {e.actor_id for e in events}
        last = events[-1]
        assert last.type == "pseudonymised" and last.actor_id is None
        assert {r[0] for r in last.data["redactions"]} == {e.seq for e in events[:-1]}
        signed = next(e for e in events if e.type == "document_signed" and e.data.get("verdict") == "seen_not_agreed")
        assert signed.data["sha256"] == doc["sha256"] and signed.data["redacted"] is True
        assert "comment" not in signed.data and len(signed.data["data_sha256"]) == 64
        kept = s.get(CaseRetention, cid)
        assert kept.action == "pseudonymised" and kept.event_seq == last.seq
        assert kept.subject_pseudonym == privacy.pseudonym(pseudonym_key(app), aios_id)
        readers = set(s.scalars(select(AccessLog.user_id).where(AccessLog.case_id == cid)))
        assert readers == {opleider_id}  # the aios's own reads went; the staff's reads stay
        assert s.scalar(select(func.count()).select_from(Notification)
                        .where(Notification.case_id == cid, Notification.recipient_user_id == aios_id)) == 0
    assert world.api("aios").get(f"/cases/{cid}").status_code == 404  # no longer theirs
    assert retention(runner, TWO_YEARS_AND_A_DAY)["pseudonymised"] == []  # done once

    summary = retention(runner, SEVEN_YEARS)
    assert summary["erased"] == [cid]
    assert verify_ok(runner)["events"] == len(events) + 1
    with app.app_context():
        s = db.session
        assert s.get(CaseRetention, cid).action == "erased" and s.get(CaseRetention, cid).subject_pseudonym is None
        assert s.scalar(select(func.count()).select_from(Notification).where(Notification.case_id == cid)) == 0
        assert s.scalar(select(func.count()).select_from(AccessLog).where(AccessLog.case_id == cid)) == 0
        assert s.scalar(select(AuditEvent.type).where(AuditEvent.case_id == cid)
                        .order_by(AuditEvent.seq.desc()).limit(1)) == "erased"


def test_a_legal_hold_and_an_open_linked_case_keep_a_case(app, world, runner):
    opleider, aios, admin = world.api("opleider"), world.api("aios"), world.api("admin")
    # An internal trajectory stepped up to a GBT: closed itself, but its GBT (a linked case) is open.
    stepped = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    stepped = fire(opleider, stepped, "record_evaluation", evaluation(False))
    stepped = fire(opleider, stepped, "intensify", {
        "report": "Onvoldoende voortgang", "decision_moment": "progress_meeting",
        "aios_informed_of_dispute_procedure": True, "decision_date": "2026-03-02", "reasons": "Geen verbetering"})
    [gbt_id] = stepped["child_ids"]
    held, _ = closed_case(world)

    assert opleider.post(f"/cases/{held['id']}/legal-holds", json={"reason": "x"}).status_code == 403
    assert admin.post(f"/cases/{held['id']}/legal-holds", json={"reason": ""}).status_code == 422
    hold = ok(admin.post(f"/cases/{held['id']}/legal-holds",
                         json={"reason": "Klacht bij de Geschillencommissie loopt"}), 201)
    assert hold["active"] and hold["placed_by"] == world.users["admin"]
    assert [h["id"] for h in ok(admin.get(f"/cases/{held['id']}/legal-holds"))] == [hold["id"]]
    assert opleider.get(f"/cases/{held['id']}/legal-holds").status_code == 403
    assert admin.get("/cases/999999/legal-holds").status_code == 404

    summary = retention(runner, SEVEN_YEARS)
    assert summary["pseudonymised"] == summary["erased"] == []
    assert summary["held"][str(stepped["id"])] == [f"linked case {gbt_id} (intensified_guidance) is still open"]
    assert summary["held"][str(held["id"])] == [
        f"legal hold {hold['id']} on this case: Klacht bij de Geschillencommissie loopt"]

    # Lifted from the command line, by an administrator, with a reason: then it goes.
    result = runner.invoke(["privacy", "lift", str(hold["id"]), "--reason", "Uitspraak gedaan",
                            "--by", "opleider@test.nl"])
    assert result.exit_code != 0 and "not an administrator" in result.output
    result = runner.invoke(["privacy", "lift", str(hold["id"]), "--reason", "Uitspraak gedaan",
                            "--by", "admin@test.nl"])
    assert result.exit_code == 0, result.output
    assert admin.post(f"/legal-holds/{hold['id']}/lift", json={"reason": "nogmaals"}).status_code == 422
    assert runner.invoke(["privacy", "holds"]).stdout == ""
    assert json.loads(runner.invoke(["privacy", "holds", "--all"]).stdout)["lift_reason"] == "Uitspraak gedaan"
    assert retention(runner, SEVEN_YEARS, "--dry-run")["erased"] == [held["id"]]
    assert retention(runner, SEVEN_YEARS)["erased"] == [held["id"]]
    with app.app_context():
        types = db.session.scalars(select(AuditEvent.type).where(AuditEvent.case_id == held["id"])
                                   .order_by(AuditEvent.seq)).all()
        assert types[-3:] == ["legal_hold_placed", "legal_hold_lifted", "erased"]
        assert db.session.get(LegalHold, hold["id"]).lifted_by_id == world.users["admin"]

    # A hold placed from the command line on the GBT keeps the whole family once the GBT is closed too.
    result = runner.invoke(["privacy", "hold", "--case", str(gbt_id), "--reason", "Rechtszaak",
                            "--by", "admin@test.nl"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        db.session.execute(text(f"UPDATE case_file SET closed_at = opened_at WHERE id = {gbt_id}"))
        db.session.commit()
    summary = retention(runner, SEVEN_YEARS)
    assert summary["erased"] == []
    assert summary["held"][str(stepped["id"])][0].startswith(f"legal hold {json.loads(result.stdout)['id']} on "
                                                              f"linked case {gbt_id}")
    verify_ok(runner)


def test_retention_never_launders_a_broken_chain(app, world, runner):
    from test_audit import tamper

    case, _ = closed_case(world)
    tamper(app, f"UPDATE audit_event SET data = '{{\"input\": {{}}}}' WHERE case_id = {case['id']} AND seq = 3")
    result = runner.invoke(["privacy", "retention", "--now", TWO_YEARS_AND_A_DAY])
    assert result.exit_code == 1
    assert "audit chain is broken" in json.loads(result.stdout)["failed"][str(case["id"])]
    with app.app_context():
        assert db.session.get(CaseRetention, case["id"]) is None
        assert audit.verify(db.session)[2].seq == 3  # still there for an admin to see


def test_the_dossier_of_an_erased_case_still_verifies(app, world, runner, tmp_path):
    import subprocess
    import sys
    import zipfile

    case, _ = closed_case(world)
    retention(runner, SEVEN_YEARS)
    response = world.api("admin").get(f"/cases/{case['id']}/dossier.zip")
    assert response.status_code == 200
    zipfile.ZipFile(io.BytesIO(response.data)).extractall(tmp_path)
    root = tmp_path / f"dossier-{case['id']}"
    check = subprocess.run([sys.executable, "verify.py"], cwd=root, capture_output=True, text=True)
    assert check.returncode == 0 and "OK: dossier intact" in check.stdout, check.stdout
    assert COMMENT not in "".join(p.read_text(errors="ignore") for p in root.rglob("*.json"))


def test_retention_is_configured_per_workflow_and_checked_at_start():
    assert privacy.load_policies({"retention": {"internal_guidance": {"pseudonymise": {"years": 2}}}},
                                 {"internal_guidance"})["internal_guidance"].describe() == {
        "workflow": "internal_guidance", "pseudonymise": {"years": 2}}
    for wrong in ({"nope": {"erase": {"years": 1}}}, {"dispute": {"delete": {"years": 1}}},
                  {"dispute": {"erase": {"weeks": 1}}}, {"dispute": {"erase": {"years": -1}}},
                  {"dispute": {"pseudonymise": {"years": 5}, "erase": {"years": 2}}}, {"dispute": "2y"}):
        with pytest.raises(ValueError):
            privacy.load_policies({"retention": wrong}, {"dispute"})
    from workflows import load_region

    shipped = privacy.load_policies(load_region(), None)
    assert {k: p.describe() for k, p in shipped.items()}["internal_guidance"] == {
        "workflow": "internal_guidance", "pseudonymise": {"years": 2}, "erase": {"years": 5}}


# -- the guards admit the redaction and nothing else; verify sees through forgeries ------------------------


def _in_one_transaction(app, *statements, redaction=True):
    with app.app_context():
        with db.engine.begin() as conn:
            if redaction and conn.dialect.name == "postgresql":
                conn.execute(text("SELECT set_config('traject.redaction', 'on', true)"))
            for statement in statements:
                conn.execute(text(statement))


def test_the_database_admits_only_the_declared_redaction(app, world):
    case, doc = closed_case(world)
    cid, did = case["id"], doc["id"]
    with app.app_context():
        pg = db.engine.dialect.name == "postgresql"
    refused = [
        f"UPDATE document SET content = '{{\"approach\": \"anders\"}}' WHERE id = {did}",
        f"UPDATE document SET sha256 = 'x', content = '{{\"redacted\": true}}' WHERE id = {did}",
        "UPDATE signature SET verdict = 'agreed', comment = ''",
        "UPDATE signature SET comment = 'iets anders'",
    ]
    if pg:
        refused += [
            f"UPDATE audit_event SET hash = 'x', data = '{{\"redacted\": true}}' WHERE case_id = {cid} AND seq = 2",
            f"UPDATE audit_event SET data = '{{\"input\": {{}}}}' WHERE case_id = {cid} AND seq = 2",
            f"UPDATE audit_event SET actor_id = {world.users['coc']}, data = '{{\"redacted\": true}}' "
            f"WHERE case_id = {cid} AND seq = 2",
            f"DELETE FROM audit_event WHERE case_id = {cid}",
        ]
    for statement in refused:
        with pytest.raises(Exception, match="immutable|append-only"):
            _in_one_transaction(app, statement)
    if pg:  # not declared: not even the redaction
        for statement in (f"UPDATE document SET content = '{{\"redacted\": true}}' WHERE id = {did}",
                          "UPDATE signature SET comment = ''",
                          f"UPDATE audit_event SET data = '{{\"redacted\": true}}' WHERE case_id = {cid} AND seq = 2"):
            with pytest.raises(Exception, match="immutable|append-only"):
                _in_one_transaction(app, statement, redaction=False)
    # Declared, the redaction itself passes the guards ... but without an erasure event committing to it,
    # `audit verify` reports the changed event.
    _in_one_transaction(app, f"UPDATE document SET content = '{{\"redacted\": true}}' WHERE id = {did}",
                        "UPDATE signature SET comment = ''")
    if pg:
        _in_one_transaction(app, f"UPDATE audit_event SET data = '{{\"redacted\": true}}', actor_id = NULL "
                                 f"WHERE case_id = {cid} AND seq = 2")
        with app.app_context():
            problem = audit.verify(db.session)[2]
        assert (problem.case_id, problem.seq) == (cid, 2) and "changed" in problem.problem


def _tamper(app, *statements):
    from test_audit import tamper

    tamper(app, *statements)


def test_a_forged_or_altered_redaction_breaks_the_chain(app, world, runner):
    case, _ = closed_case(world)
    cid = case["id"]
    retention(runner, TWO_YEARS_AND_A_DAY)
    verify_ok(runner)
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.case_id == cid)
                                    .order_by(AuditEvent.seq)).all()
        erasure = events[-1].seq
    # 1. a redacted event edited afterwards
    _tamper(app, f"UPDATE audit_event SET data = '{{\"redacted\": true, \"verdict\": \"agreed\"}}' "
                 f"WHERE case_id = {cid} AND seq = 3")
    assert runner.invoke(["audit", "verify"]).exit_code == 1
    with app.app_context():
        assert audit.verify(db.session)[2].seq == 3
    # 2. the erasure event's commitments edited to cover that: now the erasure event itself breaks
    with app.app_context():
        ev = db.session.get(AuditEvent, (cid, 3))
        forged = audit.content_hash(ev)
        data = db.session.get(AuditEvent, (cid, erasure)).data
    data["redactions"] = [[s, h, forged if s == 3 else r] for s, h, r in data["redactions"]]
    _tamper(app, f"UPDATE audit_event SET data = '{json.dumps(data)}' WHERE case_id = {cid} AND seq = {erasure}")
    with app.app_context():
        problem = audit.verify(db.session)[2]
    assert (problem.case_id, problem.seq) == (cid, erasure) and "changed" in problem.problem


# -- who read my file ---------------------------------------------------------------------------------


def test_the_aios_sees_who_read_their_file_and_others_do_not(app, world):
    opleider, aios, coc, admin = (world.api(n) for n in ("opleider", "aios", "coc", "admin"))
    case = open_internal(opleider, world.users["aios"])
    ok(coc.get(f"/cases/{case['id']}"))
    ok(opleider.get(f"/cases/{case['id']}/events"))
    entries = ok(aios.get(f"/cases/{case['id']}/access-log"))
    assert [(e["name"], e["action"]) for e in entries] == [("Opleider", "events"), ("Coc", "read")]
    assert entries[0]["roles"] == ["opener", "opleider", "responsible"] and entries[1]["roles"] == ["coc_chair"]
    assert {"at", "user_id", "detail", "id"} <= set(entries[0])
    assert coc.get(f"/cases/{case['id']}/access-log").status_code == 403  # in scope, but not theirs
    assert world.api("aios2").get(f"/cases/{case['id']}/access-log").status_code == 404
    assert world.api("aios_gelre").get(f"/cases/{case['id']}/access-log").status_code == 404
    by_admin = ok(admin.get(f"/cases/{case['id']}/access-log"))
    assert [e["action"] for e in by_admin][:2] == ["access_log", "events"]  # the aios's look is logged too
    assert ok(admin.get(f"/cases/{case['id']}/access-log"))[0]["name"] == "Admin"


def test_the_case_page_shows_the_aios_who_read_their_file(app, world):
    from flows import browser
    from test_web import page

    opleider = world.api("opleider")
    case = open_internal(opleider, world.users["aios"])
    ok(world.api("coc").get(f"/cases/{case['id']}"))
    html = page(browser(world, "aios").get(f"/cases/{case['id']}"))
    assert "Wie uw zaak inzag" in html and "Coc" in html and "Voorzitter COC" in html
    assert "opende de zaak" in html
    assert "Wie uw zaak inzag" not in page(browser(world, "opleider").get(f"/cases/{case['id']}"))


def test_the_admin_exports_the_access_log(app, world, runner, tmp_path):
    opleider, admin = world.api("opleider"), world.api("admin")
    with app.app_context():
        db.session.get(User, world.users["coc"]).name = "=HYPERLINK(\"http://x\")"
        db.session.commit()
    case = open_internal(opleider, world.users["aios"])
    ok(world.api("coc").get(f"/cases/{case['id']}"))
    ok(opleider.get(f"/cases/{case['id']}"))
    assert opleider.get("/access-log").status_code == 403
    response = admin.get("/access-log?format=csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:3] == ["id", "at", "case_id"] and len(rows) == 3
    assert rows[1][6].startswith("'=HYPERLINK")  # no formula for a spreadsheet to run
    assert rows[1][8] == "coc_chair" and rows[2][9] == "read"
    body = ok(admin.get(f"/access-log?user_id={world.users['opleider']}"))
    assert [e["user_id"] for e in body] == [world.users["opleider"]] and body[0]["roles"][0] == "opener"
    assert ok(admin.get("/access-log?since=2030-01-01T00:00:00Z")) == []
    assert admin.get("/access-log?since=2030-01-01T00:00:00").status_code == 422  # a moment needs its zone
    out = tmp_path / "log.csv"
    result = runner.invoke(["audit", "access-log", "--out", str(out), "--case", str(case["id"])])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"out": str(out), "rows": 2}
    assert out.read_text().splitlines()[0].startswith("id,at,case_id,workflow,institution,user_id,name,email")


# -- subject access -------------------------------------------------------------------------------------


def test_privacy_export_gives_a_person_what_is_held_about_them(app, world, runner, tmp_path):
    from pypdf import PdfReader

    case, doc = closed_case(world)
    ok(world.api("coc").get(f"/cases/{case['id']}"))
    result = runner.invoke(["privacy", "export", "--user", str(world.users["aios"]), "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    paths = json.loads(result.stdout)
    export = json.loads(open(paths["json"], encoding="utf-8").read())
    assert export["account"]["email"] == "aios@test.nl" and "hash" not in json.dumps(export["account"])
    assert export["roles"] == [{"role": "aios", "institution": "Meander MC"}]
    [mine] = export["cases_about_you"]
    assert mine["id"] == case["id"] and mine["documents"][0]["content"]["approach"] == PLAN["approach"]
    assert mine["documents"][0]["signatures"][1]["comment"] == COMMENT
    assert [e["type"] for e in mine["events"]][0] == "opened" and mine["deadlines"]
    assert any(r["name"] == "Coc" and r["roles"] == ["coc_chair"] for r in mine["who_read_it"])
    assert export["your_signatures"][0]["verdict"] == "seen_not_agreed"
    assert any(n["kind"] == "signature_requested" for n in export["messages_to_you"])
    pdf_text = " ".join(" ".join(p.extract_text() for p in PdfReader(paths["pdf"]).pages).split())
    assert "Inzage in uw persoonsgegevens" in pdf_text and f"Zaak {case['id']}: Intern begeleidingstraject" in pdf_text
    assert "door Coc (voorzitter COC): opende de zaak" in pdf_text

    # The opleider's export: what *they* did, not the content about the aios.
    result = runner.invoke(["privacy", "export", "--user", str(world.users["opleider"]), "--out", str(tmp_path / "o")])
    staff = open(json.loads(result.stdout)["json"], encoding="utf-8").read()
    assert PLAN["approach"] not in staff and COMMENT not in staff
    staff = json.loads(staff)
    assert staff["cases_about_you"] == []
    assert staff["cases_you_opened_or_were_responsible_for"][0]["your_role"] == ["opener", "responsible"]
    assert {a["trigger"] for a in staff["your_actions_in_other_cases"]} >= {"analyse", "close"}
    assert staff["documents_you_wrote_in_other_cases"][0]["sha256"] == doc["sha256"]

    # After pseudonymisation the case is found only through the pseudonym.
    retention(runner, TWO_YEARS_AND_A_DAY)
    result = runner.invoke(["privacy", "export", "--user", str(world.users["aios"]), "--out", str(tmp_path / "p")])
    later = json.loads(open(json.loads(result.stdout)["json"], encoding="utf-8").read())
    assert later["cases_about_you"] == [] and later["your_signatures"] == []
    assert later["pseudonymised_cases"] == [{"case_id": case["id"], "action": "pseudonymised",
                                             "applied_at": later["pseudonymised_cases"][0]["applied_at"],
                                             "workflow": "internal_guidance"}]
    assert runner.invoke(["privacy", "export", "--user", "99999", "--out", str(tmp_path)]).exit_code != 0


# -- the daily audit check ------------------------------------------------------------------------------


def test_the_daily_check_alerts_every_admin_once_per_break(app, world, runner, caplog):
    from test_audit import tamper

    from web.jobs.daily import ALERT_KIND, check_audit
    from web.jobs.worker import Worker

    first = open_internal(world.api("opleider"), world.users["aios"])
    second = open_internal(world.api("opleider"), world.users["aios2"])
    worker = Worker(app, 5)
    alerts = select(Notification).where(Notification.kind == ALERT_KIND)
    with app.app_context():
        assert check_audit(app)["breaks"] == 0
    tamper(app, f"UPDATE audit_event SET data = '{{}}' WHERE case_id = {first['id']} AND seq = 1")
    with caplog.at_level(logging.WARNING, logger="web.worker"):
        worker.audit_check()  # the scheduler's job: app context, session, errors handled
        worker.audit_check()
    broken = [r for r in caplog.records if "AUDIT CHAIN BROKEN" in r.getMessage()]
    assert len(broken) == 1 and broken[0].levelno == logging.ERROR
    assert f"case {first['id']}, event 1" in broken[0].getMessage()
    assert sum("still broken" in r.getMessage() for r in caplog.records) == 1
    with app.app_context():
        [alert] = db.session.scalars(alerts).all()
        assert alert.recipient_user_id == world.users["admin"] and alert.case_id == first["id"]
        assert alert.status == "pending" and "zaak" in alert.subject
    # A second break is a new alert; the known one is not repeated.
    tamper(app, f"DELETE FROM audit_event WHERE case_id = {second['id']} AND seq = 1")
    result = runner.invoke(["audit", "check"])
    assert result.exit_code == 1 and json.loads(result.stdout)["alerted"] == 1
    with app.app_context():
        assert len(db.session.scalars(alerts).all()) == 2
    assert json.loads(runner.invoke(["audit", "check"]).stdout) == {
        "cases": 2, "events": 1, "breaks": 2, "alerted": 0, "known": 2}
    # ... and the outbox delivers it like any message.
    result = runner.invoke(["sweep"])
    assert result.exit_code == 0 and json.loads(result.stdout)["delivered"] >= 2


def test_the_worker_runs_retention_daily(app, world, clock):
    from web.jobs.worker import Worker

    case, _ = closed_case(world)
    clock.advance(days=365 * 2 + 2)
    Worker(app, 5).retention()
    with app.app_context():
        assert db.session.get(CaseRetention, case["id"]).action == "pseudonymised"
        assert audit.verify(db.session)[2] is None


# -- the overview: small cells from the configuration, and totals that do not give them away -------------------


def test_the_overview_page_hides_small_cells_with_the_configured_threshold(app, world):
    from flows import browser
    from test_web import page

    opleider, aios = world.api("opleider"), world.api("aios")
    for _ in range(3):
        open_internal(opleider, world.users["aios"])
    for _ in range(6):
        fire(opleider, open_internal(opleider, world.users["aios2"]), "analyse")
    to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    html = page(browser(world, "regio").get("/overview"))
    # 3 signalled, 6 in analysis, 1 in guidance at Meander: the 3 and the 1 hidden, and so is any total
    # that would give them away: 10 open is shown as the range the visible cells allow (6+1+1 … 6+4+4).
    meander = re.search(r'<th scope="row">Meander MC</th>(.*?)</tr>', html).group(1)
    assert re.findall(r'<td class="num">([^<]*)</td>', meander) == ["&lt; 5", "6", "&lt; 5", "8–14", "0"]
    assert "8–14" in html.split("class=\"as-table\"")[0]  # the chart of open cases per institution, and the total
    assert "Aantallen van 1 tot en met 4" in html
    app.config["TRAJECT_REGION"] = {**app.config["TRAJECT_REGION"], "small_cell_threshold": 3}
    html = page(browser(world, "regio").get("/overview"))
    meander = re.search(r'<th scope="row">Meander MC</th>(.*?)</tr>', html).group(1)
    assert re.findall(r'<td class="num">([^<]*)</td>', meander) == ["3", "6", "&lt; 3", "10–11", "0"]
    assert "Aantallen van 1 tot en met 2" in html and "&lt; 5" not in html
