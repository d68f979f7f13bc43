"""Deadlines without the app: due dates, next_look, 'late', and the sweep (reminder, overdue, exactly once)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from engine import deadlines, outbox
from engine.calendar import WorkingCalendar, end_of_day
from engine.inbox import inbox
from engine.models import AuditEvent, Deadline, DeadlineStatus, Notification
from engine_world import clock, session, world  # noqa: F401  (the fixtures)

UTC = timezone.utc
TZ = "Europe/Amsterdam"


@dataclass
class Ctx:
    """What due_date reads of a guard context: the moment and the case's values."""

    now: datetime
    values: dict = field(default_factory=dict)

    def value(self, path):
        return self.values.get(path)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def deadline(world) -> Deadline:
    return world.session.scalars(select(Deadline)).one()


def outbox_rows(world, kind):
    return list(world.session.scalars(select(Notification).where(Notification.kind == kind)
                                      .order_by(Notification.id)))


def sweep(world, moment: datetime) -> deadlines.SweepResult:
    result = deadlines.sweep(world.session, world.engine, moment)
    world.session.commit()
    return result


# -- arithmetic -------------------------------------------------------------------------------

def test_it_counts_a_term_in_days_from_the_local_day_of_the_transition():
    # 23:30 UTC on 1 March is already 2 March in Amsterdam.
    assert deadlines.due_date(Ctx(at("2026-03-01T23:30")), {"after": {"days": 10}}, TZ) == date(2026, 3, 12)


def test_it_counts_working_days_past_weekends_and_the_holidays_it_is_given():
    # From Friday 24 April 2026: Monday 27 April is Koningsdag — a holiday because the caller says so.
    ctx = Ctx(at("2026-04-24T10:00"))
    kings_day = WorkingCalendar([{"day": "04-27", "if_sunday": -1, "name": "Koningsdag"}])
    assert deadlines.due_date(ctx, {"after": {"working_days": 2}}, TZ, kings_day) == date(2026, 4, 29)
    assert deadlines.due_date(ctx, {"after": {"working_days": 2}}, TZ) == date(2026, 4, 28)


def test_it_takes_a_due_date_from_the_case_or_halfway_between_two():
    ctx = Ctx(at("2026-03-02T09:00"), {"data.end": "2026-05-01", "data.start": "2026-03-01"})
    assert deadlines.due_date(ctx, {"date": "data.end"}, TZ) == date(2026, 5, 1)
    # 1 March through 1 May (its last day) is 62 days: the 32nd, 1 April, begins the second half
    assert deadlines.due_date(ctx, {"midpoint": ["data.start", "data.end"]}, TZ) == date(2026, 4, 1)
    assert deadlines.due_date(ctx, {"date": "data.missing"}, TZ) is None


def test_it_looks_next_at_the_earliest_reminder_still_ahead():
    due_at = end_of_day(date(2026, 4, 2), TZ)
    assert deadlines.next_look(due_at, [14, 3], at("2026-03-02T09:00"), TZ, 9) == at("2026-03-19T08:00")
    # After the 14-day reminder: the 3-day one, after the clocks went forward (09:00 is 07:00 UTC now).
    assert deadlines.next_look(due_at, [14, 3], at("2026-03-19T08:00"), TZ, 9) == at("2026-03-30T07:00")


def test_it_looks_at_the_due_moment_once_every_reminder_has_passed():
    due_at = end_of_day(date(2026, 4, 2), TZ)
    assert deadlines.next_look(due_at, [14, 3], at("2026-03-30T07:00"), TZ, 9) == due_at
    assert deadlines.next_look(due_at, [], at("2026-01-01T00:00"), TZ, 9) == due_at


def test_it_calls_a_deadline_late_only_after_its_due_moment_or_once_marked_overdue(world):
    case = world.open_drill()
    world.session.flush()
    row = deadline(world)
    due = row.due_at
    late_ids = lambda now: list(world.session.scalars(select(Deadline.id).where(deadlines.late(now))))  # noqa: E731
    assert not deadlines.is_late(row, due) and late_ids(due) == []
    assert deadlines.is_late(row, due + timedelta(seconds=1)) and late_ids(due + timedelta(seconds=1)) == [row.id]
    row.status = DeadlineStatus.MET
    world.session.flush()
    assert not deadlines.is_late(row, due + timedelta(days=1)) and late_ids(due + timedelta(days=1)) == []
    row.status = DeadlineStatus.OVERDUE
    world.session.flush()
    assert deadlines.is_late(row, due - timedelta(days=1)) and late_ids(due - timedelta(days=1)) == [row.id]
    assert case.state == "open"


# -- the sweep --------------------------------------------------------------------------------

def test_it_writes_a_pending_deadline_that_looks_first_at_its_reminder(world):
    world.open_drill()
    world.session.flush()
    row = deadline(world)
    # Opened Monday 2 March: due at the end of Thursday 12 March, reminded 9 March at 09:00 local.
    assert (row.kind, row.label, row.status, row.owner_role) == ("answer", "Antwoord", "pending", "opleider")
    assert row.due_at == end_of_day(date(2026, 3, 12), TZ)
    assert row.remind_at == at("2026-03-09T08:00") and row.reminder_days == [3]


def test_it_sweeps_nothing_before_a_deadline_needs_looking_at(world):
    world.open_drill()
    world.session.commit()
    result = sweep(world, at("2026-03-09T07:59"))
    assert (result.candidates, result.processed) == (0, 0)
    assert deadline(world).status == "pending"


def test_it_sends_a_reminder_to_the_owner_with_a_calendar_entry(world):
    case = world.open_drill()
    world.session.commit()
    result = sweep(world, at("2026-03-09T08:00"))
    assert result.summary() == {"reminded": 1, "overdue": 0, "escalated": 0}
    row = deadline(world)
    assert row.status == "reminded" and row.remind_at == row.due_at
    [mail] = outbox_rows(world, "deadline_reminder")
    assert mail.recipient_user_id == world.users["opleider"].id
    assert mail.subject == "Herinnering: Antwoord uiterlijk 12-03-2026"
    assert mail.attachments == [{"type": "ics", "deadline_id": row.id}]
    assert mail.data == {"deadline_id": row.id, "deadline_kind": "answer", "label": "Antwoord", "label_en": "Answer",
                         "due_at": "2026-03-12T22:59:00.000000Z", "days_before": 3}
    last = world.session.scalars(select(AuditEvent).where(AuditEvent.case_id == case.id)
                                 .order_by(AuditEvent.seq.desc())).first()
    assert last.type == "deadline_reminder" and last.data["days_before"] == 3


def test_it_sends_each_reminder_exactly_once(world):
    world.open_drill()
    world.session.commit()
    assert sweep(world, at("2026-03-09T08:00")).reminded == 1
    assert sweep(world, at("2026-03-09T09:00")).reminded == 0
    assert sweep(world, at("2026-03-10T09:00")).reminded == 0
    assert len(outbox_rows(world, "deadline_reminder")) == 1


def test_it_marks_a_passed_deadline_overdue_and_tells_owner_and_next_level_once(world):
    case = world.open_drill()
    world.session.commit()
    result = sweep(world, at("2026-03-13T08:00"))
    assert result.summary() == {"reminded": 0, "overdue": 1, "escalated": 1}
    row = deadline(world)
    assert row.status == "overdue" and row.remind_at is None
    [owner] = outbox_rows(world, "deadline_overdue")
    assert owner.recipient_user_id == world.users["opleider"].id
    assert owner.subject == "Termijn verstreken: Antwoord (12-03-2026)"
    [coc] = outbox_rows(world, "drill_overdue")
    assert coc.recipient_user_id == world.users["coc"].id and coc.recipient_role == "coc_chair"
    assert coc.subject == "Te laat: Antwoord in Oefenzaak" and coc.data["subject_en"] == "Late: Answer in Oefenzaak"
    assert sweep(world, at("2026-03-14T08:00")).overdue == 0
    assert len(outbox_rows(world, "deadline_overdue")) == len(outbox_rows(world, "drill_overdue")) == 1
    # Nothing changes state by itself.
    world.session.refresh(case)
    assert (case.state, case.version) == ("open", 1)


def test_it_sends_only_the_latest_reminder_after_a_worker_was_down(world):
    world.session.commit()
    case = world.engine.open_case(world.session, world.actor("opleider"), workflow="drill", institution="meander",
                                  data={"note": "ok"})
    world.session.flush()
    row = deadline(world)
    row.reminder_days = [5, 3]
    row.remind_at = at("2026-03-07T08:00")
    world.session.commit()
    assert sweep(world, at("2026-03-10T08:00")).reminded == 1
    [mail] = outbox_rows(world, "deadline_reminder")
    assert mail.data["days_before"] == 3
    event = world.session.scalars(select(AuditEvent).where(AuditEvent.case_id == case.id,
                                                           AuditEvent.type == "deadline_reminder")).one()
    assert event.data["skipped_days_before"] == [5]


def test_it_meets_a_deadline_with_the_step_that_names_it(world):
    case = world.open_drill()
    world.engine.fire(world.session, world.actor("opleider"), case.id, "submit", 1)
    world.session.commit()
    row = deadline(world)
    assert row.status == "met" and row.remind_at is None and row.resolved_at == world.clock.now()
    assert sweep(world, at("2026-04-01T08:00")).processed == 0


def test_it_keeps_the_audit_chain_whole_across_sweeps(world):
    case = world.open_drill()
    world.session.commit()
    sweep(world, at("2026-03-09T08:00"))
    sweep(world, at("2026-03-13T08:00"))
    world.session.refresh(case)
    events = list(world.session.scalars(select(AuditEvent).where(AuditEvent.case_id == case.id)
                                        .order_by(AuditEvent.seq)))
    assert [e.type for e in events] == ["opened", "deadline_reminder", "deadline_overdue"]
    assert case.audit_seq == 3 and case.audit_head == events[-1].hash


def test_it_shows_a_passed_deadline_in_the_next_levels_inbox(world):
    world.open_drill()
    world.session.commit()
    sweep(world, at("2026-03-13T08:00"))
    [item] = inbox(world.session, world.engine, world.actor("coc"), at("2026-03-13T08:00"))
    assert item["reason"] == "deadline_overdue" and item["detail"] == "Antwoord"


# -- the outbox -------------------------------------------------------------------------------

def test_it_skips_an_outbox_row_whose_idempotency_key_exists(world):
    row = outbox.values(key="k:1", case_id=None, seq=None, uid=world.users["coc"].id, address=None, role="admin",
                        kind="note", subject="x" * 400, now=at("2026-03-02T09:00"))
    outbox.insert_many(world.session, [row])
    outbox.insert_many(world.session, [{**row, "subject": "again"}])
    [stored] = outbox_rows(world, "note")
    assert len(stored.subject) == outbox.SUBJECT_MAX and stored.status == "pending" and stored.attempts == 0


def test_it_formats_subjects_leaving_unknown_fields_as_they_are():
    assert outbox.safe_format("{title} ({missing})", title="Zaak") == "Zaak ({missing})"
    assert outbox.recipient_key(7, None) == "user:7" and outbox.recipient_key(None, "a@b.nl") == "address:a@b.nl"


@pytest.mark.parametrize("status", list(DeadlineStatus))
def test_it_stores_statuses_as_the_strings_they_always_were(world, status):
    world.open_drill()
    world.session.flush()
    row = deadline(world)
    row.status = status
    world.session.commit()
    assert world.session.connection().exec_driver_sql("SELECT status FROM deadline").scalar() == status.value
