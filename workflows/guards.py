"""Guards, effects and document validators specific to the Dutch training procedures."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from engine import records
from engine.calendar import add_term, last_day_of_term, local_date, months_between_ok
from engine.fields import is_empty, parse_date
from engine.locks import hold_person
from engine.models import DEADLINE_OPEN, Case, Deadline, RecordStatus
from engine.registry import Context, Registry, unmet

from .roles import LABELS_NL


def install(registry: Registry) -> Registry:
    registry.validator("term_months")(term_months)
    registry.validator("date_not_before")(date_not_before)
    registry.validator("date_within")(date_within)
    registry.validator("required_when")(required_when)
    registry.effect("write_letter")(write_letter)
    registry.effect("write_action_list")(write_action_list)
    registry.guard("owns_item")(owns_item)
    registry.guard("justified_before_term")(justified_before_term)
    registry.guard("within_weeks_of_decision")(within_weeks_of_decision)
    registry.guard("within_dispute_window")(within_dispute_window)
    registry.anchor("decision_date")(decision_date)
    registry.guard("parent_is")(parent_is)
    registry.guard("subject_is_actor")(subject_is_actor)
    registry.guard("max_periods")(max_periods)
    registry.guard("training_not_terminated")(training_not_terminated)
    registry.effect("update_training_record")(update_training_record)
    registry.guard("one_open_per_subject")(one_open_per_subject)
    registry.guard("one_dispute_per_decision")(one_dispute_per_decision)
    registry.guard("months_passed")(months_passed)
    registry.guard("agrees_with")(agrees_with)
    registry.guard("after_record_end")(after_record_end)
    return registry


MONTHS_NL = ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
             "november", "december")


def dutch_date(day) -> str:
    """9 juni 2026: how a date reads in a Dutch sentence (messages are plain text, not a page's locale)."""
    return f"{day.day} {MONTHS_NL[day.month - 1]} {day.year}"


def english_date(day) -> str:
    return f"{day.day} {day.strftime('%B')} {day.year}"


def term_months(ctx: Context, content: dict, start: str, end: str, min: int, max: int):
    """The GBT rule: from start through end (its last day) at least `min`, at most `max` calendar months."""
    a, b = parse_date(content.get(start)), parse_date(content.get(end))
    if a and b and not months_between_ok(a, b, min, max):
        first, last = last_day_of_term(a, min), last_day_of_term(a, max)
        return {
            f"content.{end}": (
                f"the period from {start} through {end} must last at least {min} and at most {max} calendar "
                f"months: {end} between {english_date(first)} and {english_date(last)} / de periode moet minstens "
                f"{min} en hoogstens {max} kalendermaanden duren: einddatum tussen {dutch_date(first)} en "
                f"{dutch_date(last)}"
            )
        }
    return None


def date_not_before(ctx: Context, content: dict, field: str, than: str, label: str = "", label_en: str = ""):
    """A document's date not before a date of the case (the IOP's start not before the decision)."""
    day, bound = parse_date(content.get(field)), parse_date(ctx.value(than))
    if day and bound and day < bound:
        return {f"content.{field}": f"must not lie before {label_en or than} ({bound.isoformat()}) / "
                                    f"mag niet vóór {label or than} ({bound.isoformat()}) liggen"}
    return None


def date_within(ctx: Context, content: dict, field: str, start: str, end: str):
    """A document's date within a period of the case, both ends included (a meeting within the GBT)."""
    day, first, last = parse_date(content.get(field)), parse_date(ctx.value(start)), parse_date(ctx.value(end))
    if day and first and last and not first <= day <= last:
        return {f"content.{field}": f"must lie within the period {first.isoformat()} through {last.isoformat()} / "
                                    f"moet binnen de periode {first.isoformat()} t/m {last.isoformat()} liggen"}
    return None


def required_when(ctx: Context, content: dict, field: str, when: dict):
    """An optional field that a given answer makes necessary (an extension names its new end date)."""
    if all(content.get(k) == v for k, v in when.items()) and not content.get(field):
        return {f"content.{field}": "is required with this outcome / is verplicht bij deze uitkomst"}
    return None


def write_letter(ctx: Context, kind: str, to: list, notify_kind: str, subject: str, facts: dict,
                 held_until_signed: str | None = None, enclose: list | None = None):
    """A written notification (PDF): stored as a document with its sha256 and attached to the outbox rows.

    `facts` maps a letter field to a path in the case (see Context.value), a computed fact ("@name",
    see FACTS) or, after "=", a literal; the PDF is rendered from exactly this content, so the stored
    hash covers what was sent. A letter with signers asks them to sign it; with `held_until_signed`
    (a document kind written in this step, often the letter itself) its rows wait until that is signed.
    `enclose` names document kinds of the case whose latest version goes along as a bijlage: named in
    the letter (`enclosures`) and attached to the same e-mails.
    """
    content = {name: _fact(ctx, path) for name, path in facts.items()}
    return _send_letter(ctx, kind, content, to, notify_kind, subject, held_until_signed, enclose)


def _send_letter(ctx: Context, kind: str, content: dict, to: list, notify_kind: str, subject: str,
                 held_until_signed: str | None = None, enclose: list | None = None) -> dict:
    content = {k: _plain(v, ctx.config.timezone) for k, v in content.items() if v is not None}
    enclosed = [ctx.documents[k] for k in enclose or () if k in ctx.documents]
    if enclosed:
        titles = {k: (ctx.definition.documents.get(k) or {}).get("title") or k for k in enclose}
        content["enclosures"] = [f"{titles[d.kind]}, versie {d.version}" for d in enclosed]
    doc = ctx.engine.write_document(ctx, kind, content)
    seq = ctx.case.audit_seq + 1  # the event this effect belongs to
    held = ctx.documents.get(held_until_signed) if held_until_signed else None
    seen: set = set()
    sent = sum(ctx.engine.send_document(ctx, doc, recipient, notify_kind, subject, seq, held_for=held, seen=seen,
                                        enclosed=enclosed)
               for recipient in to)
    if doc.required_signer_ids:
        ctx.engine.request_signatures(ctx, doc, seq)
    return {"document_id": doc.id, "kind": kind, "sha256": doc.sha256, "recipients": sent,
            **({"held_until_signed": held.id} if held is not None else {})}


def _fact(ctx: Context, path: str):
    if path.startswith("="):
        return path[1:]
    if path.startswith("@"):
        return FACTS[path[1:]](ctx)
    return ctx.value(path)


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
    """The decision a dispute is about: a termination's decision date, else the recorded decision date."""
    if case.state == "terminated" and case.closed_at:
        return parse_date((case.data or {}).get("termination_date")) or local_date(case.closed_at, tz)
    return parse_date((case.data or {}).get("decision_date")) or local_date(case.opened_at, tz)


def window_closes(decided: date, weeks: int) -> date:
    """The last day on which a dispute against a decision of `decided` may be lodged: the one place
    that computes it (the guard below, the letters)."""
    return decided + timedelta(weeks=weeks)


def dispute_weeks(ctx: Context) -> int:
    """The dispute window in weeks, as the region configures the GBT's term `dispute_window`."""
    spec = ctx.engine.term_spec(ctx.session, ctx.case, DISPUTE_WINDOW) or {}
    return int((spec.get("after") or {}).get("weeks") or 4)  # CONTRACT.md section 4's regional default


def _dispute_closes_on(ctx: Context) -> str | None:
    """Written into the decision letters: the window's last day, from the decision this step records."""
    decided = parse_date(ctx.data.get("termination_date") if ctx.trigger == "terminate"
                         else ctx.data.get("decision_date")) or local_date(ctx.now, ctx.config.timezone)
    closes = dispute_window_closes(ctx.engine, ctx.session, ctx.case, decided)
    return closes.isoformat() if closes else None


FACTS = {"dispute_weeks": lambda ctx: str(dispute_weeks(ctx)), "dispute_closes_on": _dispute_closes_on}


def within_weeks_of_decision(ctx: Context, weeks: int):
    parent = _parent(ctx)
    if parent is None:
        return None  # parent_is reports the missing decision
    closes = window_closes(decision_date(parent, ctx.config.timezone), weeks)
    if local_date(ctx.now, ctx.config.timezone) <= closes:
        return None
    return unmet("within_weeks_of_decision",
                 f"the dispute window of {weeks} weeks after the decision closed on {english_date(closes)}",
                 f"de termijn van {weeks} weken na het besluit is verstreken op {dutch_date(closes)}",
                 field="parent_id", window_closed_on=closes.isoformat())


DISPUTE_WINDOW = "dispute_window"


def dispute_window_closes(engine, session, case: Case, decided_on: date | None = None) -> date | None:
    """The last day on which the aios may lodge a dispute against the decision of `case` (a GBT).

    The window is the case's named term `dispute_window` (intensified_guidance.yaml; region configuration
    `workflows.intensified_guidance.terms.dispute_window`), counted from `decided_on` — by default the
    decision's day (`decision_date`) — and moved to the next working day when it ends on a Saturday,
    Sunday or holiday (`roll: next_working_day`). A letter written at the moment of the decision passes
    `decided_on` (the terminate step runs before the case is terminated).
    """
    end = engine.term(session, case, DISPUTE_WINDOW, start=decided_on)
    return end.day if end else None


def within_dispute_window(ctx: Context):
    parent = _parent(ctx)
    if parent is None:
        return None  # parent_is reports the missing decision
    closes = dispute_window_closes(ctx.engine, ctx.session, parent)
    if closes is None or local_date(ctx.now, ctx.config.timezone) <= closes:
        return None
    return unmet("within_dispute_window",
                 f"the dispute window after the decision closed on {closes.isoformat()}",
                 f"de termijn voor een geschil na het besluit is verstreken op {closes.isoformat()}",
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
    """At most `max` cases of this workflow (e.g. GBT periods) for the aios, linked or not: every GBT of
    the training counts, whoever opened it and wherever."""
    count = 1 + (ctx.session.scalar(
        select(func.count(Case.id)).where(Case.workflow_key == ctx.case.workflow_key,
                                          Case.subject_id == ctx.case.subject_id)) or 0)
    if count <= max:
        return None
    return unmet("max_periods", f"at most {max} periods are allowed in one training",
                 f"hoogstens {max} perioden zijn toegestaan in één opleiding", field="subject_id")



def training_not_terminated(ctx: Context):
    """No new trajectory for an aios whose training was terminated (a dispute against it stays open to them)."""
    record = records.get(ctx.session, ctx.case.subject_id) if ctx.case.subject_id else None
    if record is None or record.status != RecordStatus.TERMINATED:
        return None
    return unmet("training_not_terminated", "the training of this aios was terminated (training record)",
                 "de opleiding van deze aios is beëindigd (opleidingsgegevens)", field="subject_id")


def _step_words(ctx: Context) -> str:
    """What people call the step that changed the record: "Geïntensiveerd begeleidingstraject: Opleiding beëindigen"."""
    step = ctx.definition.step(ctx.trigger, ctx.case.state) if ctx.trigger else None
    return f"{ctx.definition.title}: {step.label}" if step is not None and step.label else ctx.definition.title


def update_training_record(ctx: Context, status: str, expected_end_date: str | None = None):
    """A step that decides on the training writes it into the aios' training record (CONTRACT.md section 7)."""
    values = {"status": RecordStatus(status)}
    if expected_end_date:
        values["expected_end_date"] = parse_date(ctx.value(expected_end_date))
    case = ctx.case
    records.change(ctx.session, subject_id=case.subject_id, region_id=case.region_id,
                   programme=case.programme or ctx.config.default_programme, actor_id=ctx.actor.id,
                   values=values, now=ctx.now, reason=_step_words(ctx), case_id=case.id,
                   placement_id=case.institution_id, employer_id=case.institution_id)
    return {"training_record": {k: v.isoformat() if hasattr(v, "isoformat") else str(v) for k, v in values.items()}}


def one_open_per_subject(ctx: Context):
    """One open case of this workflow per aios, however it is opened (directly, by intensify, linked or
    not). The aios is held first, so that of two concurrent openings the second sees the first."""
    if ctx.case.subject_id is None:
        return None
    hold_person(ctx.session, ctx.case.subject_id)
    q = select(Case.id).where(Case.workflow_key == ctx.case.workflow_key, Case.subject_id == ctx.case.subject_id,
                              Case.closed_at.is_(None))
    if ctx.case.id is not None:
        q = q.where(Case.id != ctx.case.id)
    other = ctx.session.scalar(q.limit(1))
    if other is None:
        return None
    return unmet("one_open_per_subject", f"this aios already has an open {ctx.definition.title_en or 'case'}",
                 f"voor deze aios loopt al een {ctx.definition.title.lower()}", field="subject_id",
                 open_case_id=other)


def one_dispute_per_decision(ctx: Context):
    """One dispute per decision: against the GBT decision while the GBT runs, against the termination once
    it is terminated (a dispute lodged after closing is about the termination)."""
    parent = _parent(ctx)
    if parent is None:
        return None
    hold_person(ctx.session, ctx.case.subject_id)
    q = select(Case.id).where(Case.workflow_key == ctx.case.workflow_key, Case.parent_id == parent.id)
    if parent.closed_at is not None:
        q = q.where(Case.opened_at >= parent.closed_at)
    other = ctx.session.scalar(q.limit(1))
    if other is None:
        return None
    return unmet("one_dispute_per_decision", "a dispute against this decision has been lodged already",
                 "tegen dit besluit is al een geschil ingediend", field="parent_id", dispute_id=other)


def months_passed(ctx: Context, since: str, months: int, label: str = "", label_en: str = ""):
    """Not before `since` + `months` calendar months (the GBT's minimum term before the assessment)."""
    start = parse_date(ctx.value(since))
    if start is None:
        return None  # the document guards report the missing document
    earliest = add_term(start, months=months)
    if local_date(ctx.now, ctx.config.timezone) >= earliest:
        return None
    return unmet("months_passed", f"possible from {earliest.isoformat()}: {months} calendar months after "
                 f"{label_en or since}", f"mogelijk vanaf {earliest.isoformat()}: {months} kalendermaanden na "
                 f"{label or since}", field=since, earliest=earliest.isoformat())


def agrees_with(ctx: Context, field: str, source: str, label: str = "", label_en: str = ""):
    """A transition's date is the one the signed document names (a letter carries what was signed)."""
    expected, given = ctx.value(source), ctx.data.get(field)
    if expected in (None, "") or given in (None, "") or expected == given:
        return None
    return unmet("agrees_with", f"{field} must be {expected}, as in the signed {label_en or source}",
                 f"moet {expected} zijn, zoals in de ondertekende {label or source}", field=f"data.{field}",
                 expected=expected)


def record_expected_end(ctx: Context) -> date | None:
    """The aios' expected end of training from the training record (CONTRACT.md section 7), or None."""
    record = records.get(ctx.session, ctx.case.subject_id) if ctx.case.subject_id else None
    return record.expected_end_date if record is not None else None


def after_record_end(ctx: Context, field: str):
    """An extension's new end date lies after the record's current expected end (skipped without a record)."""
    day, current = parse_date(ctx.data.get(field)), record_expected_end(ctx)
    if day is None or current is None or day > current:
        return None
    return unmet("after_record_end", f"must lie after the current expected end of training ({current.isoformat()})",
                 f"moet na de huidige verwachte einddatum van de opleiding ({current.isoformat()}) liggen",
                 field=f"data.{field}")
