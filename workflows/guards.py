"""Guards, effects and document validators specific to the Dutch training procedures."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from engine.calendar import add_term, local_date, months_between_ok
from engine.fields import parse_date
from engine.models import Case
from engine.registry import Context, Registry, unmet


def install(registry: Registry) -> Registry:
    registry.validator("term_months")(term_months)
    registry.effect("write_letter")(write_letter)
    registry.guard("within_weeks_of_decision")(within_weeks_of_decision)
    registry.guard("parent_is")(parent_is)
    registry.guard("subject_is_actor")(subject_is_actor)
    registry.guard("max_periods")(max_periods)
    return registry


MONTHS_NL = ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
             "november", "december")


def dutch_date(day) -> str:
    """9 juni 2026: how a date reads in a Dutch sentence (messages are plain text, not a page's locale)."""
    return f"{day.day} {MONTHS_NL[day.month - 1]} {day.year}"


def english_date(day) -> str:
    return f"{day.day} {day.strftime('%B')} {day.year}"


def term_months(ctx: Context, content: dict, start: str, end: str, min: int, max: int):
    """The GBT rule: end at least `min` and at most `max` calendar months after start."""
    a, b = parse_date(content.get(start)), parse_date(content.get(end))
    if a and b and not months_between_ok(a, b, min, max):
        return {
            f"content.{end}": (
                f"must lie at least {min} and at most {max} calendar months after the start date: between "
                f"{english_date(add_term(a, months=min))} and {english_date(add_term(a, months=max))} / "
                f"moet minstens {min} en hoogstens {max} kalendermaanden na de startdatum liggen: tussen "
                f"{dutch_date(add_term(a, months=min))} en {dutch_date(add_term(a, months=max))}"
            )
        }
    return None


def write_letter(ctx: Context, kind: str, to: list, notify_kind: str, subject: str, facts: dict):
    """A written notification (PDF): stored as a document with its sha256 and attached to the outbox rows.

    `facts` maps a letter field to a path in the case (see Context.value) or, after "=", a
    literal; the PDF is
    rendered from exactly this content, so the stored hash covers what was sent.
    """
    content = {name: path[1:] if path.startswith("=") else ctx.value(path) for name, path in facts.items()}
    content = {k: _plain(v, ctx.config.timezone) for k, v in content.items() if v is not None}
    doc = ctx.engine.write_document(ctx, kind, content)
    seq = ctx.case.audit_seq + 1  # the event this effect belongs to
    sent = sum(ctx.engine.send_document(ctx, doc, recipient, notify_kind, subject, seq) for recipient in to)
    return {"document_id": doc.id, "kind": kind, "sha256": doc.sha256, "recipients": sent}


def _plain(value, tz: str):
    """Letters hold JSON: moments become local 'YYYY-MM-DD HH:MM' text."""
    if isinstance(value, datetime):
        return value.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")
    return value


def _parent(ctx: Context) -> Case | None:
    pid = ctx.case.parent_id
    return ctx.session.get(Case, pid) if pid else None


def decision_date(case: Case, tz: str):
    """The decision a dispute is about: a termination's moment, else the recorded decision date."""
    if case.state == "terminated" and case.closed_at:
        return local_date(case.closed_at, tz)
    return parse_date((case.data or {}).get("decision_date")) or local_date(case.opened_at, tz)


def within_weeks_of_decision(ctx: Context, weeks: int):
    parent = _parent(ctx)
    if parent is None:
        return None  # parent_is reports the missing decision
    closes = decision_date(parent, ctx.config.timezone) + timedelta(weeks=weeks)
    if local_date(ctx.now, ctx.config.timezone) <= closes:
        return None
    return unmet("within_weeks_of_decision",
                 f"the dispute window of {weeks} weeks after the decision closed on {english_date(closes)}",
                 f"de termijn van {weeks} weken na het besluit is verstreken op {dutch_date(closes)}",
                 field="parent_id", window_closed_on=closes.isoformat())


def parent_is(ctx: Context, workflow: list, states: list):
    parent = _parent(ctx)
    if parent is not None and parent.workflow_key in workflow and parent.state in states \
            and parent.institution_id == ctx.case.institution_id and parent.subject_id == ctx.case.subject_id:
        return None
    return unmet("parent_is", "a dispute concerns a decision in your own trajectory",
                 "een geschil gaat over een besluit in uw eigen traject", field="parent_id")


def subject_is_actor(ctx: Context):
    if ctx.case.subject_id == ctx.actor.id:
        return None
    return unmet("subject_is_actor", "only the aios concerned can start this",
                 "alleen de betrokken aios kan dit starten", field="subject_id")


def max_periods(ctx: Context, max: int):
    """At most `max` consecutive cases of this workflow linked parent to child (e.g. GBT periods)."""
    count, parent = 1, _parent(ctx)
    while parent is not None and parent.workflow_key == ctx.case.workflow_key:
        count += 1
        parent = ctx.session.get(Case, parent.parent_id) if parent.parent_id else None
    if count <= max:
        return None
    return unmet("max_periods", f"at most {max} consecutive periods are allowed",
                 f"hoogstens {max} opeenvolgende perioden zijn toegestaan", field="parent_id")
