"""Durable deadlines: reminders at the right moments exactly once, overdue once, DST-safe, any number of sweepers."""
from __future__ import annotations

import json
import threading
from datetime import date, datetime, timezone

import pytest
import yaml
from sqlalchemy import func, select

from engine import audit, deadlines
from engine.calendar import end_of_day
from engine.definitions import parse
from engine.models import AuditEvent, Case, Deadline, Notification
from flows import open_internal, to_guidance
from web.extensions import db
from web.jobs.passes import sweep_deadlines
from workflows import DEFINITIONS_DIR, make_registry

UTC = timezone.utc


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=UTC)


def sweep(runner, moment: str) -> dict:
    result = runner.invoke(["sweep", "--now", moment])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def guidance_case(world, runner=None):
    """An internal guidance case in `guidance` with its plan_term deadline; the walk's own
    notifications (case opened, signatures requested) delivered already when a runner is given."""
    opleider, aios = world.api("opleider"), world.api("aios")
    case = to_guidance(opleider, aios, open_internal(opleider, world.users["aios"]))
    if runner is not None:
        assert sweep(runner, "2026-03-02T09:00:00Z")["delivered"] >= 1
    return case


def rows(app, model, *where):
    with app.app_context():
        return db.session.scalars(select(model).where(*where).order_by(model.id if hasattr(model, "id") else None)).all()


def outbox(app, kind=None):
    with app.app_context():
        q = select(Notification).order_by(Notification.id)
        if kind:
            q = q.where(Notification.kind == kind)
        return db.session.scalars(q).all()


def events(app, case_id, type_=None):
    with app.app_context():
        q = select(AuditEvent).where(AuditEvent.case_id == case_id).order_by(AuditEvent.seq)
        if type_:
            q = q.where(AuditEvent.type == type_)
        return db.session.scalars(q).all()


def test_it_reminds_14_and_3_days_before_and_marks_overdue_exactly_once(app, world, runner):
    case = guidance_case(world, runner)
    [deadline] = rows(app, Deadline)
    # term_end 1 June 2026: reminders at 09:00 Amsterdam (summer time: 07:00 UTC) on 18 and 29 May
    assert deadline.due_at == at("2026-06-01T21:59")
    assert deadline.remind_at == at("2026-05-18T07:00")

    assert sweep(runner, "2026-05-18T06:59:59Z") == {"reminded": 0, "overdue": 0, "escalated": 0,
                                                     "delivered": 0, "retried": 0, "dead": 0}
    assert sweep(runner, "2026-05-18T07:00:00Z") == {"reminded": 1, "overdue": 0, "escalated": 0,
                                                     "delivered": 1, "retried": 0, "dead": 0}
    assert sweep(runner, "2026-05-18T07:00:00Z") == {"reminded": 0, "overdue": 0, "escalated": 0,
                                                     "delivered": 0, "retried": 0, "dead": 0}
    [reminder] = outbox(app, "deadline_reminder")
    assert reminder.recipient_user_id == world.users["opleider"] and reminder.status == "sent"
    assert reminder.idempotency_key == f"deadline:{deadline.id}:reminder:14:user:{world.users['opleider']}:deadline_reminder"
    assert reminder.attachments == [{"type": "ics", "deadline_id": deadline.id}]
    [deadline] = rows(app, Deadline)
    assert deadline.status == "reminded" and deadline.remind_at == at("2026-05-29T07:00")

    assert sweep(runner, "2026-05-29T07:00:00Z")["reminded"] == 1
    assert sweep(runner, "2026-05-30T12:00:00Z")["reminded"] == 0
    assert [n.data["days_before"] for n in outbox(app, "deadline_reminder")] == [14, 3]
    [deadline] = rows(app, Deadline)
    assert deadline.remind_at == deadline.due_at

    assert sweep(runner, "2026-06-01T21:58:59Z")["overdue"] == 0
    assert sweep(runner, "2026-06-01T21:59:00Z") == {"reminded": 0, "overdue": 1, "escalated": 0,
                                                     "delivered": 1, "retried": 0, "dead": 0}
    assert sweep(runner, "2026-06-02T09:00:00Z")["overdue"] == 0
    assert sweep(runner, "2026-12-31T09:00:00Z") == {"reminded": 0, "overdue": 0, "escalated": 0,
                                                     "delivered": 0, "retried": 0, "dead": 0}
    [deadline] = rows(app, Deadline)
    assert deadline.status == "overdue" and deadline.remind_at is None
    [overdue] = outbox(app, "deadline_overdue")
    assert overdue.recipient_user_id == world.users["opleider"]

    chain = events(app, case["id"])
    assert [e.type for e in chain][-3:] == ["deadline_reminder", "deadline_reminder", "deadline_overdue"]
    assert [e.data["days_before"] for e in chain if e.type == "deadline_reminder"] == [14, 3]
    assert all(e.actor_id is None for e in chain[-3:])
    with app.app_context():
        assert audit.verify(db.session, case["id"])[2] is None
    # The API shows the overdue deadline; the case itself did not move.
    shown = world.api("opleider").get(f"/cases/{case['id']}").get_json()
    assert shown["state"] == "guidance" and shown["deadlines"][0]["status"] == "overdue"


def test_a_worker_that_was_down_sends_only_the_latest_reminder(app, world, runner):
    case = guidance_case(world)
    assert sweep(runner, "2026-05-30T10:00:00Z")["reminded"] == 1
    [reminder] = outbox(app, "deadline_reminder")
    assert reminder.data["days_before"] == 3
    [event] = events(app, case["id"], "deadline_reminder")
    assert event.data["skipped_days_before"] == [14]


def test_a_worker_that_was_down_past_the_due_time_only_marks_it_overdue(app, world, runner):
    guidance_case(world)
    assert sweep(runner, "2026-07-01T10:00:00Z")["reminded"] == 0
    assert outbox(app, "deadline_reminder") == []
    assert len(outbox(app, "deadline_overdue")) == 1


def test_a_met_deadline_is_never_reminded(app, world, runner):
    from flows import evaluation, fire

    opleider = world.api("opleider")
    case = guidance_case(world)
    case = fire(opleider, case, "record_evaluation", evaluation(True))
    fire(opleider, case, "close", {"outcome_summary": "Leerdoelen behaald"})
    summary = sweep(runner, "2026-07-01T10:00:00Z")
    assert summary["reminded"] == summary["overdue"] == 0
    assert [d.status for d in rows(app, Deadline)] == ["met"]
    assert outbox(app, "deadline_reminder") == outbox(app, "deadline_overdue") == []


# -- DST, month ends and holidays ----------------------------------------------------------

@pytest.mark.parametrize("due_day, reminders", [
    # Clocks go forward on 29 March 2026: a reminder before it is 08:00 UTC, after it 07:00 UTC.
    (date(2026, 4, 2), {14: "2026-03-19T08:00", 3: "2026-03-30T07:00"}),
    # Clocks go back on 25 October 2026.
    (date(2026, 10, 27), {14: "2026-10-13T07:00", 3: "2026-10-24T07:00"}),
    # Across a month end (and a leap-less February).
    (date(2026, 3, 2), {14: "2026-02-16T08:00", 3: "2026-02-27T08:00"}),
    # Calendar days, not working days: a reminder may fall on Koningsdag or a Sunday.
    (date(2026, 4, 30), {3: "2026-04-27T07:00", 14: "2026-04-16T07:00"}),
])
def test_reminder_moments_are_nine_o_clock_amsterdam_whatever_the_season(due_day, reminders):
    due_at = end_of_day(due_day, "Europe/Amsterdam")
    moments = deadlines.reminder_moments(due_at, list(reminders), "Europe/Amsterdam", 9)
    assert {n: m.astimezone(UTC) for n, m in moments.items()} == {n: at(v) for n, v in reminders.items()}


def add_deadline(app, case_id, due_day: date, days=(14, 3), owner_role="responsible", now=None, kind="custom"):
    with app.app_context():
        engine = app.extensions["traject"]
        due_at = end_of_day(due_day, "Europe/Amsterdam")
        now = now or engine.clock.now()
        d = Deadline(case_id=case_id, kind=kind, label="Testtermijn", due_at=due_at,
                     remind_at=deadlines.next_look(due_at, list(days), now, "Europe/Amsterdam", 9), status="pending", owner_role=owner_role,
                     reminder_days=sorted(days, reverse=True), created_at=now)
        db.session.add(d)
        db.session.commit()
        return d.id


def test_reminders_across_the_spring_dst_change_fire_at_the_local_hour(app, world, runner):
    opleider = world.api("opleider")
    case = open_internal(opleider, world.users["aios"])
    deadline_id = add_deadline(app, case["id"], date(2026, 4, 2))
    assert sweep(runner, "2026-03-19T07:59:59Z")["reminded"] == 0
    assert sweep(runner, "2026-03-19T08:00:00Z")["reminded"] == 1   # 09:00 CET
    assert sweep(runner, "2026-03-30T06:59:59Z")["reminded"] == 0
    assert sweep(runner, "2026-03-30T07:00:00Z")["reminded"] == 1   # 09:00 CEST
    assert sweep(runner, "2026-04-02T21:58:59Z")["overdue"] == 0
    assert sweep(runner, "2026-04-02T21:59:00Z")["overdue"] == 1    # 23:59 CEST
    [d] = rows(app, Deadline, Deadline.id == deadline_id)
    assert d.status == "overdue"


# -- the definition's expiry effect -------------------------------------------------------

def definition_with_on_overdue(on_overdue: dict):
    """internal_guidance with an on_overdue block on plan_term and a `lapse` step a region might automate."""
    raw = yaml.safe_load((DEFINITIONS_DIR / "internal_guidance.yaml").read_text(encoding="utf-8"))
    for step in raw["transitions"]:
        for spec in step.get("deadlines") or []:
            if spec["kind"] == "plan_term":
                spec["on_overdue"] = on_overdue
    raw["states"].append({"name": "lapsed", "label": "Verlopen", "final": True})
    raw["transitions"].append({"trigger": "lapse", "source": "guidance", "dest": "lapsed", "roles": ["coc_chair"],
                               "input": {"reason": {"type": "text", "required": True, "label": "Reden"}}})
    return parse(yaml.safe_dump(raw, allow_unicode=True), "internal_guidance.yaml", make_registry())


@pytest.fixture
def custom_definition(app, monkeypatch):
    """Serve a changed internal_guidance for existing cases (as a region's override would)."""
    engine = app.extensions["traject"]
    original = engine.definition
    holder = {}

    def definition(row):
        if row.key in holder:
            return holder[row.key]
        if row.key == "internal_guidance" and "definition" in holder:
            return holder["definition"]
        return original(row)

    monkeypatch.setattr(engine, "definition", definition)
    return holder


def test_overdue_tells_the_owner_and_the_next_level_once_and_changes_no_state(app, world, runner, custom_definition):
    case = guidance_case(world)
    custom_definition["definition"] = definition_with_on_overdue({"notify": [
        {"to": "coc_chair", "kind": "deadline_overdue_escalation", "subject": "Termijn verstreken in {title}",
         "subject_en": "Deadline passed in {title}"}]})
    summary = sweep(runner, "2026-06-02T08:00:00Z")
    assert summary["overdue"] == 1 and summary["escalated"] == 1
    assert sweep(runner, "2026-06-03T08:00:00Z")["escalated"] == 0
    [told] = outbox(app, "deadline_overdue_escalation")
    assert told.recipient_user_id == world.users["coc"] and told.subject == "Termijn verstreken in Begeleiding"
    assert len(outbox(app, "deadline_overdue")) == 1
    [event] = events(app, case["id"], "deadline_overdue")
    assert event.data["escalated_to"] == [f"coc_chair:user:{world.users['coc']}"]
    assert world.api("opleider").get(f"/cases/{case['id']}").get_json()["state"] == "guidance"


def test_automatic_escalation_fires_only_where_the_definition_names_it(app, world, runner, custom_definition):
    case = guidance_case(world)
    custom_definition["definition"] = definition_with_on_overdue({"notify": [], "fire": "lapse"})
    summary = sweep(runner, "2026-06-02T08:00:00Z")
    assert summary["overdue"] == 1 and summary["escalated"] == 1
    shown = world.api("opleider").get(f"/cases/{case['id']}").get_json()
    assert shown["state"] == "lapsed" and shown["version"] == case["version"] + 1
    chain = events(app, case["id"])
    assert [e.type for e in chain[-2:]] == ["deadline_overdue", "transition"]
    assert chain[-1].trigger == "lapse" and chain[-1].actor_id is None
    with app.app_context():
        assert audit.verify(db.session, case["id"])[2] is None
    assert sweep(runner, "2026-06-03T08:00:00Z")["escalated"] == 0


def test_an_automatic_escalation_that_is_not_possible_leaves_the_overdue_mark(app, world, runner, custom_definition):
    case = guidance_case(world)
    # `close` needs an evaluation that does not exist: the guard refuses, the deadline is still overdue.
    custom_definition["definition"] = definition_with_on_overdue({"notify": [], "fire": "close"})
    summary = sweep(runner, "2026-06-02T08:00:00Z")
    assert summary["overdue"] == 1 and summary["escalated"] == 0
    assert world.api("opleider").get(f"/cases/{case['id']}").get_json()["state"] == "guidance"
    assert [d.status for d in rows(app, Deadline)] == ["overdue"]
    with app.app_context():
        assert audit.verify(db.session, case["id"])[2] is None


def test_a_region_that_automates_escalation_moves_the_case_up_one_level_when_a_term_passes(
        app, world, runner, clock, custom_definition):
    from engine.definitions import with_region
    from flows import fire, ok

    rso = world.api("rso")
    case = ok(rso.post("/cases", json={"workflow": "escalation", "institution": "meander", "title": "Zorg",
                                       "data": {"description": "Te weinig supervisie"}}), 201)
    case = fire(rso, fire(rso, case, "discuss"), "escalate", {"reason": "Blijvende zorg"})
    assert case["state"] == "escalated_rso_chair"
    # region.yaml: `on_overdue: {fire: escalate}` for the response term
    source = with_region((DEFINITIONS_DIR / "escalation.yaml").read_text(encoding="utf-8"),
                         {"deadlines": {"response": {"on_overdue": {"fire": "escalate"}}}})
    custom_definition["escalation"] = parse(source, "escalation.yaml", make_registry())
    clock.at = at("2026-03-17T08:00")  # the RSO chair's 14 days ended on 16 March
    summary = sweep(runner, "2026-03-17T08:00:00Z")
    assert summary["overdue"] == 1 and summary["escalated"] == 1
    shown = world.api("rso").get(f"/cases/{case['id']}").get_json()  # a new token: the clock moved on
    assert shown["state"] == "escalated_coc_chair"
    assert sorted((d["kind"], d["status"], d["owner_role"]) for d in shown["deadlines"]) == [
        ("discussion_term", "met", "rso_board"), ("response", "met", "rso_chair"),
        ("response", "pending", "coc_chair"), ("signal_term", "met", "rso_board")]
    chain = events(app, case["id"])
    assert [e.type for e in chain[-2:]] == ["deadline_overdue", "transition"]
    assert chain[-1].at == at("2026-03-17T08:00") and chain[-1].data["input"]["reason"].endswith("(automatisch)")
    assert sweep(runner, "2026-03-17T08:00:00Z")["escalated"] == 0


# -- crashes and concurrency -----------------------------------------------------------------

def test_a_sweep_rolled_back_leaves_every_row_claimable(app, world):
    case = guidance_case(world)
    moment = at("2026-05-19T00:00")
    with app.app_context():
        result = deadlines.sweep(db.session, app.extensions["traject"], moment)
        assert result.reminded == 1
        db.session.rollback()  # the worker died before its commit
    assert outbox(app, "deadline_reminder") == [] and events(app, case["id"], "deadline_reminder") == []
    assert [d.status for d in rows(app, Deadline)] == ["pending"]
    with app.app_context():
        assert deadlines.sweep(db.session, app.extensions["traject"], moment).reminded == 1
        db.session.commit()
    assert len(outbox(app, "deadline_reminder")) == 1
    assert len(events(app, case["id"], "deadline_reminder")) == 1


def test_a_sweeper_that_read_stale_rows_claims_nothing(app, world):
    """SQLite's compare-and-set (PostgreSQL's locks make this moot): the row moved after we read it."""
    guidance_case(world)
    moment = at("2026-05-19T00:00")
    with app.app_context():
        engine = app.extensions["traject"]
        [stale] = db.session.execute(deadlines.due_query(moment)).all()
        assert deadlines.sweep(db.session, engine, moment).reminded == 1
        db.session.commit()
        plan = deadlines._plan(stale, engine, moment)
        assert deadlines._claim(db.session, stale, plan) is False
        db.session.rollback()


def make_due_deadlines(app, world, n_cases: int, per_case: int, due_day=date(2026, 3, 1)):
    """Many cases with many due deadlines, inserted in bulk."""
    with app.app_context():
        engine = app.extensions["traject"]
        definition = engine.latest(db.session)["internal_guidance"]
        now = engine.clock.now()
        base = dict(workflow_key="internal_guidance", definition_id=definition.row_id, region_id=world.region_id,
                    institution_id=world.institutions["meander"], subject_id=world.users["aios"],
                    opened_by_id=world.users["opleider"], responsible_id=world.users["opleider"], parent_id=None,
                    title="Bulk", state="guidance", version=1, data={}, opened_at=now, updated_at=now, closed_at=None,
                    audit_seq=0, audit_head="")
        db.session.execute(Case.__table__.insert(), [base] * n_cases)
        case_ids = db.session.scalars(select(Case.id).order_by(Case.id)).all()[-n_cases:]
        due_at = end_of_day(due_day, "Europe/Amsterdam")
        db.session.execute(Deadline.__table__.insert(), [
            dict(case_id=cid, kind=f"k{i}", label="Bulk", due_at=due_at, remind_at=due_at, status="pending",
                 owner_role="responsible", reminder_days=[], created_at=now, resolved_at=None)
            for cid in case_ids for i in range(per_case)])
        db.session.commit()
        return case_ids


def concurrently(app, n: int, moment: datetime):
    barrier = threading.Barrier(n)
    results, errors = [], []

    def run():
        with app.app_context():
            try:
                barrier.wait()
                results.append(sweep_deadlines(app, moment))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return results


def test_two_sweepers_at_once_fire_each_deadline_exactly_once(app, world):
    make_due_deadlines(app, world, n_cases=20, per_case=5)
    results = concurrently(app, 2, at("2026-03-02T00:00"))
    # What one sweeper left behind (another held it) the next pass picks up.
    with app.app_context():
        leftover = sweep_deadlines(app, at("2026-03-02T00:00"))
    assert sum(r.overdue for r in results) + leftover.overdue == 100
    with app.app_context():
        keys = db.session.scalars(select(Notification.idempotency_key)).all()
        assert len(keys) == len(set(keys)) == 100
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 100
        assert audit.verify(db.session)[2] is None


def test_four_sweepers_over_ten_thousand_due_deadlines_fire_each_once_on_postgresql(app, world):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("SQLite has one writer at a time; the compare-and-set is tested above")
    make_due_deadlines(app, world, n_cases=1000, per_case=10)
    results = concurrently(app, 4, at("2026-03-02T00:00"))
    with app.app_context():
        leftover = sweep_deadlines(app, at("2026-03-02T00:00"))
        fired = sum(r.overdue for r in results) + leftover.overdue
        assert fired == 10_000
        assert sum(r.overdue > 0 for r in results) >= 2  # they shared the work
        assert db.session.scalar(select(func.count()).select_from(Notification)) == 10_000
        assert db.session.scalar(select(func.count(func.distinct(Notification.idempotency_key)))) == 10_000
        assert db.session.scalar(select(func.count()).select_from(Deadline).where(Deadline.status == "overdue")) \
            == 10_000
        assert audit.verify(db.session)[2] is None


# -- the partial index ----------------------------------------------------------------------

def test_the_claim_queries_use_the_partial_indexes(app):
    from notifications.outbox import due_query as outbox_due

    moment = at("2026-03-02T00:00")
    with app.app_context():
        conn = db.session.connection()
        for query, index in [(deadlines.due_query(moment), "ix_deadline_open_due"),
                             (outbox_due(moment, 50), "ix_notification_due")]:
            compiled = query.compile(dialect=conn.dialect)
            params = {k: v.replace(tzinfo=None) if isinstance(v, datetime) else v for k, v in compiled.params.items()}
            if conn.dialect.name == "sqlite":
                plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), tuple(params.values())).all()
            else:
                # On an empty table any plan is cheap; forbid the sequential scan to see whether the index serves.
                conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
                plan = conn.exec_driver_sql("EXPLAIN " + str(compiled), params).all()
            assert index in " ".join(str(r) for r in plan), plan
        db.session.rollback()
