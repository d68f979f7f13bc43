"""Term arithmetic after the Algemene termijnenwet: its holidays, `roll: next_working_day`, working-day
counts, the moved due date that says why, and the dispute window's closing date (CONTRACT.md §8)."""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import holidays
import pytest

from engine.calendar import add_term, term_end
from flows import ok
from workflows.terms import moved_note, working_calendar

ATW = working_calendar({})
AMS = ZoneInfo("Europe/Amsterdam")


def at(*args) -> datetime:
    """A moment in Amsterdam time, as the clock holds it (UTC)."""
    return datetime(*args, tzinfo=AMS).astimezone(timezone.utc)


# -- the holiday list --------------------------------------------------------------------------


@pytest.mark.parametrize("day, name", [
    (date(2027, 1, 1), "Nieuwjaarsdag"),
    (date(2027, 3, 26), "Goede Vrijdag"),
    (date(2027, 3, 29), "Tweede Paasdag"),
    (date(2027, 4, 27), "Koningsdag"),
    (date(2025, 4, 26), "Koningsdag"),  # 27 April 2025 is a Sunday
    (date(2026, 5, 5), "Bevrijdingsdag"),
    (date(2027, 5, 5), "Bevrijdingsdag"),
    (date(2027, 5, 6), "Hemelvaartsdag"),
    (date(2027, 5, 17), "Tweede Pinksterdag"),
    (date(2027, 12, 25), "Eerste Kerstdag"),
    (date(2028, 12, 26), "Tweede Kerstdag"),
])
def test_it_knows_every_holiday_of_the_algemene_termijnenwet(day, name):
    closed = ATW.closed(day)
    assert closed is not None and closed.kind == "holiday" and closed.name == name


def test_it_counts_5_may_and_good_friday_where_python_holidays_does_not():
    public = holidays.country_holidays("NL", years=[2026, 2027])
    assert date(2026, 5, 5) not in public  # why the list is our own
    assert not ATW.is_working_day(date(2026, 5, 5)) and not ATW.is_working_day(date(2027, 3, 26))


def test_a_sunday_27_april_is_a_working_day_only_on_the_26th_holiday():
    assert ATW.closed(date(2025, 4, 27)).kind == "sunday"
    assert not ATW.is_working_day(date(2025, 4, 26))
    assert ATW.is_working_day(date(2027, 4, 26)) and ATW.is_working_day(date(2027, 4, 28))


def test_the_region_adds_extra_days_off():
    calendar = working_calendar({"calendar": {"extra_days": [date(2027, 12, 24),
                                                             {"date": "2027-05-07", "name": "Brugdag"}]}})
    assert calendar.closed(date(2027, 5, 7)).name == "Brugdag"
    assert not calendar.is_working_day(date(2027, 12, 24)) and ATW.is_working_day(date(2027, 12, 24))
    assert calendar.is_working_day(date(2028, 5, 8))


def test_a_malformed_extra_day_stops_the_start():
    with pytest.raises(ValueError):
        working_calendar({"calendar": {"extra_days": ["24 december"]}})


# -- rolling and counting ---------------------------------------------------------------------


@pytest.mark.parametrize("start, ends_on, rolled_to", [
    (date(2027, 1, 2), date(2027, 1, 30), date(2027, 2, 1)),  # a Saturday
    (date(2027, 3, 1), date(2027, 3, 29), date(2027, 3, 30)),  # Easter Monday
    (date(2026, 4, 7), date(2026, 5, 5), date(2026, 5, 6)),  # 5 May in a year python-holidays misses
    (date(2027, 4, 8), date(2027, 5, 6), date(2027, 5, 7)),  # Ascension Day
    (date(2028, 11, 28), date(2028, 12, 26), date(2028, 12, 27)),  # 26 December
    (date(2027, 2, 26), date(2027, 3, 26), date(2027, 3, 30)),  # Good Friday, the weekend, Easter Monday
])
def test_a_term_that_ends_on_a_day_off_ends_on_the_next_working_day(start, ends_on, rolled_to):
    four_weeks = {"weeks": 4}
    assert term_end(start, four_weeks, "none", ATW).day == ends_on
    rolled = term_end(start, four_weeks, "next_working_day", ATW)
    assert (rolled.day, rolled.rolled_from) == (rolled_to, ends_on)
    assert term_end(date(2027, 1, 4), four_weeks, "next_working_day", ATW).rolled_from is None


def test_working_days_skip_the_same_days():
    # Thursday 24 December 2026: 25 and 26 December, the weekend, New Year's Day and the next weekend.
    assert add_term(date(2026, 12, 24), working_days=5, calendar=ATW) == date(2027, 1, 4)
    assert add_term(date(2027, 5, 4), working_days=2, calendar=ATW) == date(2027, 5, 10)  # 5, 6 May, weekend


def test_a_moved_day_says_why_in_both_languages():
    assert moved_note(date(2027, 2, 1), date(2027, 1, 30), ATW) == \
        "verschoven naar maandag 1 februari: 30 januari is een zaterdag"
    assert moved_note(date(2027, 2, 1), date(2027, 1, 30), ATW, "en") == \
        "moved to Monday 1 February: 30 January is a Saturday"
    assert moved_note(date(2026, 5, 6), date(2026, 5, 5), ATW) == \
        "verschoven naar woensdag 6 mei: 5 mei is Bevrijdingsdag"


# -- through the application, on both databases -------------------------------------------------


def _gbt(world, decision_date: str):
    from test_gbt import DECISION

    return ok(world.api("opleider").post("/cases", json={
        "workflow": "intensified_guidance", "institution": "meander", "subject_id": world.users["aios"],
        "title": "GBT", "data": {**DECISION, "decision_date": decision_date}}), 201)


def _dispute(world, case, status):
    return ok(world.api("aios").post("/cases", json={"workflow": "dispute", "institution": "meander",
                                                     "parent_id": case["id"], "data": {"grounds": "Onzorgvuldig"}}),
              status)


def test_a_dispute_on_monday_1_february_against_a_saturday_2_january_decision_is_accepted(world, clock):
    clock.at = at(2027, 1, 4, 10)
    gbt = _gbt(world, "2027-01-02")
    clock.at = at(2027, 2, 1, 16)
    dispute = _dispute(world, gbt, 201)
    assert dispute["state"] == "requested"


def test_a_dispute_the_day_after_the_moved_window_is_refused_with_the_closing_date(world, clock):
    clock.at = at(2027, 1, 4, 10)
    gbt = _gbt(world, "2027-01-02")
    clock.at = at(2027, 2, 2, 9)
    [unmet] = _dispute(world, gbt, 422)["error"]["details"]["unmet"]
    assert unmet["guard"] == "within_dispute_window" and unmet["window_closed_on"] == "2027-02-01"


def test_the_acknowledgement_counts_working_days_of_the_same_calendar(world, clock):
    clock.at = at(2026, 12, 24, 10)
    gbt = _gbt(world, "2026-12-24")
    dispute = _dispute(world, gbt, 201)
    [ack] = dispute["deadlines"]
    assert ack["kind"] == "acknowledgement" and ack["due_at"].startswith("2027-01-04")
    assert ack["moved"] is None  # counted in working days: it never lands on a day off


def _consultation(world):
    return ok(world.api("rso").post("/cases", json={"workflow": "rso_consultation", "institution": "meander",
                                                    "data": {"shortcoming": "Geen supervisie 's nachts",
                                                             "requirement": "quality"}}), 201)


@pytest.mark.parametrize("opened, due, moved_from, note", [
    ((2026, 11, 26), "2026-12-28", "2026-12-26", "verschoven naar maandag 28 december: 26 december is Tweede Kerstdag"),
    ((2026, 4, 5), "2026-05-06", "2026-05-05", "verschoven naar woensdag 6 mei: 5 mei is Bevrijdingsdag"),
    ((2027, 2, 27), "2027-03-30", "2027-03-29", "verschoven naar dinsdag 30 maart: 29 maart is Tweede Paasdag"),
    ((2027, 4, 6), "2027-05-07", "2027-05-06", "verschoven naar vrijdag 7 mei: 6 mei is Hemelvaartsdag"),
])
def test_the_30_day_consultation_term_moves_off_a_holiday_and_says_why(world, clock, opened, due, moved_from, note):
    clock.at = at(*opened, 10)
    case = _consultation(world)
    [term] = case["deadlines"]
    assert term["due_at"].startswith(due) or _local_day(term["due_at"]) == due
    assert term["moved"]["from"] == moved_from and term["moved"]["reason"] == "holiday"
    assert term["moved"]["note"] == note and term["moved"]["note_en"].startswith("moved to ")


def _local_day(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(AMS).date().isoformat()


def test_a_term_off_a_working_day_keeps_its_day_and_says_nothing(world, clock):
    clock.at = at(2027, 1, 4, 10)  # + 30 days = Wednesday 3 February
    [term] = _consultation(world)["deadlines"]
    assert _local_day(term["due_at"]) == "2027-02-03" and term["moved"] is None


def test_the_case_page_says_why_a_due_date_moved(world, clock):
    from flows import browser

    clock.at = at(2026, 11, 26, 10)
    case = _consultation(world)
    html = browser(world, "rso").get(f"/cases/{case['id']}").get_data(as_text=True)
    assert "verschoven naar maandag 28 december: 26 december is Tweede Kerstdag" in html
    client = browser(world, "rso")
    with client.session_transaction() as session:
        session["lang"] = "en"
    html = client.get(f"/cases/{case['id']}").get_data(as_text=True)
    assert "moved to Monday 28 December: 26 December is Boxing Day" in html


def test_the_aios_sees_the_last_day_of_the_dispute_window_on_the_decision(world, clock):
    from flows import browser

    clock.at = at(2027, 1, 4, 10)
    gbt = _gbt(world, "2027-01-02")
    html = browser(world, "aios").get(f"/cases/{gbt['id']}").get_data(as_text=True)
    assert "Geschil mogelijk tot en met" in html and "maandag 1 februari 2027" in html
    assert "verschoven naar maandag 1 februari: 30 januari is een zaterdag" in html


def test_the_api_gives_the_last_day_of_the_dispute_window_and_why_it_moved(world, clock):
    clock.at = at(2027, 1, 4, 10)
    gbt = _gbt(world, "2027-01-02")
    [term] = ok(world.api("aios").get(f"/cases/{gbt['id']}"))["terms"]
    assert term["name"] == "dispute_window" and term["ends_on"] == "2027-02-01"
    assert term["moved"]["from"] == "2027-01-30" and term["moved"]["reason"] == "saturday"
    assert ok(world.api("rso").post("/cases", json={"workflow": "rso_consultation", "institution": "meander",
                                                    "data": {"shortcoming": "x", "requirement": "quality"}}),
              201)["terms"] == []


def test_the_dispute_window_function_counts_from_the_decision(world, clock):
    from engine.models import Case
    from web.extensions import db
    from workflows.guards import dispute_window_closes

    clock.at = at(2027, 1, 4, 10)
    gbt = _gbt(world, "2027-01-02")
    with world.app.app_context():
        case = db.session.get(Case, gbt["id"])
        engine = world.app.extensions["traject"]
        assert dispute_window_closes(engine, db.session, case) == date(2027, 2, 1)
        assert dispute_window_closes(engine, db.session, case, date(2027, 1, 4)) == date(2027, 2, 1)
        assert dispute_window_closes(engine, db.session, case, date(2027, 1, 5)) == date(2027, 2, 2)


def test_the_terms_in_letters_are_the_region_configuration():
    from workflows import load_definitions, load_region, make_registry
    from workflows.terms import term_text

    region = load_region()
    region["workflows"]["intensified_guidance"]["terms"]["dispute_window"] = {"after": {"days": 30}, "roll": "none"}
    region["workflows"]["dispute"]["deadlines"]["mediation"]["after"] = {"weeks": 8}
    found = {d.key: d for d in load_definitions(make_registry(), region=region)}
    window = found["intensified_guidance"].terms["dispute_window"]
    assert term_text(window["after"]) == "30 dagen" and window["roll"] == "none"
    mediation = next(d for t in found["dispute"].transitions for d in t.deadlines if d["kind"] == "mediation")
    assert term_text(mediation["due"]["after"]) == "8 weken" and term_text(mediation["due"]["after"], "en") == "8 weeks"


def test_the_receipt_quotes_the_configured_mediation_term(world, clock):
    from flows import fire

    clock.at = at(2027, 1, 4, 10)
    _dispute(world, _gbt(world, "2027-01-04"), 201)
    dispute = ok(world.api("coc").get("/cases?workflow=dispute"))["items"][0]
    dispute = fire(world.api("coc"), dispute, "acknowledge")
    [receipt] = [d for d in dispute["documents"] if d["kind"] == "receipt_confirmation"]
    assert receipt["content"]["mediation_term"] == "6 weken"
