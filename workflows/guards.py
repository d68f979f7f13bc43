"""Guards, effects and document validators specific to the Dutch training procedures."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from engine.calendar import add_term, local_date, months_between_ok
from engine.fields import is_empty, parse_date
from engine.models import DEADLINE_OPEN, Case, Deadline
from engine.registry import Context, Registry, unmet

from .roles import LABELS_NL


def install(registry: Registry) -> Registry:
    registry.validator("term_months")(term_months)
    registry.effect("write_letter")(write_letter)
    registry.effect("write_action_list")(write_action_list)
    registry.guard("owns_item")(owns_item)
    registry.guard("justified_before_term")(justified_before_term)
    registry.guard("within_weeks_of_decision")(within_weeks_of_decision)
    registry.guard("parent_is")(parent_is)
    registry.guard("subject_is_actor")(subject_is_actor)
    registry.guard("max_periods")(max_periods)
    return registry


def term_months(ctx: Context, content: dict, start: str, end: str, min: int, max: int):
    """The GBT rule: end at least `min` and at most `max` calendar months after start."""
    a, b = parse_date(content.get(start)), parse_date(content.get(end))
    if a and b and not months_between_ok(a, b, min, max):
        return {
            f"content.{end}": (
                f"must lie at least {min} and at most {max} calendar months after {start}: between "
                f"{add_term(a, months=min).isoformat()} and {add_term(a, months=max).isoformat()} / "
                f"moet minstens {min} en hoogstens {max} kalendermaanden na de startdatum liggen: tussen "
                f"{add_term(a, months=min).isoformat()} en {add_term(a, months=max).isoformat()}"
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
    return _send_letter(ctx, kind, content, to, notify_kind, subject)


def _send_letter(ctx: Context, kind: str, content: dict, to: list, notify_kind: str, subject: str) -> dict:
    content = {k: _plain(v, ctx.config.timezone) for k, v in content.items() if v is not None}
    doc = ctx.engine.write_document(ctx, kind, content)
    seq = ctx.case.audit_seq + 1  # the event this effect belongs to
    seen: set = set()
    sent = sum(ctx.engine.send_document(ctx, doc, recipient, notify_kind, subject, seq, seen) for recipient in to)
    return {"document_id": doc.id, "kind": kind, "sha256": doc.sha256, "recipients": sent}


def write_action_list(ctx: Context, kind: str, items: str, to: list, notify_kind: str, subject: str, facts: dict):
    """The actions and their timeline laid down in writing (covenant art. 4, step 3): one letter, sent to
    the roles in `to` and to every action's owner, each once. Owners are named as people call them."""
    actions = [{"id": a.get("id"), "description": a.get("description"), "owner": LABELS_NL.get(a.get("owner_role"),
                a.get("owner_role")), "owner_role": a.get("owner_role"), "due_date": a.get("due_date")}
               for a in ctx.value(items) or [] if isinstance(a, dict)]
    content = {name: ctx.value(path) for name, path in facts.items()}
    owners = list(dict.fromkeys(a["owner_role"] for a in actions if a["owner_role"]))
    return _send_letter(ctx, kind, {**content, "actions": actions}, [*to, *owners], notify_kind, subject)


def _open_deadline(ctx: Context, kind: str):
    name = kind.format_map({k: v for k, v in ctx.input.items() if isinstance(v, (int, str))})
    return ctx.session.scalar(select(Deadline).where(Deadline.case_id == ctx.case.id, Deadline.kind == name,
                                                     Deadline.status.in_(DEADLINE_OPEN)).limit(1))


def owns_item(ctx: Context, kind: str):
    """An agreed action is marked done by its owner, or by the owner of the level (who keeps the list)."""
    deadline = _open_deadline(ctx, kind)
    if deadline is None:
        return None  # deadline_open reports it
    roles = ctx.actor.roles_on(ctx.case)
    level_owner = ctx.definition.state(ctx.case.state).get("owner")
    if ctx.actor.superuser or deadline.owner_role in roles or level_owner in roles:
        return None
    owner = LABELS_NL.get(deadline.owner_role, deadline.owner_role)
    return unmet("owns_item", f"only its owner ({deadline.owner_role}) marks this action done",
                 f"alleen de eigenaar ({owner}) meldt deze actie af", field="data.action")


def justified_before_term(ctx: Context, kind: str, field: str):
    """Leaving a term before it ends (a 2.5 consultation escalated within its 30 days) needs a reason."""
    term = ctx.session.scalar(select(Deadline).where(Deadline.case_id == ctx.case.id, Deadline.kind == kind,
                                                     Deadline.status.in_(DEADLINE_OPEN)).limit(1))
    if term is None or term.due_at <= ctx.now or not is_empty(ctx.data.get(field)):
        return None
    ends = local_date(term.due_at, ctx.config.timezone).isoformat()
    return unmet("justified_before_term",
                 f"the term runs until {ends}: escalating before then needs a justification ({field})",
                 f"de termijn loopt tot en met {ends}: eerder opschalen kan alleen met een motivering",
                 field=f"data.{field}", term_ends_on=ends)


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
                 f"the dispute window of {weeks} weeks after the decision closed on {closes.isoformat()}",
                 f"de termijn van {weeks} weken na het besluit is verstreken op {closes.isoformat()}",
                 field="parent_id", window_closed_on=closes.isoformat())


def parent_is(ctx: Context, workflow: list, states: list):
    parent = _parent(ctx)
    if parent is not None and parent.workflow_key in workflow and parent.state in states \
            and parent.institution_id == ctx.case.institution_id and parent.subject_id == ctx.case.subject_id:
        return None
    return unmet("parent_is", "a dispute concerns a decision in your own trajectory (parent_id)",
                 "een geschil gaat over een besluit in uw eigen traject (parent_id)", field="parent_id")


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
