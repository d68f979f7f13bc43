"""Terms: calendar months (dateutil), weeks, days or working days; ends of days in local time.

Which days are not working days is data: a `WorkingCalendar` is built from holiday rules the
caller gives (workflows/ gives the Algemene termijnenwet's list and the region's extra days). The
engine knows only the shapes of such rules: a fixed day of the year (optionally moved when it falls
on a Sunday), a day counted from Easter, or one dated day.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from dateutil.easter import easter
from dateutil.relativedelta import relativedelta

SATURDAY, SUNDAY = 5, 6
ROLL_NEXT_WORKING_DAY = "next_working_day"
ROLLS = ("none", ROLL_NEXT_WORKING_DAY)


@dataclass(frozen=True)
class Closed:
    """Why a day is not a working day: `kind` is saturday, sunday or holiday (then with its names)."""

    kind: str
    name: str = ""
    name_en: str = ""


@dataclass(frozen=True)
class Rolled:
    """A term's end: `day`, and `rolled_from` (the day it would have ended on) when it was moved."""

    day: date
    rolled_from: date | None = None


def _rule_day(rule: dict, year: int) -> date | None:
    if "easter" in rule:
        return easter(year) + timedelta(days=int(rule["easter"]))
    if "date" in rule:  # one dated day, e.g. a configured extra day
        day = rule["date"] if isinstance(rule["date"], date) else date.fromisoformat(str(rule["date"]))
        return day if day.year == year else None
    month, day_of_month = (int(part) for part in str(rule["day"]).split("-"))
    day = date(year, month, day_of_month)
    if day.weekday() == SUNDAY and rule.get("if_sunday"):
        day += timedelta(days=int(rule["if_sunday"]))
    return day


class WorkingCalendar:
    """Saturdays, Sundays and the holidays of the given rules are not working days.

    A rule is a dict with `name` (and `name_en`) and one of `day: "MM-DD"` (every year; `if_sunday: -1`
    moves it a day back when it falls on a Sunday), `easter: n` (n days after Easter Sunday) or
    `date: YYYY-MM-DD` (that day only).
    """

    def __init__(self, rules=()):
        self.rules = tuple(dict(rule) for rule in rules)
        for rule in self.rules:
            if not any(key in rule for key in ("day", "easter", "date")):
                raise ValueError(f"a holiday rule needs day, easter or date: {rule!r}")
            _rule_day(rule, 2000)  # a malformed rule fails here, at start-up, not in a transition
        self._year = lru_cache(maxsize=256)(self._holidays)

    def _holidays(self, year: int) -> dict[date, Closed]:
        found: dict[date, Closed] = {}
        for rule in self.rules:
            day = _rule_day(rule, year)
            if day is not None and day not in found:
                name = str(rule.get("name") or day.isoformat())
                found[day] = Closed("holiday", name, str(rule.get("name_en") or name))
        return found

    def holidays(self, year: int) -> dict[date, Closed]:
        return dict(self._year(year))

    def closed(self, day: date) -> Closed | None:
        """Why `day` is not a working day, or None when it is one."""
        holiday = self._year(day.year).get(day)
        if holiday is not None:
            return holiday
        if day.weekday() == SATURDAY:
            return Closed("saturday")
        if day.weekday() == SUNDAY:
            return Closed("sunday")
        return None

    def is_working_day(self, day: date) -> bool:
        return self.closed(day) is None

    def next_working_day(self, day: date) -> date:
        """`day` itself when it is a working day, else the first working day after it."""
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def roll(self, day: date, how: str | None) -> Rolled:
        """A term's end under its `roll` rule (none, or next_working_day)."""
        if how == ROLL_NEXT_WORKING_DAY:
            moved = self.next_working_day(day)
            return Rolled(moved, day if moved != day else None)
        return Rolled(day)


WEEKENDS_ONLY = WorkingCalendar()


def add_term(start: date, months: int = 0, weeks: int = 0, days: int = 0, working_days: int = 0,
             calendar: WorkingCalendar = WEEKENDS_ONLY) -> date:
    """`start` plus calendar months, weeks and days, then `working_days` working days of `calendar`."""
    # relativedelta clamps to the month's end: 31 January + 1 month = 28/29 February.
    result = start + relativedelta(months=months) + timedelta(weeks=weeks, days=days)
    counted = 0
    while counted < working_days:
        result += timedelta(days=1)
        if calendar.is_working_day(result):
            counted += 1
    return result


def term_end(start: date, term: dict, roll: str | None, calendar: WorkingCalendar) -> Rolled:
    """The end of a term ({months, weeks, days, working_days}) counted from `start`, rolled by `roll`."""
    parts = {key: int(term.get(key) or 0) for key in ("months", "weeks", "days", "working_days")}
    return calendar.roll(add_term(start, calendar=calendar, **parts), roll)


def end_of_day(day: date, tz_name: str) -> datetime:
    """A term that ends on a day ends at 23:59 local time on that day, stored in UTC."""
    local = datetime.combine(day, time(23, 59), tzinfo=ZoneInfo(tz_name))
    return local.astimezone(timezone.utc)


def local_date(moment: datetime, tz_name: str) -> date:
    return moment.astimezone(ZoneInfo(tz_name)).date()


def months_between_ok(start: date, last_day: date, minimum: int, maximum: int) -> bool:
    """True when a period from `start` through `last_day` (inclusive: a Dutch "einddatum" is the last day)
    lasts at least `minimum` and at most `maximum` calendar months: 1 Feb–30 Apr is three months,
    1 Dec–31 May six, 1 Dec–1 Jun more than six (CONTRACT.md section 4)."""
    after = last_day + timedelta(days=1)
    return add_term(start, months=minimum) <= after <= add_term(start, months=maximum)


def last_day_of_term(start: date, months: int) -> date:
    """The last day of a period of `months` calendar months that begins on `start`."""
    return add_term(start, months=months) - timedelta(days=1)


def midpoint(start: date, last_day: date) -> date:
    """The middle day of the period from `start` through `last_day`, both included."""
    return start + timedelta(days=((last_day - start).days + 1) // 2)
