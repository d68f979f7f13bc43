"""The audit trail as evidence: the chain vouches for the case row and the signatures, and a signed
checkpoint kept outside the database shows what an attacker with the database alone could hide —
a cut tail with the head rewound, a recomputed chain, a deleted case (docs/evidence.md).

Every tamper below is done as an attacker with full database access would (PostgreSQL's guard
trigger disabled, as in tests/test_audit.py), and each is first shown to pass the checks of the
database alone where that is the point. An untampered region must verify clean: a false alarm is
as bad as a miss.
"""
from __future__ import annotations

import json
import logging
import os
import stat

import pytest
from sqlalchemy import select, text

from engine import audit
from engine.definitions import parse, with_region
from engine.models import AuditEvent, Case, Notification
from flows import PLAN, evaluation, fire, ok, open_internal, sign, to_guidance, to_plan
from test_gbt import DECISION
from web.extensions import db
from web.jobs.daily import CHECKPOINT_KIND, CheckpointRefused, checkpoint_dir, check_audit, write_checkpoint
from workflows import DEFINITIONS_DIR, make_registry


def verify(runner, *args) -> tuple[int, dict, str]:
    result = runner.invoke(["audit", "verify", *args])
    lines = result.stdout.strip().splitlines()
    return result.exit_code, json.loads(lines[-1]), result.stdout


def verify_clean(runner, *args) -> dict:
    code, out, text_ = verify(runner, *args)
    assert code == 0 and out["ok"] is True, text_
    return out


def checkpoint(runner, *args) -> dict:
    result = runner.invoke(["audit", "checkpoint", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def db_alone(app, case_id=None):
    """What `audit verify` said before checkpoints existed: the database alone."""
    with app.app_context():
        return audit.verify(db.session, case_id)[2]


def as_attacker(app, *statements):
    """Like test_audit.tamper, also past the other guard triggers an attacker with the database would drop."""
    with app.app_context():
        with db.engine.begin() as conn:
            pg = conn.dialect.name == "postgresql"
            if pg:
                conn.execute(text("SET session_replication_role = replica"))  # no trigger fires
            for statement in statements:
                conn.execute(text(statement))
            if pg:
                conn.execute(text("SET session_replication_role = DEFAULT"))


@pytest.fixture
def walked(world):
    """Two trajectories: one in guidance (plan signed by both), one just analysed."""
    opleider, aios = world.api("opleider"), world.api("aios")
    first = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    second = fire(opleider, open_internal(opleider, world.users["aios2"]), "analyse")
    return first, second


def chain(app, case_id):
    with app.app_context():
        return db.session.scalars(select(AuditEvent).where(AuditEvent.case_id == case_id)
                                  .order_by(AuditEvent.seq)).all()


# -- (c) the case row against its events -----------------------------------------------------------------


def test_it_finds_a_case_state_edited_in_place(app, runner, walked):
    first, _ = walked
    as_attacker(app, f"UPDATE case_file SET state = 'closed' WHERE id = {first['id']}")
    code, out, text_ = verify(runner)
    last_transition = [e.seq for e in chain(app, first["id"]) if e.type == "transition"][-1]
    assert code == 1 and text_.startswith(f"BROKEN: case {first['id']}, event {last_transition}")
    assert (out["case_id"], out["seq"], out["item"]) == (first["id"], last_transition, "case")
    assert "state 'closed'" in out["problem"] and out["expected_state"] == "guidance"


def test_it_finds_a_case_version_edited_in_place(app, runner, walked):
    _, second = walked
    as_attacker(app, f"UPDATE case_file SET version = version + 1 WHERE id = {second['id']}")
    code, out, _ = verify(runner)
    assert code == 1 and (out["case_id"], out["seq"]) == (second["id"], 2)
    assert out["expected_version"] == 2 and "version" in out["problem"]


def test_it_finds_case_data_edited_in_place(app, runner, walked):
    first, second = walked
    as_attacker(app, f"""UPDATE case_file SET data = '{{"signal": "Niets aan de hand"}}' WHERE id = {first['id']}""")
    code, out, _ = verify(runner)
    assert code == 1 and out["case_id"] == first["id"] and "data" in out["problem"]
    assert out["seq"] == chain(app, first["id"])[-1].seq  # start_guidance recorded the data after it
    assert verify(runner, "--case", str(second["id"]))[0] == 0


def test_the_data_check_is_written_into_every_opening_and_transition(app, walked):
    first, _ = walked
    with app.app_context():
        case = db.session.get(Case, first["id"])
        moving = [e for e in chain(app, first["id"]) if e.type in ("opened", "transition")]
        assert moving and all(audit.CASE_DATA_KEY in e.data for e in moving)
        assert moving[-1].data[audit.CASE_DATA_KEY] == audit.case_data_hash(case.data)


# -- (d) signatures against document_signed events ------------------------------------------------------


def test_it_finds_a_deleted_signature(app, runner, walked):
    first, _ = walked
    signed = [e for e in chain(app, first["id"]) if e.type == "document_signed"]
    as_attacker(app, f"DELETE FROM signature WHERE signer_id = {signed[1].actor_id}")
    assert db_alone(app) is not None
    code, out, _ = verify(runner)
    assert code == 1 and (out["case_id"], out["seq"], out["item"]) == (first["id"], signed[1].seq, "signature")
    assert "no signature row" in out["problem"]


def test_it_finds_an_inserted_signature(app, runner, world):
    opleider, aios = world.api("opleider"), world.api("aios")
    case, doc = to_plan(opleider, aios, open_internal(opleider, world.users["aios"]))
    sign(opleider, doc)
    # The aios's agreement, forged: a row without the event sign() writes with it.
    as_attacker(app, "INSERT INTO signature (document_id, signer_id, verdict, comment, document_sha256, signed_at) "
                     f"VALUES ({doc['id']}, {world.users['aios']}, 'agreed', '', '{doc['sha256']}', "
                     "'2026-03-02 09:00:00')")
    code, out, _ = verify(runner)
    assert code == 1 and (out["case_id"], out["seq"], out["item"]) == (case["id"], None, "signature")
    assert out["document_id"] == doc["id"] and "has no document_signed event" in out["problem"]
    with app.app_context():
        forged = db.session.execute(text(f"SELECT id FROM signature WHERE signer_id = {world.users['aios']}")).scalar()
    assert out["signature_id"] == forged


# -- (a), (b), (e): against a checkpoint ---------------------------------------------------------------


def snapshot(app, case_id) -> dict:
    with app.app_context():
        row = db.session.execute(text(f"SELECT state, version, data, audit_seq, audit_head FROM case_file "
                                      f"WHERE id = {case_id}")).mappings().one()
        return dict(row)


def test_it_finds_a_cut_tail_with_the_head_rewound(app, runner, world):
    opleider = world.api("opleider")
    case = fire(opleider, open_internal(opleider, world.users["aios"]), "analyse")
    before = snapshot(app, case["id"])
    fire(opleider, fire(opleider, case, "discuss", {"core_problem": "Structuur"}), "draft_plan",
         {"discussion_summary": "Besproken"})
    checkpoint(runner)
    data = before["data"] if isinstance(before["data"], str) else json.dumps(before["data"])
    # Everything after `analyse` gone, and the case row put back as it was then: the database agrees with itself.
    as_attacker(app, f"DELETE FROM audit_event WHERE case_id = {case['id']} AND seq > {before['audit_seq']}",
                f"UPDATE case_file SET state = '{before['state']}', version = {before['version']}, "
                f"data = '{data}', audit_seq = {before['audit_seq']}, audit_head = '{before['audit_head']}' "
                f"WHERE id = {case['id']}")
    assert db_alone(app) is None
    code, out, text_ = verify(runner)
    assert code == 1 and "tail cut off, head rewound" in text_
    assert (out["case_id"], out["seq"], out["item"]) == (case["id"], before["audit_seq"] + 1, "checkpoint")
    assert out["checkpoint_seq"] == before["audit_seq"] + 2


def recompute(app, case_id, seq, data):
    """Edit event `seq` and rewrite every hash after it and the head, as an attacker who knows the scheme."""
    events = chain(app, case_id)
    statements, prev = [], audit.GENESIS
    for ev in events:
        if ev.seq == seq:
            ev.data = data
        new = audit.event_hash(prev, ev.case_id, ev.seq, ev.at, ev.actor_id, ev.type, ev.trigger, ev.from_state,
                               ev.to_state, ev.data or {})
        if ev.seq >= seq:
            payload = json.dumps(ev.data).replace("'", "''")
            statements.append(f"UPDATE audit_event SET data = '{payload}', prev_hash = '{prev}', hash = '{new}' "
                              f"WHERE case_id = {case_id} AND seq = {ev.seq}")
        prev = new
    statements.append(f"UPDATE case_file SET audit_head = '{prev}' WHERE id = {case_id}")
    as_attacker(app, *statements)


def test_it_finds_a_chain_recomputed_after_an_edit(app, runner, walked):
    first, second = walked
    written = checkpoint(runner)
    head = len(chain(app, first["id"]))
    # "Besproken" becomes a discussion that never took place; the chain and the head are made to agree.
    [discussed] = [e for e in chain(app, first["id"]) if e.trigger == "draft_plan"]
    recompute(app, first["id"], discussed.seq, {**discussed.data, "input": {"discussion_summary": "Niet besproken"}})
    assert db_alone(app) is None
    code, out, text_ = verify(runner)
    assert code == 1 and "recomputed" in text_ and out["checkpoint"] == written["checkpoint"]
    assert (out["case_id"], out["seq"], out["item"]) == (first["id"], head, "checkpoint")
    assert verify(runner, "--case", str(second["id"]))[0] == 0


def test_a_recomputed_chain_is_found_after_it_grew(app, runner, world, walked):
    first, _ = walked
    checkpoint(runner)
    recorded = len(chain(app, first["id"]))
    fire(world.api("opleider"), first, "record_evaluation", evaluation(True))  # growth since is normal
    verify_clean(runner)
    recompute(app, first["id"], 2, {**chain(app, first["id"])[1].data, "input": {"x": 1}})
    assert db_alone(app) is None
    code, out, _ = verify(runner)
    assert code == 1 and (out["case_id"], out["seq"]) == (first["id"], recorded) and "recomputed" in out["problem"]


def delete_case(app, case_id):
    as_attacker(app, *(f"DELETE FROM {table} WHERE case_id = {case_id}" for table in
                       ("audit_event", "deadline", "notification", "access_log", "case_exclusion", "legal_hold",
                        "case_retention")),
                f"DELETE FROM signature WHERE document_id IN (SELECT id FROM document WHERE case_id = {case_id})",
                f"DELETE FROM document WHERE case_id = {case_id}",
                f"DELETE FROM case_file WHERE id = {case_id}")


def test_it_finds_a_deleted_case(app, runner, walked):
    first, second = walked
    checkpoint(runner)
    delete_case(app, first["id"])
    assert db_alone(app) is None
    code, out, text_ = verify(runner)
    assert code == 1 and "case deleted" in text_
    assert (out["case_id"], out["item"]) == (first["id"], "checkpoint")
    code, out, _ = verify(runner, "--case", str(first["id"]))
    assert code == 1 and out["case_id"] == first["id"]
    assert verify(runner, "--case", str(second["id"]))[0] == 0


# -- the checkpoint itself ---------------------------------------------------------------------------------


def test_the_checkpoint_is_signed_private_and_mailed_to_the_admins(app, runner, walked, world, tmp_path):
    first, second = walked
    copy = tmp_path / "elsewhere.json"
    written = checkpoint(runner, "--out", str(copy))
    path = written["checkpoint"]
    assert os.path.dirname(path) == str(checkpoint_dir(app)) and written["cases"] == 2 and written["mailed"] == 1
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and stat.S_IMODE(os.stat(copy).st_mode) == 0o600
    body = json.loads(open(path).read())
    assert json.loads(copy.read_text()) == body
    heads = {cid: (seq, head) for cid, seq, head in body["heads"]}
    with app.app_context():
        for case in (first, second):
            row = db.session.get(Case, case["id"])
            assert heads[case["id"]] == (row.audit_seq, row.audit_head)
        [mail] = db.session.scalars(select(Notification).where(Notification.kind == CHECKPOINT_KIND)).all()
    assert mail.recipient_user_id == world.users["admin"] and mail.case_id is None
    assert json.loads(mail.body_text[mail.body_text.index("{"):]) == body  # the JSON travels in the mail
    assert body["cases"] == 2 and len(body["hmac"]) == 64 and len(body["key_id"]) == 16
    assert verify_clean(runner)["checkpoint"] == path  # the newest by default
    assert verify_clean(runner, "--checkpoint", str(copy))["checkpoint"] == str(copy)
    assert runner.invoke(["sweep"]).exit_code == 0  # ... and the outbox delivers it like any message
    with app.app_context():
        assert db.session.get(Notification, mail.id).status == "sent"


def test_an_altered_checkpoint_is_refused(app, runner, walked, tmp_path):
    first, _ = walked
    path = checkpoint(runner)["checkpoint"]
    body = json.loads(open(path).read())
    body["heads"] = [h for h in body["heads"] if h[0] != first["id"]]  # hide the case from the checkpoint
    body["cases"] -= 1
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(body))
    code, out, text_ = verify(runner, "--checkpoint", str(forged))
    assert code == 1 and "HMAC does not match" in text_ and out["case_id"] is None
    assert runner.invoke(["audit", "verify", "--checkpoint", str(tmp_path / "missing.json")]).exit_code == 2


def test_another_key_is_named_as_such(app, runner, walked, tmp_path):
    path = checkpoint(runner)["checkpoint"]
    app.config["TRAJECT_AUDIT_KEY"] = "a-different-key-kept-elsewhere"
    code, _, text_ = verify(runner, "--checkpoint", path)
    assert code == 1 and "signed with another key" in text_
    again = checkpoint(runner, "--force")  # an operator who rotated the key says so
    assert again.get("forced") is True and verify_clean(runner)["checkpoint"] == again["checkpoint"]


def test_production_without_a_key_refuses_the_checkpoint_in_one_log_line(app, walked, caplog):
    app.config.update(TRAJECT_ENV="production", TRAJECT_AUDIT_KEY="")
    with app.app_context(), caplog.at_level(logging.ERROR, logger="web.worker"):
        with pytest.raises(CheckpointRefused, match="TRAJECT_AUDIT_KEY"):
            write_checkpoint(app)
    assert any("checkpoint refused: TRAJECT_AUDIT_KEY is not set" in r.getMessage() for r in caplog.records)
    assert not checkpoint_dir(app).exists()
    app.config["TRAJECT_AUDIT_KEY"] = "kept-apart-from-the-database"
    with app.app_context():
        assert write_checkpoint(app)["cases"] == 2


def test_development_derives_a_key_and_says_so(app, walked, caplog):
    with app.app_context(), caplog.at_level(logging.WARNING, logger="web.worker"):
        write_checkpoint(app)
    assert any("TRAJECT_AUDIT_KEY is not set" in r.getMessage() and "derived" in r.getMessage()
               for r in caplog.records)


def test_the_worker_writes_the_checkpoint_daily_and_refuses_to_sign_a_cut_tail(app, runner, world, clock, caplog):
    from web.jobs.worker import Worker

    opleider = world.api("opleider")
    case = fire(opleider, open_internal(opleider, world.users["aios"]), "analyse")
    worker = Worker(app, 5)
    worker.checkpoint()
    assert len(list(checkpoint_dir(app).glob("*.json"))) == 1
    as_attacker(app, f"DELETE FROM audit_event WHERE case_id = {case['id']} AND seq = 2",
                f"UPDATE case_file SET audit_seq = 1, audit_head = (SELECT hash FROM audit_event WHERE case_id = "
                f"{case['id']} AND seq = 1), state = 'signalled', version = 1 WHERE id = {case['id']}")
    as_attacker(app, f"""UPDATE case_file SET data = '{json.dumps({"signal": "Achterblijvende zelfstandigheid"})}'
                     WHERE id = {case['id']}""")
    assert db_alone(app) is None
    clock.advance(days=1)
    with caplog.at_level(logging.ERROR, logger="web.worker"):
        worker.checkpoint()  # today's heads would launder the cut: not signed, the admins told
    assert len(list(checkpoint_dir(app).glob("*.json"))) == 1
    assert any("audit checkpoint refused" in r.getMessage() for r in caplog.records)
    with app.app_context():
        [alert] = db.session.scalars(select(Notification).where(Notification.kind == audit.BREAK_ALERT_KIND)).all()
        assert alert.case_id == case["id"] and "tail cut off" in alert.body_text
        summary = check_audit(app)  # the daily check compares with the checkpoint too; alerted once
    assert summary["breaks"] == 1 and summary["known"] == 1 and summary["checkpoint"].startswith("checkpoint-")


# -- no false alarms: every path that changes a case ----------------------------------------------------


def test_a_region_lived_in_verifies_clean_against_every_checkpoint(app, runner, world, clock):
    """open_case (and a linked case opened by an effect), fire, add_document, sign (also "seen, not
    agreed"), legal holds, reminders and overdue marks of the sweep, retention's pseudonymisation and
    erasure: each leaves the chain, the case row and the signatures in agreement, and every checkpoint
    taken along the way still matches."""
    opleider, aios, coc = world.api("opleider"), world.api("aios"), world.api("coc")
    closed, doc = to_plan(opleider, aios, open_internal(opleider, world.users["aios"]))
    sign(opleider, doc)
    sign(aios, doc, "seen_not_agreed", "Ik zie het anders.")
    closed = fire(opleider, closed, "start_guidance", {"iop_updated": True})
    first = checkpoint(runner)["checkpoint"]
    closed = fire(opleider, closed, "record_evaluation", evaluation(True))
    closed = fire(opleider, closed, "close", {"outcome_summary": "Leerdoelen behaald"})
    intensified = to_guidance(opleider, world.api("aios2"), open_internal(opleider, world.users["aios2"]))
    intensified = fire(opleider, intensified, "record_evaluation", evaluation(False))
    ok(opleider.post(f"/cases/{intensified['id']}/documents", json={"kind": "improvement_plan",
                                                                     "content": {**PLAN, "support": "Meer"}}), 201)
    hold = runner.invoke(["privacy", "hold", "--case", str(intensified["id"]), "--reason", "Bezwaar",
                          "--by", "admin@test.nl"])
    assert hold.exit_code == 0, hold.output
    intensified = fire(opleider, intensified, "intensify", {"report": "Onvoldoende voortgang", **DECISION})
    [opened] = [e["opened_case_id"] for e in chain(app, intensified["id"])[-1].data["effects"] if "opened_case_id" in e]
    with app.app_context():
        gbt = db.session.get(Case, opened)
        assert gbt.workflow_key == "intensified_guidance" and gbt.audit_seq >= 1
    verify_clean(runner, "--checkpoint", first)
    for moment in ("2026-05-29T08:00:00Z", "2026-06-02T08:00:00Z", "2026-09-01T08:00:00Z"):
        assert runner.invoke(["sweep", "--now", moment]).exit_code == 0
    second = checkpoint(runner)["checkpoint"]
    assert runner.invoke(["privacy", "retention", "--now", "2028-03-03T12:00:00Z"]).exit_code == 0
    with app.app_context():
        assert db.session.get(Case, closed["id"]).data == {}  # pseudonymised
    verify_clean(runner, "--checkpoint", first)
    verify_clean(runner, "--checkpoint", second)
    clock.advance(days=1)
    checkpoint(runner)
    assert runner.invoke(["privacy", "retention", "--now", "2033-03-03T12:00:00Z"]).exit_code == 0
    for path in (first, second, None):
        verify_clean(runner, *(("--checkpoint", path) if path else ()))
    with app.app_context():
        assert check_audit(app)["breaks"] == 0
    assert {e.type for e in chain(app, closed["id"])} >= {"opened", "transition", "document_added",
                                                           "document_signed", "pseudonymised", "erased"}


def test_automatic_escalation_by_the_sweep_verifies_clean(app, runner, world, clock, monkeypatch):
    from datetime import datetime, timezone

    engine = app.extensions["traject"]
    original = engine.definition
    # region.yaml's `on_overdue: {fire: escalate}` for the response term (as tests/test_deadlines.py does)
    source = with_region((DEFINITIONS_DIR / "escalation.yaml").read_text(encoding="utf-8"),
                         {"deadlines": {"response": {"on_overdue": {"fire": "escalate"}}}})
    automated = parse(source, "escalation.yaml", make_registry())
    rso = world.api("rso")
    case = ok(rso.post("/cases", json={"workflow": "escalation", "institution": "meander", "title": "Zorg",
                                       "data": {"description": "Te weinig supervisie"}}), 201)
    case = fire(rso, fire(rso, case, "discuss"), "escalate", {"reason": "Blijvende zorg"})
    monkeypatch.setattr(engine, "definition", lambda row: automated if row.key == "escalation" else original(row))
    checkpoint(runner)
    clock.at = datetime(2026, 3, 17, 8, tzinfo=timezone.utc)
    summary = json.loads(runner.invoke(["sweep", "--now", "2026-03-17T08:00:00Z"]).stdout)
    assert summary["escalated"] == 1
    with app.app_context():
        assert db.session.get(Case, case["id"]).state == "escalated_coc_chair"
    assert chain(app, case["id"])[-1].data[audit.CASE_DATA_KEY]
    verify_clean(runner)


def test_the_demo_region_verifies_clean(app, runner):
    assert runner.invoke(["demo"]).exit_code == 0
    verify_clean(runner)
    checkpoint(runner)
    assert runner.invoke(["sweep", "--now", "2026-09-01T08:00:00Z"]).exit_code == 0
    out = verify_clean(runner)
    assert out["cases"] >= 9 and out["checkpoint"]
    with app.app_context():
        assert check_audit(app)["breaks"] == 0
