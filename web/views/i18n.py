"""Dutch by default, English on request; dates and times in the region's time zone.

Every UI string goes through gettext (msgids are English; web/translations/nl holds
the Dutch). Labels that come from workflow definitions are bilingual data
(`label` Dutch, `label_en` English) and are picked here, never translated.
"""
from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import current_app, session
from flask_babel import format_date, format_datetime, get_locale, lazy_gettext as _l
from flask_login import current_user

from engine.calendar import local_date
from engine.fields import parse_date
from workflows import roles

LANGUAGES = ("nl", "en")
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"


def select_locale() -> str:
    """The session's choice, else the user's stored language, else Dutch."""
    lang = session.get("lang")
    if lang in LANGUAGES:
        return lang
    if current_user and current_user.is_authenticated and current_user.language in LANGUAGES:
        return current_user.language
    return "nl"


def is_english() -> bool:
    locale = get_locale()
    return locale is not None and locale.language == "en"


def pick(nl: str | None, en: str | None) -> str:
    """A definition's bilingual text in the current language (falls back to the other)."""
    if is_english():
        return en or nl or ""
    return nl or en or ""


def label(spec, fallback: str = "") -> str:
    """`label`/`label_en` of a dict (field, state) or an object (Step)."""
    if spec is None:
        return fallback
    if isinstance(spec, dict):
        return pick(spec.get("label"), spec.get("label_en")) or fallback
    return pick(getattr(spec, "label", ""), getattr(spec, "label_en", "")) or fallback


def title(spec, fallback: str = "") -> str:
    if isinstance(spec, dict):
        return pick(spec.get("title"), spec.get("title_en")) or fallback
    return pick(getattr(spec, "title", ""), getattr(spec, "title_en", "")) or fallback


def state_label(definition, state: str) -> str:
    try:
        return label(definition.state(state), humanize(state))
    except StopIteration:
        return humanize(state)


def humanize(code: str) -> str:
    return (code or "").replace("_", " ").capitalize()


# What people call the roles: the catalogue's English labels (workflows/roles.py), translated when shown.
ROLE_LABELS = {key: _l(text) for key, text in roles.LABELS.items()}


def deadline_label(deadline, definition) -> str:
    """The stored (Dutch) label; in English the definition's label_en of the same deadline, if it has one."""
    if is_english():
        for step in [definition.open, *definition.transitions]:
            for spec in step.deadlines:
                if spec["kind"] == deadline.kind and (spec.get("label") or "") == (deadline.label or "") \
                        and spec.get("label_en"):
                    return spec["label_en"]
    return deadline.label or humanize(deadline.kind)


def role_label(role: str) -> str:
    return str(ROLE_LABELS.get(role, humanize(role)))


# Choice values are codes in the definitions; people read these.
CHOICE_LABELS = {
    "progress_meeting": _l("Progress meeting"),
    "suitability_assessment": _l("Suitability assessment"),
    "final_assessment": _l("Final assessment"),
    "suitable": _l("Suitable"),
    "extend": _l("Extend the training"),
    "unsuitable": _l("Unsuitable"),
    "shop_floor": _l("Shop floor"),
    "quality_instrument": _l("Quality instrument"),
    "visitation": _l("Visitation"),
    "aios": _l("An aios"),
    "other": _l("Other"),
    "illness": _l("Illness"),
    "leave": _l("Leave"),
}


def choice_label(value) -> str:
    text = CHOICE_LABELS.get(value)
    return str(text) if text is not None else humanize(str(value))


VERDICTS = {"agreed": _l("agreed"), "seen_not_agreed": _l("seen, not agreed")}
DEADLINE_STATUS = {
    "pending": _l("open"),
    "reminded": _l("reminder sent"),
    "overdue": _l("overdue"),
    "met": _l("met"),
    "cancelled": _l("cancelled"),
}


# -- dates and times --------------------------------------------------------------------


def fmt_datetime(value) -> str:
    if not isinstance(value, datetime):
        return ""
    return format_datetime(value, "d MMM yyyy HH:mm")


def fmt_date(value) -> str:
    if isinstance(value, str):
        value = parse_date(value)
    if isinstance(value, datetime):
        return format_datetime(value, "d MMM yyyy")
    if isinstance(value, date):
        return format_date(value, "d MMM yyyy")
    return ""


def fmt_month(value: date) -> str:
    return format_date(value, "MMM yy")


def today(now: datetime) -> date:
    return local_date(now, current_app.config["TRAJECT_TIMEZONE"])


def remaining(due_at: datetime, status: str, now: datetime) -> tuple[str, str]:
    """("in 12 days" / "3 days overdue" / "today", css class) for a deadline."""
    from flask_babel import gettext, ngettext

    if status in ("met", "cancelled"):
        return str(DEADLINE_STATUS[status]), "done"
    days = (today(due_at) - today(now)).days
    if due_at < now and days <= 0:
        late = max(-days, 0)
        if late == 0:
            return gettext("overdue since today"), "late"
        return ngettext("%(num)d day overdue", "%(num)d days overdue", late), "late"
    if days == 0:
        return gettext("due today"), "soon"
    text = ngettext("%(num)d day left", "%(num)d days left", days)
    return text, "soon" if days <= 14 else "ok"


# -- catalogs ---------------------------------------------------------------------------


def compile_catalogs(directory: Path = TRANSLATIONS) -> list[Path]:
    """Compile each messages.po whose .mo is missing or older (a fresh checkout has both)."""
    written = []
    for po in directory.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        try:
            with po.open("rb") as f:
                catalog = read_po(f, locale=po.parent.parent.name)
            with mo.open("wb") as f:
                write_mo(f, catalog)
            written.append(mo)
        except OSError:  # a read-only installation keeps the committed .mo
            continue
    return written
