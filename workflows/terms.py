"""Dutch term arithmetic as data: the Algemene termijnenwet's holidays, the region's extra days, and
the words a moved due date or a term is written in.

The Algemene termijnenwet (art. 3) counts as holidays: New Year's Day, Easter Monday and Whit Monday,
both Christmas days, Ascension Day, the day the King's birthday is celebrated and 5 May — every year,
not only in the lustrum years python-holidays' public category knows — and, by the decree that
equates it, Good Friday. Easter and Whit Sunday are Sundays anyway.
"""
from __future__ import annotations

from datetime import date

from engine.calendar import Closed, WorkingCalendar

ATW_HOLIDAYS = (
    {"key": "new_year", "day": "01-01", "name": "Nieuwjaarsdag", "name_en": "New Year's Day"},
    {"key": "good_friday", "easter": -2, "name": "Goede Vrijdag", "name_en": "Good Friday"},
    {"key": "easter_monday", "easter": 1, "name": "Tweede Paasdag", "name_en": "Easter Monday"},
    # Koningsdag: 27 April, or the 26th when the 27th is a Sunday (Wet vaststelling Koningsdag).
    {"key": "kings_day", "day": "04-27", "if_sunday": -1, "name": "Koningsdag", "name_en": "King's Day"},
    {"key": "liberation_day", "day": "05-05", "name": "Bevrijdingsdag", "name_en": "Liberation Day"},
    {"key": "ascension", "easter": 39, "name": "Hemelvaartsdag", "name_en": "Ascension Day"},
    {"key": "whit_monday", "easter": 50, "name": "Tweede Pinksterdag", "name_en": "Whit Monday"},
    {"key": "christmas", "day": "12-25", "name": "Eerste Kerstdag", "name_en": "Christmas Day"},
    {"key": "boxing_day", "day": "12-26", "name": "Tweede Kerstdag", "name_en": "Boxing Day"},
)


def working_calendar(region: dict | None) -> WorkingCalendar:
    """Saturdays, Sundays, the Atw holidays and the region's `calendar.extra_days`.

    An extra day is a date (`2027-12-24`) or `{date, name, name_en}`; a mistake stops the start.
    """
    extra = []
    for entry in ((region or {}).get("calendar") or {}).get("extra_days") or []:
        entry = entry if isinstance(entry, dict) else {"date": entry}
        extra.append({"name": "extra vrije dag", "name_en": "extra day off", **entry})
    return WorkingCalendar(ATW_HOLIDAYS + tuple(extra))


# -- words --------------------------------------------------------------------------------------

MONTHS = {
    "nl": ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
           "november", "december"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
}
WEEKDAYS = {
    "nl": ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
UNITS = {  # singular, plural
    "nl": {"months": ("maand", "maanden"), "weeks": ("week", "weken"), "days": ("dag", "dagen"),
           "working_days": ("werkdag", "werkdagen")},
    "en": {"months": ("month", "months"), "weeks": ("week", "weeks"), "days": ("day", "days"),
           "working_days": ("working day", "working days")},
}


def _lang(lang: str) -> str:
    return "en" if lang == "en" else "nl"


def day_month(day: date, lang: str = "nl") -> str:
    """'30 januari' / '30 January'."""
    return f"{day.day} {MONTHS[_lang(lang)][day.month - 1]}"


def long_date(day: date, lang: str = "nl") -> str:
    """'maandag 1 februari 2027' / 'Monday 1 February 2027'."""
    return f"{WEEKDAYS[_lang(lang)][day.weekday()]} {day_month(day, lang)} {day.year}"


def term_text(term: dict, lang: str = "nl") -> str:
    """A term ({months, weeks, days, working_days}) in words: '4 weken', '5 werkdagen', '1 month and 2 days'."""
    units = UNITS[_lang(lang)]
    parts = [f"{n} {units[key][n != 1]}" for key in ("months", "weeks", "days", "working_days")
             if (n := int(term.get(key) or 0))]
    joiner = " en " if _lang(lang) == "nl" else " and "
    return joiner.join(parts) or f"0 {units['days'][1]}"


def why_closed(closed: Closed, lang: str = "nl") -> str:
    if closed.kind == "holiday":
        return closed.name_en if _lang(lang) == "en" else closed.name
    index = 5 if closed.kind == "saturday" else 6
    article = "a " if _lang(lang) == "en" else "een "
    return article + WEEKDAYS[_lang(lang)][index]


def moved_note(day: date, rolled_from: date, calendar: WorkingCalendar, lang: str = "nl") -> str:
    """'verschoven naar maandag 1 februari: 30 januari is een zaterdag' (and in English)."""
    closed = calendar.closed(rolled_from) or Closed("holiday", "geen werkdag", "not a working day")
    target = f"{WEEKDAYS[_lang(lang)][day.weekday()]} {day_month(day, lang)}"
    if _lang(lang) == "en":
        return f"moved to {target}: {day_month(rolled_from, 'en')} is {why_closed(closed, 'en')}"
    return f"verschoven naar {target}: {day_month(rolled_from, 'nl')} is {why_closed(closed, 'nl')}"


def moved(day: date, rolled_from: date | None, calendar: WorkingCalendar) -> dict | None:
    """A moved due date as the API and the pages show it, or None when it was not moved."""
    if rolled_from is None:
        return None
    closed = calendar.closed(rolled_from)
    return {"from": rolled_from.isoformat(), "reason": closed.kind if closed else "holiday",
            "note": moved_note(day, rolled_from, calendar, "nl"), "note_en": moved_note(day, rolled_from, calendar, "en")}
