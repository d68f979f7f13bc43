"""Terms: calendar months (dateutil), days, or Dutch working days; ends of days in local time."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
from dateutil.relativedelta import relativedelta


@lru_cache(maxsize=64)
def _dutch_holidays(year: int):
    return holidays.country_holidays("NL", years=year)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _dutch_holidays(day.year)


def add_term(start: date, months: int = 0, days: int = 0, working_days: int = 0) -> date:
    # relativedelta clamps to the month's end: 31 January + 1 month = 28/29 February.
    result = start + relativedelta(months=months) + timedelta(days=days)
    counted = 0
    while counted < working_days:
        result += timedelta(days=1)
        if is_working_day(result):
            counted += 1
    return result


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
