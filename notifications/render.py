"""An outbox row becomes an e-mail: recipient, language, subject, text and HTML bodies, attachments.

Bodies come from Jinja2 templates in templates/mail/<language>/: `<kind>.txt` and
`<kind>.html` when the kind has its own, else `_generic.txt`/`_generic.html`. The
language is the recipient's (`user_account.language`), Dutch for external addresses and
whenever a template is missing in the recipient's language. A `<kind>.subject.txt`
template, when present, gives the subject; otherwise English readers get the
definition's `subject_en` and everyone else the row's (Dutch) subject.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Mapping
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, TemplateNotFound, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import Case, Notification, User
from engine.outbox import DIGEST_KIND, safe_format

from . import attachments, story
from .letters import weeks_after
from .backends import DeliveryError, OutgoingMessage

TEMPLATES = Path(__file__).parent / "templates" / "mail"
LANGUAGES = ("nl", "en")
MONTHS = {
    "nl": ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
           "november", "december"],
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"],
}


@dataclass
class MailSettings:
    sender: str = "Traject <noreply@traject.invalid>"
    base_url: str = "http://127.0.0.1:5000"
    timezone: str = "Europe/Amsterdam"
    digest_hour: int = 7  # local hour of the daily digest (notifications/digest.py)

    @classmethod
    def from_config(cls, config: Mapping) -> "MailSettings":
        return cls(sender=config.get("MAIL_FROM") or cls.sender,
                   base_url=(config.get("TRAJECT_BASE_URL") or cls.base_url).rstrip("/"),
                   timezone=config.get("TRAJECT_TIMEZONE") or cls.timezone,
                   digest_hour=int(config.get("TRAJECT_DIGEST_HOUR", cls.digest_hour)))


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["date"] = _date
    env.filters["weeks_after"] = weeks_after
    env.filters["time"] = lambda value: value.strftime("%H:%M") if isinstance(value, datetime) else ""
    return env


def _date(value, lang: str = "nl") -> str:
    if isinstance(value, str) and len(value) >= 10:
        try:
            value = date.fromisoformat(value[:10])
        except ValueError:
            return value
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        return str(value or "")
    return f"{value.day} {MONTHS.get(lang, MONTHS['nl'])[value.month - 1]} {value.year}"


_env: Environment | None = None


def environment() -> Environment:
    global _env
    if _env is None:
        _env = _environment()
    return _env


def _template(lang: str, kind: str, suffix: str, fallback: bool = True):
    env = environment()
    names = [f"{lang}/{kind}.{suffix}", f"nl/{kind}.{suffix}"]
    if fallback:
        names += [f"{lang}/_generic.{suffix}", f"nl/_generic.{suffix}"]
    try:
        return env.select_template(names)
    except TemplateNotFound:
        return None


def _notify_spec(definition, kind: str) -> dict:
    for step in [definition.open, *definition.transitions]:
        for spec in step.notify:
            if spec.get("kind") == kind:
                return spec
    return {}


def compose(session: Session, n: Notification, settings: MailSettings, engine=None) -> OutgoingMessage:
    """Render one outbox row. Raises DeliveryError when it cannot be sent as it stands.

    1. `_recipient`: address, language and name (an inactive user or no address: a dead letter);
    2. `_case_context`: the case as the reader sees it, in their language, and its definition;
    3. `_deadline_context`: the deadline a reminder or overdue message is about;
    4. `_subject`: the row's subject, in English where the reader reads English;
    5. the templates: subject (when the kind has one), text and HTML bodies; the attachments.
    """
    address, lang, name = _recipient(session, n)
    data = n.data or {}
    case = session.get(Case, n.case_id) if n.case_id else None
    case_ctx, definition = _case_context(case, lang, engine)
    tz = ZoneInfo(settings.timezone)
    context = {
        "lang": lang,
        "kind": n.kind,
        "recipient": {"name": name, "email": address},
        "case": case_ctx,
        "deadline": _deadline_context(data, lang, tz, n.created_at),
        "body": n.body_text or "",
        "data": data,
        # Only a recipient with an account can open a page of Traject (the RGS cannot).
        "link": (f"{settings.base_url}/cases/{case.id}" if case is not None else settings.base_url)
        if n.recipient_user_id else None,
        "base_url": settings.base_url,
        "salutation": _salutation(n, name, lang),
    }
    if case is not None:
        context.update(story.context(session, n, case, case_ctx, definition, lang, tz))
    if n.kind == DIGEST_KIND:
        context["items"] = _digest_items(session, n, settings, engine, lang, tz)
        context["settings_link"] = f"{settings.base_url}/account/mail"
    subject = _subject(n, data, lang, definition, case_ctx)
    subject_template = _template(lang, n.kind, "subject.txt", fallback=False)
    if subject_template is not None:
        subject = " ".join(subject_template.render(subject=subject, **context).split())
    context["subject"] = subject
    text = _template(lang, n.kind, "txt").render(**context)
    html = _template(lang, n.kind, "html").render(**context)

    created = n.created_at
    files = [attachments.render(session, entry, attachments.RenderContext(now=created, timezone=settings.timezone,
                                                                          language=lang))
             for entry in (n.attachments or [])]
    return OutgoingMessage(notification_id=n.id, idempotency_key=n.idempotency_key, sender=settings.sender,
                           to=address, subject=subject[:300], text=text, html=html, attachments=files,
                           created_at=created)


def _recipient(session: Session, n: Notification) -> tuple[str, str, str]:
    name = ""
    if n.recipient_user_id:
        # Columns, not the User entity: its roles would be loaded too, for nothing.
        user = session.execute(select(User.email, User.name, User.language, User.active)
                               .where(User.id == n.recipient_user_id)).one_or_none()
        if user is None or not user.active or not user.email:
            raise DeliveryError(f"recipient user {n.recipient_user_id} is inactive or has no e-mail address",
                                retry=False)
        address, lang, name = user.email, user.language or "nl", user.name
    elif n.recipient_address:
        address, lang = n.recipient_address, "nl"
    else:
        raise DeliveryError("no recipient", retry=False)
    return address, (lang if lang in LANGUAGES else "nl"), name


def _case_context(case: Case | None, lang: str, engine) -> tuple[dict | None, object]:
    if case is None:
        return None, None
    definition = engine.definition(case.definition) if engine is not None else None
    state = definition.state(case.state) if definition and case.state in definition.state_names else {}
    workflow = (definition.title_en if lang == "en" else definition.title) if definition else case.workflow_key
    return {
        "id": case.id,
        "title": case.title or workflow,
        "workflow": workflow,
        "state": (state.get("label_en") if lang == "en" else state.get("label")) or case.state,
        "institution": case.institution.name if case.institution else "",
    }, definition


def _deadline_context(data: dict, lang: str, tz: ZoneInfo, written: datetime | None = None) -> dict | None:
    """`days_left` counts calendar days from the day the reminder was written to the due day: the
    reminder's configured offset (`days_before`) is not it when the deadline was set closer than that."""
    if not data.get("deadline_id"):
        return None
    due = datetime.fromisoformat(data["due_at"].replace("Z", "+00:00")).astimezone(tz) if data.get("due_at") \
        else None
    days_left = (due.date() - written.astimezone(tz).date()).days if due and written else data.get("days_before")
    return {"id": data["deadline_id"], "kind": data.get("deadline_kind"),
            "label": (data.get("label_en") if lang == "en" else data.get("label")) or data.get("label"),
            "due": due, "days_before": data.get("days_before"), "days_left": days_left}


def _salutation(n: Notification, name: str, lang: str) -> str:
    """A person by name; the RGS (no account) as a committee; never "heer/mevrouw"."""
    if name:
        return f"Dear {name}," if lang == "en" else f"Beste {name},"
    if (n.recipient_role or "") == "external:rgs":
        return "Dear members of the RGS," if lang == "en" else "Geachte leden van de RGS,"
    return "Dear Sir or Madam," if lang == "en" else "Geachte heer, mevrouw,"


def _subject(n: Notification, data: dict, lang: str, definition, case_ctx: dict | None) -> str:
    if lang != "en":
        return n.subject
    subject_en = data.get("subject_en")
    if not subject_en and definition is not None and case_ctx is not None:
        spec_en = _notify_spec(definition, n.kind).get("subject_en")
        if spec_en:
            subject_en = safe_format(spec_en, title=case_ctx["title"], workflow=case_ctx["workflow"],
                                     case_id=case_ctx["id"])
    return subject_en or n.subject


def _digest_items(session: Session, n: Notification, settings: MailSettings, engine, lang: str,
                  tz: ZoneInfo) -> list[dict]:
    """The rows a digest collected, each told as its own mail would have: what, on which case, when, the link."""
    ids = [int(i) for i in (n.data or {}).get("items") or []]
    items = []
    for item in session.scalars(select(Notification).where(Notification.id.in_(ids)).order_by(Notification.id)):
        case = session.get(Case, item.case_id) if item.case_id else None
        if case is None:
            continue
        case_ctx, definition = _case_context(case, lang, engine)
        told = story.context(session, item, case, case_ctx, definition, lang, tz)  # the state as at the event
        items.append({"what": _subject(item, item.data or {}, lang, definition, case_ctx), "case": case_ctx,
                      "event": told["event"], "at": item.created_at.astimezone(tz),
                      "link": f"{settings.base_url}/cases/{case.id}"})
    return items
