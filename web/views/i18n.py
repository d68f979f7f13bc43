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

from engine.builtins import deadline_words
from engine.calendar import local_date
from engine.fields import parse_date
from workflows import roles, vocabulary

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
    """A state's words. Loading refuses a definition with an unlabelled state (engine.definitions.missing_labels),
    so the bare code shows only for a state no version of the workflow has (never a capitalised code)."""
    try:
        return label(definition.state(state), state)
    except StopIteration:
        return state


# What people call the roles: the catalogue's English labels (workflows/roles.py), translated when shown.
ROLE_LABELS = {**{key: _l(text) for key, text in roles.LABELS.items()}, "owner": _l("Owner of the level")}


def deadline_label(deadline, definition) -> str:
    """The stored (Dutch) label; in English the label_en of the definition's deadline with that kind and label.

    Retention replaces a label by the kind: the definition's words stand in for it then.
    """
    stored = deadline.label if deadline.label and deadline.label != deadline.kind else ""
    if stored and not is_english():
        return stored
    for step in [definition.open, *definition.transitions]:
        for spec in step.deadlines:
            if spec["kind"] == deadline.kind and (not stored or spec.get("label") == stored):
                return label(spec, stored or deadline.kind)
    words = step_deadline_label(definition, deadline.kind)
    if words == deadline.kind and stored:
        return stored
    return words + stored[stored.index(":"):] if ": " in stored else words  # an action keeps its description


def step_deadline_label(definition, kind: str) -> str:
    """The definition's words for a deadline kind; one made per item ("action_2") is "Actie 2"."""
    return pick(*deadline_words(definition, kind))


def role_label(role: str) -> str:
    text = ROLE_LABELS.get(role)
    if text is not None:
        return str(text)
    words = vocabulary.ROLE_WORDS.get(role)
    return pick(*words) if words else str(role)


def is_choice_code(value) -> bool:
    return isinstance(value, str) and value in vocabulary.CHOICES


def choice_label(value) -> str:
    """A choice value's words (workflows/vocabulary.py; a choice among roles reads as the role)."""
    words = vocabulary.CHOICES.get(value)
    if words:
        return pick(*words)
    return role_label(value) if value in ROLE_LABELS or value in vocabulary.ROLE_WORDS else str(value)


# What the audit trail's events are called (engine/audit.py, engine/deadlines.py, engine/privacy.py).
EVENT_LABELS = {
    "opened": _l("Case opened"),
    "transition": _l("Step taken"),
    "document_added": _l("Document written"),
    "document_signed": _l("Document signed"),
    "deadline_reminder": _l("Reminder sent"),
    "deadline_overdue": _l("Term passed"),
    "escalated_automatically": _l("Escalated automatically"),
    "legal_hold_placed": _l("Legal hold placed"),
    "legal_hold_lifted": _l("Legal hold lifted"),
    "pseudonymised": _l("Personal data pseudonymised"),
    "erased": _l("Content erased after the retention term"),
    "note_added": _l("Note added"),
}


def event_label(type_: str) -> str:
    text = EVENT_LABELS.get(type_)
    return str(text) if text is not None else str(type_)


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
