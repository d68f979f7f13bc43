"""Terms in calendar months, days and Dutch working days; ends of days in Amsterdam time."""
from __future__ import annotations

from datetime import date, datetime, timezone

from hypothesis import given, strategies as st

from engine.calendar import add_term, end_of_day, last_day_of_term, midpoint, months_between_ok
from workflows.terms import working_calendar


def test_calendar_months_clamp_to_the_month_end():
    assert add_term(date(2026, 1, 31), months=1) == date(2026, 2, 28)
    assert add_term(date(2028, 1, 31), months=1) == date(2028, 2, 29)
    assert add_term(date(2026, 1, 31), months=3) == date(2026, 4, 30)


def test_the_three_to_six_month_rule_counts_the_end_date_as_the_last_day():
    # CONTRACT.md section 4: end_date + 1 day >= start + 3 months and <= start + 6 months
    assert months_between_ok(date(2026, 2, 1), date(2026, 4, 30), 3, 6)  # three months in Dutch
    assert not months_between_ok(date(2026, 2, 1), date(2026, 4, 29), 3, 6)
    assert months_between_ok(date(2025, 12, 1), date(2026, 5, 31), 3, 6)  # six months
    assert not months_between_ok(date(2025, 12, 1), date(2026, 6, 1), 3, 6)  # six months and a day
    start = date(2026, 1, 31)  # month ends clamp: 31 January + 3 months is 30 April
    assert months_between_ok(start, date(2026, 4, 29), 3, 6)
    assert not months_between_ok(start, date(2026, 4, 28), 3, 6)
    assert months_between_ok(start, date(2026, 7, 30), 3, 6)
    assert not months_between_ok(start, date(2026, 7, 31), 3, 6)


def test_the_middle_of_a_period_counts_both_ends():
    assert midpoint(date(2026, 3, 9), date(2026, 7, 8)) == date(2026, 5, 9)  # 122 days: day 62
    assert midpoint(date(2026, 1, 1), date(2026, 1, 1)) == date(2026, 1, 1)
    assert last_day_of_term(date(2026, 2, 1), 3) == date(2026, 4, 30)
    assert last_day_of_term(date(2025, 12, 1), 6) == date(2026, 5, 31)


def test_working_days_skip_weekends_and_dutch_holidays():
    atw = working_calendar({})
    assert not atw.is_working_day(date(2026, 4, 27))  # Koningsdag
    assert not atw.is_working_day(date(2026, 12, 25))
    # Friday 24 April 2026 + 1 working day: not Saturday, Sunday or Koningsdag (Monday 27th)
    assert add_term(date(2026, 4, 24), working_days=1, calendar=atw) == date(2026, 4, 28)
    assert add_term(date(2026, 4, 24), working_days=1) == date(2026, 4, 27)  # the engine alone: weekends only


def test_a_day_ends_at_23_59_amsterdam_time_in_winter_and_summer():
    assert end_of_day(date(2026, 1, 15), "Europe/Amsterdam") == datetime(2026, 1, 15, 22, 59, tzinfo=timezone.utc)
    assert end_of_day(date(2026, 7, 15), "Europe/Amsterdam") == datetime(2026, 7, 15, 21, 59, tzinfo=timezone.utc)
    # The night the clocks go forward (29 March 2026) and back (25 October 2026)
    assert end_of_day(date(2026, 3, 29), "Europe/Amsterdam").hour == 21
    assert end_of_day(date(2026, 10, 25), "Europe/Amsterdam").hour == 22


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)), st.integers(0, 24))
def test_adding_months_never_goes_backwards_and_stays_in_the_target_month(start, months):
    end = add_term(start, months=months)
    assert end >= start
    assert (end.year * 12 + end.month) - (start.year * 12 + start.month) == months
