"""Attachments are rendered at delivery, from the outbox row's `attachments` entries.

An entry is {"type": <name>, ...}; a renderer registered for the type turns it into
(filename, MIME type, bytes). Built in:
- `ics`: a calendar entry (icalendar) for a deadline {"deadline_id": n} — UID stable per
  deadline, so a second copy updates the entry instead of adding one — or for a meeting
  {"meeting": {"uid", "start", "end", "summary", "location"?, "description"?}};
- `document_pdf`: {"document_id": n}, rendered by notifications/pdf.py (imported only when
  needed; if it is missing the notification waits with a retryable error).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from engine.models import Case, Deadline, DeadlineStatus

from . import pdf
from .backends import Attachment, DeliveryError


@dataclass
class RenderContext:
    """What a renderer may need besides the entry."""

    now: datetime  # the notification's creation: DTSTAMP, so a retry renders the same bytes
    timezone: str = "Europe/Amsterdam"
    language: str = "nl"


Renderer = Callable[[Session, dict, RenderContext], tuple[str, str, bytes]]
RENDERERS: dict[str, Renderer] = {}


def register(type_: str):
    def decorate(fn: Renderer) -> Renderer:
        RENDERERS[type_] = fn
        return fn

    return decorate


def render(session: Session, entry: dict, ctx: RenderContext) -> Attachment:
    if not isinstance(entry, dict) or entry.get("type") not in RENDERERS:
        kind = entry.get("type") if isinstance(entry, dict) else entry
        raise DeliveryError(f"unknown attachment type {kind!r}", retry=False)
    filename, mimetype, content = RENDERERS[entry["type"]](session, entry, ctx)
    return Attachment(filename, mimetype, content)


# -- ics ------------------------------------------------------------------------

PRODID = "-//Traject//Traject deadlines//NL"


@register("ics")
def ics(session: Session, entry: dict, ctx: RenderContext) -> tuple[str, str, bytes]:
    from icalendar import Alarm, Calendar, Event

    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    event = Event()
    event.add("dtstamp", ctx.now)
    if "deadline_id" in entry:
        deadline = session.get(Deadline, int(entry["deadline_id"]))
        if deadline is None:
            raise DeliveryError(f"deadline {entry['deadline_id']} does not exist", retry=False)
        case = session.get(Case, deadline.case_id)
        tz = ZoneInfo(ctx.timezone)
        due_local = deadline.due_at.astimezone(tz)
        cancelled = deadline.status in (DeadlineStatus.MET, DeadlineStatus.CANCELLED)
        cal.add("method", "CANCEL" if cancelled else "PUBLISH")
        event.add("uid", f"deadline-{deadline.id}@traject")
        event.add("sequence", 1 if cancelled else 0)
        event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
        label = deadline.label or deadline.kind
        event.add("summary", f"Termijn: {label}" if ctx.language == "nl" else f"Deadline: {label}")
        # A whole-day entry on the due day; the exact moment (23:59 local) is in the text.
        event.add("dtstart", due_local.date())
        event.add("dtend", due_local.date() + timedelta(days=1))
        title = (case.title if case else "") or ""
        if ctx.language == "nl":
            description = f"Uiterlijk {due_local:%d-%m-%Y %H:%M} ({ctx.timezone}). Dossier {deadline.case_id} {title}"
        else:
            description = f"Due by {due_local:%Y-%m-%d %H:%M} ({ctx.timezone}). Case {deadline.case_id} {title}"
        event.add("description", description.strip())
        event.add("transp", "TRANSPARENT")
        for days in deadline.reminder_days or []:
            alarm = Alarm()
            alarm.add("action", "DISPLAY")
            alarm.add("description", event["summary"])
            alarm.add("trigger", timedelta(days=-int(days)))
            event.add_component(alarm)
        filename = f"termijn-{deadline.id}.ics"
    elif "meeting" in entry:
        meeting = entry["meeting"]
        try:
            start = datetime.fromisoformat(meeting["start"])
            end = datetime.fromisoformat(meeting.get("end") or meeting["start"])
            uid = str(meeting["uid"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DeliveryError(f"invalid meeting entry: {exc}", retry=False) from exc
        if start.tzinfo is None or end.tzinfo is None:
            raise DeliveryError("meeting times need a time zone", retry=False)
        cal.add("method", "PUBLISH")
        event.add("uid", uid)
        event.add("summary", meeting.get("summary") or "Afspraak")
        event.add("dtstart", start.astimezone(ZoneInfo("UTC")))
        event.add("dtend", end.astimezone(ZoneInfo("UTC")))
        for key in ("location", "description"):
            if meeting.get(key):
                event.add(key, meeting[key])
        filename = "afspraak.ics"
    else:
        raise DeliveryError("an ics attachment needs deadline_id or meeting", retry=False)
    cal.add_component(event)
    return filename, "text/calendar", cal.to_ical()


# -- document_pdf ---------------------------------------------------------------------

@register("document_pdf")
def document_pdf(session: Session, entry: dict, ctx: RenderContext) -> tuple[str, str, bytes]:
    try:
        document_id = int(entry["document_id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DeliveryError("a document_pdf attachment needs document_id", retry=False) from exc
    try:
        filename, content = pdf.document_pdf(session, document_id)
    except LookupError as exc:  # the document does not exist: trying again will not help
        raise DeliveryError(str(exc), retry=False) from exc
    return filename, "application/pdf", content
