"""Generic guards and effects every definition may use; domain-specific ones live in workflows/."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from .calendar import local_date
from .deadlines import new_deadline
from .fields import parse_date
from .models import DEADLINE_OPEN, Deadline, DeadlineStatus
from .registry import Context, Registry, unmet

# Where a paused case keeps what it needs to resume (case data, written by the effects below).
HELD_DEADLINES = "held_deadlines"
PAUSED_DAYS = "paused_days"
PAUSED_SINCE = "paused_since"

# The engine's own texts, in English; a workflow package adds `<name>.nl` (workflows/texts.py).
TEXTS = {
    "unmet.input.required": "{label} is required",
    "unmet.input.min_items": "{label} needs at least {n} item(s)",
    "unmet.input.must_be": "{label} must be {value}",
    "value.True": "yes",
    "value.False": "no",
    "unmet.min_items": "at least {min} {label} needed, found {count}",
    "unmet.document_signed.unwritten": "{title} has not been written yet",
    "unmet.document_signed.unsigned": "{title} (version {version}) is not signed by everyone yet",
    "unmet.field_equals": "{label} must be {value}",
    "unmet.deadline_open": "there is no open {name}",
    "unmet.not_before": "{label} must not lie before {other}",
    "subject.signature_requested": "To sign: {document} ({title})",
    "subject.document_signed": "Signed: {document} ({title})",
    "subject.reminder_sent": "Reminder from the next level: {label} has passed ({title})",
    "subject.document_dissented": "Signed as seen, not agreed: {document} ({title})",
    "subject.level_reached": "{state}: {title}",
    "subject.deadline_reminder": "Reminder: {label} due {due:%d-%m-%Y}",
    "subject.deadline_overdue": "Term passed: {label} ({due:%d-%m-%Y})",
    "escalation.reason": "Term passed: {label} (automatic)",
    "escalation.actor": "Traject (automatic)",
    "inbox.document": "{title} (version {version})",
    "redacted": "[confidential]",
}


def install(registry: Registry) -> Registry:
    registry.texts.update(TEXTS)
    registry.guard("min_items")(min_items)
    registry.guard("document_signed")(document_signed)
    registry.guard("field_equals")(field_equals)
    registry.guard("deadline_open")(deadline_open)
    registry.effect("open_child")(open_child)
    registry.effect("meet_deadline")(meet_deadline)
    registry.effect("pause_deadlines")(pause_deadlines)
    registry.effect("resume_deadlines")(resume_deadlines)
    registry.guard("not_before")(not_before)
    return registry


def _matches(item, where: dict | None) -> bool:
    return not where or (isinstance(item, dict) and all(item.get(k) == v for k, v in where.items()))


def min_items(ctx: Context, field: str, min: int = 1, where: dict | None = None, label: str = "",
              label_en: str = ""):
    items = ctx.value(field) or []
    count = sum(1 for item in items if _matches(item, where)) if isinstance(items, list) else 0
    if count >= min:
        return None
    text = ctx.engine.registry.text
    return unmet("min_items", text("unmet.min_items", min=min, label=label_en or field, count=count),
                 text("unmet.min_items", "nl", min=min, label=label or field, count=count), field=f"data.{field}")


def document_signed(ctx: Context, kind: str):
    spec = ctx.definition.documents.get(kind, {})
    title_nl, title_en = spec.get("title", kind), spec.get("title_en") or kind
    doc = ctx.documents.get(kind)
    text = ctx.engine.registry.text
    if doc is None:
        return unmet("document_signed", text("unmet.document_signed.unwritten", title=title_en),
                     text("unmet.document_signed.unwritten", "nl", title=title_nl),
                     field=f"documents.{kind}", kind=kind)
    if not ctx.document_is_signed(kind):
        signed = {s.signer_id for s in doc.signatures}
        waiting = [uid for uid in doc.required_signer_ids if uid not in signed]
        return unmet("document_signed", text("unmet.document_signed.unsigned", title=title_en, version=doc.version),
                     text("unmet.document_signed.unsigned", "nl", title=title_nl, version=doc.version),
                     field=f"documents.{kind}", kind=kind, waiting_for=waiting)
    return None


def field_equals(ctx: Context, field: str, value, label: str = "", label_en: str = ""):
    if ctx.value(field) == value:
        return None
    registry = ctx.engine.registry
    en, nl = registry.choice_word(value) or value, registry.choice_word(value, "nl") or value
    return unmet("field_equals", registry.text("unmet.field_equals", label=label_en or field, value=en),
                 registry.text("unmet.field_equals", "nl", label=label or field, value=nl), field=field)


def open_child(ctx: Context, workflow: str, carry: list | None = None, title: str = ""):
    """Open a linked case of another workflow in the same transaction (e.g. intensify → GBT)."""
    data = {k: ctx.data[k] for k in (carry or []) if k in ctx.data}
    child = ctx.engine.open_case(
        ctx.session, ctx.actor, workflow=workflow, institution=ctx.case.institution_id,
        subject_id=ctx.case.subject_id, parent_id=ctx.case.id, title=title or ctx.case.title, data=data,
        responsible_id=ctx.case.responsible_id,
    )
    return {"opened_case_id": child.id, "workflow": workflow}


def meet_deadline(ctx: Context, kind: str):
    """Mark one open deadline met, e.g. kind "action_{action}" with data.action = 2."""
    name = kind.format_map({k: v for k, v in ctx.input.items() if isinstance(v, (int, str))})
    result = ctx.session.execute(
        update(Deadline).where(Deadline.case_id == ctx.case.id, Deadline.kind == name,
                               Deadline.status.in_(DEADLINE_OPEN))
        .values(status=DeadlineStatus.MET, resolved_at=ctx.now, remind_at=None).execution_options(synchronize_session=False))
    return {"deadline": name, "met": result.rowcount}


def deadline_open(ctx: Context, kind: str):
    name = kind.format_map({k: v for k, v in ctx.input.items() if isinstance(v, (int, str))})
    found = ctx.session.scalar(select(Deadline.id).where(Deadline.case_id == ctx.case.id, Deadline.kind == name,
                                                         Deadline.status.in_(DEADLINE_OPEN)).limit(1))
    if found:
        return None
    text = ctx.engine.registry.text
    nl, en = deadline_words(ctx.definition, name)
    return unmet("deadline_open", text("unmet.deadline_open", name=en), text("unmet.deadline_open", "nl", name=nl),
                 field=None)


def deadline_words(definition, kind: str) -> tuple[str, str]:
    """(Dutch, English) words for a deadline kind; one made per item ("action_2") is "Actie 2"."""
    base, _sep, number = kind.rpartition("_")
    for step in [definition.open, *definition.transitions]:
        for spec in step.deadlines:
            if spec["kind"] == kind:
                return spec.get("label") or kind, spec.get("label_en") or spec.get("label") or kind
            if spec.get("for_each") and spec["kind"] == base:
                nl, en = spec.get("label") or base, spec.get("label_en") or spec.get("label") or base
                # an item named by its number reads "Actie 2"; one named by its id (ladders) just "Actie"
                return (f"{nl} {number}", f"{en} {number}") if number.isdigit() else (nl, en)
    return kind, kind


def not_before(ctx: Context, field: str, other: str, label: str = "", label_en: str = ""):
    """The date at `field` does not lie before the date at `other` (e.g. a resumption and its suspension)."""
    day, limit = parse_date(ctx.value(field)), parse_date(ctx.value(other))
    if day is None or limit is None or day >= limit:
        return None
    text = ctx.engine.registry.text
    return unmet("not_before", text("unmet.not_before", label=label_en or field, other=limit.isoformat()),
                 text("unmet.not_before", "nl", label=label or field, other=limit.isoformat()),
                 field=f"data.{field}")


def pause_deadlines(ctx: Context, since: str | None = None):
    """The case's clock stops (e.g. a suspended GBT): its open deadlines are cancelled, so that nobody is
    reminded or told of a term that does not run, and remembered for `resume_deadlines`; `since` (a path)
    is the day it stopped, kept as `paused_since` for the case page."""
    ids = list(ctx.session.scalars(select(Deadline.id).where(Deadline.case_id == ctx.case.id,
                                                             Deadline.status.in_(DEADLINE_OPEN))
                                   .order_by(Deadline.id)))
    if ids:
        ctx.session.execute(update(Deadline).where(Deadline.id.in_(ids))
                            .values(status=DeadlineStatus.CANCELLED, resolved_at=ctx.now, remind_at=None)
                            .execution_options(synchronize_session=False))
    ctx.derived[HELD_DEADLINES] = [*(ctx.data.get(HELD_DEADLINES) or []), *ids]
    if since:
        ctx.derived[PAUSED_SINCE] = ctx.value(since)
    return {"held_deadlines": ids}


def resume_deadlines(ctx: Context, since: str, until: str, shift: dict | None = None):
    """The clock runs again: the deadlines `pause_deadlines` held come back moved by the days from `since`
    to `until` (paths to dates), and so does each date of `shift` ({data field: path of its first value, or
    {from: path, label, label_en}}, `shifted_dates` shows the labelled ones). `paused_days` adds up every
    pause of the case."""
    start, end = parse_date(ctx.value(since)), parse_date(ctx.value(until))
    days = (end - start).days if start and end and end > start else 0
    held = ctx.data.get(HELD_DEADLINES) or []
    rows = ctx.session.scalars(select(Deadline).where(Deadline.case_id == ctx.case.id, Deadline.id.in_(held))
                               .order_by(Deadline.id)).all() if held else []
    moved = [_moved_deadline(ctx, old, days) for old in rows]
    ctx.derived[HELD_DEADLINES] = []
    ctx.derived[PAUSED_DAYS] = int(ctx.data.get(PAUSED_DAYS) or 0) + days
    ctx.derived[PAUSED_SINCE] = None
    for target, source in (shift or {}).items():
        source = source["from"] if isinstance(source, dict) else source
        base = parse_date(ctx.data.get(target)) or parse_date(ctx.value(source))
        if base is not None:
            ctx.derived[target] = (base + timedelta(days=days)).isoformat()
    return {"paused_days": days, "moved": moved}


def shifted_dates(definition, data: dict) -> list[tuple[dict, str]]:
    """The labelled dates `resume_deadlines` moved on a case: (its shift entry, the moved ISO date)."""
    found = []
    for step in definition.transitions:
        for effect in step.effects:
            for target, entry in (effect.get("shift") or {}).items() if effect["effect"] == "resume_deadlines" else ():
                if isinstance(entry, dict) and entry.get("label") and (data or {}).get(target):
                    found.append((entry, data[target]))
    return found


def _moved_deadline(ctx: Context, old: Deadline, days: int) -> dict:
    """A held deadline again, `days` later, rolled as its definition says."""
    tz, calendar = ctx.config.timezone, ctx.config.calendar
    spec = ctx.definition.deadline_spec(old.kind) or {}
    rolled = calendar.roll((old.rolled_from or local_date(old.due_at, tz)) + timedelta(days=days), spec.get("roll"))
    ctx.session.add(new_deadline(ctx.case.id, old.kind, old.label, rolled, old.owner_role,
                                 list(old.reminder_days or []), ctx.now, ctx.config))
    return {"kind": old.kind, "from": local_date(old.due_at, tz).isoformat(), "to": rolled.day.isoformat()}
