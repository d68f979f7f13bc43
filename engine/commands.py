"""What happens on a transition: the one place.

Every command runs inside the caller's transaction and never commits: the caller
commits once (or rolls back) so that state, audit event, deadlines and outbox rows
become durable together, and nothing leaves the process before that commit.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from time import monotonic as _monotonic
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from . import audit, fields, outbox
from .calendar import WEEKENDS_ONLY, Rolled, WorkingCalendar, local_date, term_end
from .canonical import canonical_json, sha256_hex
from .clock import FixedClock, SystemClock
from .deadlines import due_date, late as passed, new_deadline
from .definitions import Definition, Step, latest_rows
from .errors import Forbidden, NotFound, PreconditionFailed, TransitionNotAllowed, ValidationError, VersionConflict
from .inbox import next_level_owner
from .machine import destination, triggers_from
from .models import (
    DEADLINE_OPEN,
    Case,
    CaseExclusion,
    Deadline,
    DeadlineStatus,
    Document,
    Institution,
    Programme,
    RoleAssignment,
    Signature,
    TrainingRecord,
    User,
    Verdict,
    WorkflowDefinition,
)
from .registry import Context, Registry, unmet
from .disclosure import Disclosure, disclosure
from .scope import Actor, may, permits, triggers_for, visible


@dataclass
class EngineConfig:
    timezone: str = "Europe/Amsterdam"
    superuser_roles: tuple[str, ...] = ("admin",)
    # external:<name> recipients, e.g. {"rgs": "rgs@example.org"}; a region may override.
    external_recipients: dict[str, str] = field(default_factory=dict)
    reminder_hour: int = 9
    # The language of the texts the engine stores (outbox subjects, automatic reasons); see Registry.text.
    language: str = "nl"
    # Roles bound to one programme (a null programme on their assignment: the default one).
    programme_roles: tuple[str, ...] = ()
    default_programme: str = ""
    # deputy role → the role it may act as, on the responsible's behalf
    deputies: dict[str, str] = field(default_factory=dict)
    # Which days are working days (the region's holidays come as data: workflows/terms.py).
    calendar: WorkingCalendar = WEEKENDS_ONLY
    # Facts of the region that letters may name ("region.<key>" in a definition), e.g. the specialty.
    region_facts: dict[str, str] = field(default_factory=dict)


class _Caches:
    """What an engine keeps between requests; shared by the engines `Engine.at` makes."""

    def __init__(self):
        self.latest = None  # (monotonic time, {key: Definition})
        self.memo = None  # (the `latest` dict they were built from, {key: clause or statement})


class Engine:
    def __init__(self, registry: Registry, config: EngineConfig | None = None, clock=None):
        self.registry = registry
        self.config = config or EngineConfig()
        self.clock = clock or SystemClock()
        self._caches = _Caches()

    def at(self, moment: datetime) -> "Engine":
        """This engine with its clock fixed at `moment` (an automatic escalation at the sweep's moment,
        demo cases back-dated), sharing the stored definitions and built statements."""
        # A shallow copy: the same registry, config and caches (and whatever else was set on this engine).
        other = copy.copy(self)
        other.clock = FixedClock(moment)
        return other

    def text(self, name: str, /, **values) -> str:
        """A stored text (subject, reason) in the configured language."""
        return self.registry.text(name, self.config.language, **values)

    def disclosure(self, case: Case, actor: Actor) -> Disclosure:
        """What `actor` may see of the case's confidential fields (engine/disclosure.py)."""
        return disclosure(self.definition(case.definition).confidential, case, actor, self.text("redacted"))

    # -- definitions ------------------------------------------------------------

    def definition(self, row: WorkflowDefinition) -> Definition:
        return Definition.for_row(row, self.registry)

    LATEST_TTL = 30.0  # seconds; new versions are stored at start-up, so staleness is brief and harmless

    def latest(self, session: Session) -> dict[str, Definition]:
        """The newest version of every workflow (what new cases open with), cached briefly per process."""
        cached = self._caches.latest
        if cached and _monotonic() - cached[0] < self.LATEST_TTL:
            return cached[1]
        latest = {key: self.definition(row) for key, row in latest_rows(session).items()}
        self._caches.latest = (_monotonic(), latest)
        return latest

    def forget_definitions(self) -> None:
        self._caches.latest = None

    def visibility(self, session: Session) -> dict[str, dict[str, str]]:
        """Per workflow, role → scope, with the contract's *always* rules applied whatever a definition says:
        an aios sees only their own cases; regional roles never see personal trajectories."""
        return {
            key: {role: scope for role, scope in d.visibility.items()
                  if role != "aios" and not (d.category == "personal" and scope == "region")}
            for key, d in self.latest(session).items()
        }

    def actor_for(self, user: User) -> Actor:
        bound, default = self.config.programme_roles, self.config.default_programme
        assignments = tuple(
            (a.role, a.institution_id, a.region_id, (a.programme or default) if a.role in bound else None)
            for a in sorted(user.roles, key=lambda a: (a.role, a.id or 0))
        )
        superuser = any(a.role in self.config.superuser_roles for a in user.roles)
        return Actor(id=user.id, assignments=assignments, superuser=superuser, name=user.name,
                     default_programme=default, deputies=tuple(sorted(self.config.deputies.items())))

    # -- named terms ------------------------------------------------------------

    def term_spec(self, session: Session, case: Case, name: str) -> dict | None:
        """The case's named term `name` ({after, roll, start, …}) from the version it was opened with: one
        of its `terms`, else a deadline kind's `after`; a version older than the term takes the newest one's."""
        for definition in (self.definition(case.definition), self.latest(session).get(case.workflow_key)):
            if definition is None:
                continue
            if name in definition.terms:
                return definition.terms[name]
            spec = definition.deadline_spec(name)
            if spec and "after" in spec["due"]:
                return {"after": spec["due"]["after"], "roll": spec.get("roll"), "start": None}
        return None

    def term(self, session: Session, case: Case, name: str, start=None) -> Rolled | None:
        """The last day of the case's term `name`, counted from `start` (default: the term's anchor)."""
        spec = self.term_spec(session, case, name)
        if spec is None:
            return None
        if start is None and spec.get("start"):
            start = self.registry.anchors[spec["start"]](case, self.config.timezone)
        if start is None:
            return None
        return term_end(start, spec["after"], spec.get("roll"), self.config.calendar)

    def shown_terms(self, session: Session, case: Case) -> list[tuple[str, dict, Rolled]]:
        """The terms a reader is shown in the case's state (its `shown_in`): (name, spec, last day)."""
        definition = self.definition(case.definition)
        shown = []
        for name, spec in definition.terms.items():
            end = self.term(session, case, name) if case.state in spec["shown_in"] else None
            if end is not None:
                shown.append((name, spec, end))
        return shown

    # -- reading (always scoped) ------------------------------------------------

    MEMO_KEPT = 1024

    def _per_actor(self, session: Session, key: tuple, build):
        """Statements and clauses that depend only on an actor and the definitions, built once.

        Building them costs SQLAlchemy operator coercion and a fresh cache key on every execution,
        about a third of a transition (bench/RESULTS.md); a kept statement carries its cache key.
        They live as long as the cached definitions. SQL expressions are immutable, so one may
        serve any number of sessions and threads."""
        latest = self.latest(session)
        memo = self._caches.memo
        if memo is None or memo[0] is not latest or len(memo[1]) >= self.MEMO_KEPT:
            memo = self._caches.memo = (latest, {})
        value = memo[1].get(key)
        if value is None:
            value = memo[1][key] = build()
        return value

    def per_actor(self, session: Session, actor: Actor, name: str, build):
        """A statement of the caller's that depends only on the actor (and the definitions), built once."""
        return self._per_actor(session, (name, actor), build)

    def scope(self, session: Session, actor: Actor):
        return self._per_actor(session, ("scope", actor), lambda: visible(actor, self.visibility(session)))

    def get_case(self, session: Session, actor: Actor, case_id: int, *, for_update: bool = False) -> Case:
        def build():
            q = select(Case).where(Case.id == bindparam("case_id"), self.scope(session, actor))
            # Lock only the case row, not the joined definition and institution rows.
            return q.with_for_update(of=Case) if for_update else q

        q = self._per_actor(session, ("case", actor, for_update), build)
        case = session.scalars(q, {"case_id": case_id}).unique().one_or_none()
        if case is None:
            raise NotFound("case not found", {"case_id": case_id})
        return case

    def available_triggers(self, case: Case, actor: Actor, overdue=False) -> list[str]:
        """`overdue`: the kinds of the case's overdue deadlines (only the current level's response term
        gives `when_overdue` rights), or a bool that already says whether that term has passed."""
        definition = self.definition(case.definition)
        if not isinstance(overdue, bool):
            overdue = bool(set(overdue) & definition.level_kinds(case.state))
        return triggers_for(definition, case.state, actor.roles_on(case), overdue)

    def definitions_by_id(self, session: Session, ids) -> dict[int, Definition]:
        """Stored versions by row id, from the process cache where possible (one query for the rest)."""
        found = {i: Definition._cache[i] for i in ids if i in Definition._cache}
        missing = set(ids) - set(found)
        if missing:
            for row in session.scalars(select(WorkflowDefinition).where(WorkflowDefinition.id.in_(missing))):
                found[row.id] = self.definition(row)
        return found

    def has_overdue(self, session: Session, case: Case) -> bool:
        """Has the sweep marked the current level's response term overdue (and is it still open)?

        Only that term counts: an old action's passed date gives nobody the rights of `when_overdue`."""
        kinds = self.definition(case.definition).level_kinds(case.state)
        if not kinds:
            return False
        return session.scalar(select(Deadline.id).where(Deadline.case_id == case.id, Deadline.kind.in_(kinds),
                                                        Deadline.status == DeadlineStatus.OVERDUE)
                              .limit(1)) is not None

    # -- opening ----------------------------------------------------------------

    def open_case(self, session: Session, actor: Actor, *, workflow: str, institution: str | int,
                  subject_id: int | None = None, parent_id: int | None = None, title: str = "",
                  data: dict | None = None, responsible_id: int | None = None,
                  programme: str | None = None) -> Case:
        now = self.clock.now()
        data = data or {}
        if not isinstance(data, dict):
            raise ValidationError("data must be an object", {"data": ["must be an object"]})
        definition = self.latest(session).get(workflow)
        if definition is None:
            raise ValidationError(f"unknown workflow {workflow!r}", {"workflow": [f"unknown workflow {workflow!r}"]})
        inst_q = select(Institution).where(
            Institution.id == institution if isinstance(institution, int) else Institution.code == institution
        )
        inst = session.scalars(inst_q).one_or_none()
        if inst is None:
            raise ValidationError("unknown institution", {"institution": ["unknown institution"]})
        programme = self._programme_of(session, actor, inst, subject_id, programme)
        roles = actor.roles_at(inst.id, inst.region_id, programme)
        if not permits(definition.open.roles, roles):
            raise Forbidden(f"your role may not open a case of workflow {workflow} at {inst.code}",
                            {"allowed_roles": list(definition.open.roles)})
        if subject_id is None and definition.subject.get("default") == "opener":
            subject_id = actor.id
        if definition.subject["required"] and subject_id is None:
            raise ValidationError("subject_id is required", {"subject_id": ["required for this workflow"]})
        if subject_id is not None and not definition.subject.get("allowed", True):
            raise ValidationError(f"a {workflow} case is about the training, never about one person",
                                  {"subject_id": ["not allowed for this workflow"]})
        if subject_id is not None:
            self._check_subject(session, definition, inst, subject_id)
        parent = None
        if parent_id is not None:
            parent = session.scalars(select(Case).where(Case.id == parent_id, self.scope(session, actor))).one_or_none()
            if parent is None:
                raise ValidationError("unknown parent case", {"parent_id": ["no such case"]})
        case = Case(
            workflow_key=workflow, definition_id=definition.row_id, region_id=inst.region_id, institution_id=inst.id,
            subject_id=subject_id, opened_by_id=actor.id, responsible_id=responsible_id or actor.id,
            parent_id=parent_id, title=_title(title), state=definition.open.dest, version=1, data={},
            programme=programme,
            opened_at=now, updated_at=now, audit_seq=0, audit_head="",
        )
        case.definition = session.get(WorkflowDefinition, definition.row_id)
        case.institution = inst
        if parent is not None:
            case.parent_id = parent.id
        ctx = self._context(session, case, definition, actor, now, dict(data), None)
        data = self._fill_defaults(ctx, definition.open.input)
        self._check_step(ctx, definition.open)
        self._stamp_item_ids(ctx, definition.open)
        case.data = self._new_data(case.data, data, definition.open, actor, now)
        session.add(case)
        session.flush()  # the id is part of every hash and key below
        effects = self._run_effects(ctx, definition.open)
        event = audit.new_event(case, now, actor.id, "opened", to_state=case.state,
                                data={"input": data, **({"effects": effects} if effects else {}),
                                      audit.CASE_DATA_KEY: audit.case_data_hash(case.data)})
        case.audit_seq, case.audit_head = event.seq, event.hash
        session.add(event)
        self._exclude(session, definition, case, data)
        self._write_deadlines(ctx, definition.open, event.seq)
        self._write_notifications(ctx, definition, definition.open, event.seq)
        self._notify_owner(ctx, definition, case.state, event.seq)
        return case

    def _programme_of(self, session, actor: Actor, inst: Institution, subject_id, asked: str | None) -> str:
        """A case's programme: its subject's (by the training record; an aios without one is of the
        default); a case about no one: the one asked for, else the opener's own at that institution when
        they serve exactly one, else the region's default."""
        if subject_id is not None:
            found = session.scalar(select(TrainingRecord.programme).where(TrainingRecord.subject_id == subject_id))
            return found or self.config.default_programme or None
        if asked:
            if not isinstance(asked, str) or session.scalar(
                    select(Programme.id).where(Programme.code == asked, Programme.region_id == inst.region_id)) is None:
                raise ValidationError("unknown programme", {"programme": ["unknown programme"]})
            return asked
        own = {prog for _role, i, region, prog in actor.assignments
               if prog and (i == inst.id or (i is None and region == inst.region_id))}
        return own.pop() if len(own) == 1 else self.config.default_programme or None

    def _exclude(self, session, definition, case, data) -> None:
        """The person a signal is about never sees the case and is skipped in routing.

        Never so that the case has nobody left to own its first level, and never the administrator:
        either would let any opener blind the one who must act.
        """
        field = definition.exclude_field
        uid = data.get(field) if field else None
        if not isinstance(uid, int) or isinstance(uid, bool):
            return
        person = session.get(User, uid)
        if person is None or not person.active or not any(r.region_id == case.region_id for r in person.roles):
            raise ValidationError("the person concerned is not a user of this region",
                                  {f"data.{field}": ["must be a person in this region"]})
        held = session.execute(select(RoleAssignment.role, RoleAssignment.institution_id, RoleAssignment.region_id)
                               .where(RoleAssignment.user_id == uid)).all()
        if any(role in self.config.superuser_roles for role, _i, _r in held):
            raise ValidationError("the person concerned administers Traject: report via the vertrouwenspersoon",
                                  {f"data.{field}": ["must not be an administrator"]})
        owner = definition.state(case.state).get("owner")
        if owner and self._only_owner(session, case, owner, uid):
            raise ValidationError(f"the person concerned is the only {owner} of this case's first level: "
                                  "report at the next level or via the vertrouwenspersoon",
                                  {f"data.{field}": [f"must not be the only {owner}"]})
        session.add(CaseExclusion(case_id=case.id, user_id=uid))
        session.flush()

    def _only_owner(self, session, case: Case, role: str, uid: int) -> bool:
        """Whether `uid` is the one active holder of `role` for the case (those the level's mail goes to)."""
        holders = {holder for holder, _address in self.recipients(session, case, role)}
        return holders == {uid}

    def _check_subject(self, session, definition, inst, subject_id) -> None:
        role = definition.subject.get("role")
        q = select(RoleAssignment.id).where(RoleAssignment.user_id == subject_id,
                                            RoleAssignment.institution_id == inst.id)
        if role:
            q = q.where(RoleAssignment.role == role)
        if session.scalar(q.limit(1)) is None:
            # Same answer for "no such user" and "not an aios here": never reveal who exists.
            raise ValidationError(
                f"subject_id: no user with role {role or 'any'} at {inst.code}",
                {"subject_id": [f"no user with role {role or 'any'} at this institution"]},
            )

    # -- the transition ---------------------------------------------------------

    def fire(self, session: Session, actor: Actor, case_id: int, trigger: str, expected_version: Any,
             data: dict | None = None) -> Case:
        """Fire `trigger` on a case, in the caller's transaction (DESIGN.md, "the path of a transition"):

        1. `_load_for_transition`: the case, locked on PostgreSQL; a stale `expected_version` → VersionConflict;
        2. `_allowed_step`: does the move exist from here (TransitionNotAllowed) and may this actor make it
           (Forbidden)?
        3. `_check_step`: the step's input and guards, every unmet condition at once (PreconditionFailed);
        4. `_write_transition`: effects, then state and version by compare-and-set with one audit event;
        5. `_after_transition`: deadlines met, cancelled and created; outbox rows.
        """
        now = self.clock.now()
        data = data if data is not None else {}
        if not isinstance(data, dict):
            raise ValidationError("data must be an object", {"data": ["must be an object"]})
        if not isinstance(expected_version, int) or isinstance(expected_version, bool):
            raise ValidationError("expected_version must be an integer", {"expected_version": ["must be an integer"]})
        case = self._load_for_transition(session, actor, case_id, expected_version)
        definition = self.definition(case.definition)
        step, dest = self._allowed_step(session, actor, case, definition, trigger)
        ctx = self._context(session, case, definition, actor, now, dict(data), trigger)
        self._fill_defaults(ctx, step.input)
        self._check_step(ctx, step)
        self._stamp_item_ids(ctx, step)
        from_state = case.state
        event, closing = self._write_transition(ctx, step, dest, expected_version)
        self._after_transition(ctx, step, from_state, event.seq, closing)
        return case

    def _load_for_transition(self, session, actor, case_id, expected_version) -> Case:
        # Locked on PostgreSQL; the compare-and-set in _write_transition covers SQLite.
        case = self.get_case(session, actor, case_id, for_update=True)
        if case.version != expected_version:
            raise VersionConflict(
                f"the case is at version {case.version}, not {expected_version}",
                {"expected_version": expected_version, "current_version": case.version},
            )
        return case

    def _allowed_step(self, session, actor, case, definition, trigger) -> tuple[Step, str]:
        if trigger not in definition.triggers:
            raise ValidationError(f"unknown trigger {trigger!r}", {"trigger": [f"unknown trigger {trigger!r}"]})
        dest = destination(definition.machine, trigger, case.state)
        if dest is None:
            raise TransitionNotAllowed(
                f"{trigger!r} does not leave state {case.state!r}",
                {"state": case.state, "trigger": trigger,
                 "available": triggers_from(definition.machine, case.state)},
            )
        step = definition.step(trigger, case.state)
        roles = actor.roles_on(case)
        # The overdue query only for someone whom nothing but `when_overdue` could allow.
        if not may(definition, step, case.state, roles, False) and not (
                step.when_overdue and roles & set(step.when_overdue) and self.has_overdue(session, case)):
            raise Forbidden(f"your role may not {trigger} this case", {"allowed_roles": list(step.roles)})
        return step, dest

    def _write_transition(self, ctx: Context, step: Step, dest: str, expected_version: int):
        """Effects, then the case's new state, version and chain head in one compare-and-set."""
        session, case, definition, now = ctx.session, ctx.case, ctx.definition, ctx.now
        effects = self._run_effects(ctx, step)
        dest, skipped = self._skip_unowned(session, definition, case, step.trigger, dest)
        if skipped:
            effects.append({"effect": "skipped_levels", "levels": skipped})
        new_data = {**self._new_data(case.data, ctx.input, step, ctx.actor, now), **ctx.derived}
        on_behalf = self._on_behalf(ctx, step)
        event = audit.new_event(case, now, ctx.actor.id, "transition", trigger=step.trigger, from_state=case.state,
                                to_state=dest, data={"input": ctx.input, **({"effects": effects} if effects else {}),
                                                     **({"derived": ctx.derived} if ctx.derived else {}),
                                                     **({"on_behalf_of": on_behalf} if on_behalf else {}),
                                                     audit.CASE_DATA_KEY: audit.case_data_hash(new_data)})
        closing = dest in definition.final_states
        values = dict(state=dest, version=case.version + 1, data=new_data, audit_seq=event.seq,
                      audit_head=event.hash, updated_at=now)
        if closing:
            values["closed_at"] = now
        session.flush()  # what the ORM update did first (autoflush): effects may have added rows
        result = session.connection().execute(_COMPARE_AND_SET[closing], {
            "_id": case.id, "_expected_version": expected_version, "_old_audit_seq": case.audit_seq,
            **{f"_{key}": value for key, value in values.items()}})
        if result.rowcount != 1:
            raise VersionConflict("the case changed meanwhile; reload and try again",
                                  {"expected_version": expected_version})
        for key, value in values.items():
            set_committed_value(case, key, value)
        session.add(event)
        return event, closing

    @staticmethod
    def _on_behalf(ctx: Context, step: Step) -> int | None:
        """A deputy's step that their own roles would not allow is taken on the responsible's behalf."""
        borrowed = ctx.actor.borrowed_on(ctx.case)
        if borrowed and not may(ctx.definition, step, ctx.case.state, ctx.actor.roles_on(ctx.case) - borrowed, False):
            return ctx.case.responsible_id
        return None

    def _after_transition(self, ctx: Context, step: Step, from_state: str, seq: int, closing: bool) -> None:
        session, case, now = ctx.session, ctx.case, ctx.now
        if step.meets:
            self._resolve_deadlines(session, case, DeadlineStatus.MET, now, kinds=step.meets)
        if step.cancels:
            self._cancel_kinds(session, case, step.cancels, now)
        if closing:
            self._resolve_deadlines(session, case, DeadlineStatus.CANCELLED, now)
        self._write_deadlines(ctx, step, seq)
        self._write_notifications(ctx, ctx.definition, step, seq)
        if case.state != from_state:
            self._notify_owner(ctx, ctx.definition, case.state, seq)

    def _skip_unowned(self, session, definition, case, trigger, dest) -> tuple[str, list[str]]:
        """Follow `trigger` past levels whose owner role has nobody left to own them."""
        skipped = []
        while definition.state(dest).get("skip_if_unowned"):
            owner = definition.state(dest).get("owner")
            if not owner or self.recipients(session, case, owner):
                break
            further = destination(definition.machine, trigger, dest)
            if further is None:
                break
            skipped.append(dest)
            dest = further
        return dest, skipped

    def _notify_owner(self, ctx: Context, definition: Definition, state: str, seq: int) -> None:
        """A level's owner is told when the case arrives at it."""
        spec = definition.state(state)
        owner = spec.get("owner")
        if not owner or not spec.get("notify_owner", True):
            return
        subject = self.text("subject.level_reached", state=spec.get("label") or state,
                            title=ctx.case.title or definition.title)
        for uid, address in self.recipients(ctx.session, ctx.case, owner):
            self._queue(ctx, seq, uid, address, owner, "level_reached", subject)

    # -- documents and signatures -----------------------------------------------

    def add_document(self, session: Session, actor: Actor, case_id: int, kind: Any, content: Any) -> Document:
        now = self.clock.now()
        case = self.get_case(session, actor, case_id, for_update=True)
        definition = self.definition(case.definition)
        if not isinstance(kind, str) or kind not in definition.documents:
            raise ValidationError(f"unknown document kind {kind!r} for {case.workflow_key}",
                                  {"kind": [f"one of {', '.join(definition.documents)}"]})
        spec = definition.documents[kind]
        if not actor.roles_on(case) & set(spec["authors"]):
            raise Forbidden(f"your role may not write documents of kind {kind}", {"allowed_roles": spec["authors"]})
        if case.state in definition.final_states:
            raise TransitionNotAllowed("the case is closed", {"state": case.state})
        errors = fields.check_document(spec, content)
        ctx = self._context(session, case, definition, actor, now, case.data, None)
        # every problem at once: the validators too (they read only values they can parse), never over a field's own
        for entry in spec["validators"] if isinstance(content, dict) else []:
            args = {k: v for k, v in entry.items() if k != "validator"}
            for key, problem in (self.registry.validators[entry["validator"]](ctx, content, **args) or {}).items():
                errors.setdefault(key, problem)
        if errors:
            raise ValidationError(f"invalid {kind}: " + "; ".join(f"{k} {v}" for k, v in errors.items()), errors)
        doc = self.write_document(ctx, kind, content)
        event = audit.new_event(case, now, actor.id, "document_added",
                                data={"document_id": doc.id, "kind": kind, "version": doc.version,
                                      "sha256": doc.sha256})
        audit.append_only_event(session, case, event, now)
        self.request_signatures(ctx, doc, event.seq)
        return doc

    def write_document(self, ctx: Context, kind: str, content: dict) -> Document:
        """Store the next version of a document kind; the caller records it in the audit trail."""
        spec = ctx.definition.documents[kind]
        case = ctx.case
        previous = ctx.documents.get(kind)
        signers = []
        for pseudo in spec["signers"]:
            uid = {"subject": case.subject_id, "responsible": case.responsible_id, "opener": case.opened_by_id}[pseudo]
            if uid is not None and uid not in signers:
                signers.append(uid)
        doc = Document(case_id=case.id, kind=kind, version=(previous.version + 1) if previous else 1,
                       content=content, sha256=sha256_hex(canonical_json(content)), required_signer_ids=signers,
                       created_by_id=ctx.actor.id, created_at=ctx.now)
        ctx.session.add(doc)
        ctx.session.flush()
        ctx.documents[kind] = doc
        return doc

    def get_document(self, session: Session, actor: Actor, document_id: int) -> tuple[Document, Case]:
        doc = session.get(Document, document_id)
        if doc is None:
            raise NotFound("document not found", {"document_id": document_id})
        try:
            case = self.get_case(session, actor, doc.case_id)
        except NotFound:
            raise NotFound("document not found", {"document_id": document_id}) from None
        return doc, case

    def sign(self, session: Session, actor: Actor, document_id: int, verdict: Any, comment: Any = "") -> Signature:
        now = self.clock.now()
        doc, case = self.get_document(session, actor, document_id)
        if verdict not in tuple(Verdict):
            raise ValidationError("verdict must be agreed or seen_not_agreed",
                                  {"verdict": ["must be agreed or seen_not_agreed"]})
        comment = comment or ""
        if not isinstance(comment, str) or len(comment) > fields.MAX_TEXT:
            raise ValidationError("comment must be a string", {"comment": ["must be a string of at most 20000"]})
        if actor.id not in doc.required_signer_ids:
            raise Forbidden("you are not a required signer of this document", {})
        if verdict == Verdict.SEEN_NOT_AGREED and actor.id != case.subject_id:
            raise ValidationError("only the subject may sign 'seen, not agreed'",
                                  {"verdict": ["only the subject may sign seen_not_agreed"]})
        definition = self.definition(case.definition)
        if case.state in definition.final_states and not _signable_after_close(definition, doc, case):
            raise TransitionNotAllowed("the case is closed: its documents can no longer be signed",
                                       {"state": case.state})
        if any(s.signer_id == actor.id for s in doc.signatures):
            raise TransitionNotAllowed("you have signed this document already", {"document_id": doc.id})
        newest = session.scalar(select(Document.id).where(Document.case_id == doc.case_id, Document.kind == doc.kind)
                                .order_by(Document.version.desc()).limit(1))
        if newest != doc.id:
            raise TransitionNotAllowed("a newer version of this document exists; sign that one",
                                       {"document_id": doc.id, "newest_id": newest})
        signature = Signature(document_id=doc.id, signer_id=actor.id, verdict=verdict, comment=comment,
                              document_sha256=doc.sha256, signed_at=now)
        event = audit.new_event(case, now, actor.id, "document_signed",
                                data={"document_id": doc.id, "kind": doc.kind, "version": doc.version,
                                      "sha256": doc.sha256, "verdict": verdict, "comment": comment})
        doc_id = doc.id  # the failed flush below expires every loaded row
        try:
            session.add(signature)
            audit.append_only_event(session, case, event, now)
            session.flush()
        except IntegrityError:  # the same signature at the same moment (two tabs): the first one counts
            raise TransitionNotAllowed("you have signed this document already", {"document_id": doc_id}) from None
        session.refresh(doc, ["signatures"])
        if set(doc.required_signer_ids) <= {s.signer_id for s in doc.signatures}:
            outbox.release_held(session, case.id, doc.id, now)
        self._tell_author(session, case, doc, actor, now, event.seq, verdict)
        return signature

    def _tell_author(self, session, case: Case, doc: Document, actor: Actor, now, seq: int, verdict: str) -> None:
        """The author learns that a signer signed, and how (a dissent most of all): no need to look."""
        if not doc.created_by_id or doc.created_by_id == actor.id:
            return
        definition = self.definition(case.definition)
        title = (definition.documents.get(doc.kind) or {}).get("title") or doc.kind
        key = "subject.document_dissented" if verdict == Verdict.SEEN_NOT_AGREED else "subject.document_signed"
        subject = self.text(key, document=title, title=case.title or definition.title)
        ctx = self._context(session, case, definition, actor, now, {}, None)
        self._queue(ctx, seq, doc.created_by_id, None, "author", "document_signed", subject)

    # -- internals --------------------------------------------------------------

    def _context(self, session, case, definition, actor, now, data, trigger) -> Context:
        merged = {**(case.data or {}), **data}
        return Context(session=session, case=case, definition=definition, actor=actor, now=now, data=merged,
                       input=data, config=self.config, trigger=trigger, engine=self)

    def _fill_defaults(self, ctx: Context, specs: dict) -> dict:
        """Fields a client left out that the definition can fill (the day of the step, another input,
        a document's value, a fixed value), written into the step's input; returns that input."""
        for name, spec in specs.items():
            default = spec.get("default")
            if default is None or not fields.is_empty(ctx.input.get(name)):
                continue
            if isinstance(default, bool):
                value = default
            elif default == "today":
                value = local_date(ctx.now, self.config.timezone).isoformat()
            elif default.startswith("field:"):
                value = ctx.input.get(default.removeprefix("field:"))
            elif default.startswith("="):
                value = default[1:]
            else:  # documents.<kind>.<field>
                value = ctx.value(default)
            if not fields.is_empty(value):
                ctx.input[name] = ctx.data[name] = value
        return ctx.input

    def _check_step(self, ctx: Context, step: Step) -> None:
        # Only declared inputs: the engine's own fields (e.g. collected evaluations) are never writable.
        errors = {f"data.{key}": ["not an input of this step"] for key in sorted(set(ctx.input) - set(step.input))}
        if errors:
            raise ValidationError("unknown data fields: " + ", ".join(sorted(errors)), errors)
        today = local_date(ctx.now, self.config.timezone)
        for name, spec in step.input.items():
            errors.update(fields.type_errors(spec, ctx.input.get(name), f"data.{name}"))
            day = fields.parse_date(ctx.input.get(name)) if spec.get("not_future") else None
            if day is not None and day > today and f"data.{name}" not in errors:
                errors[f"data.{name}"] = "must not be in the future"
        if errors:
            raise ValidationError("invalid data: " + "; ".join(f"{k} {v}" for k, v in errors.items()), errors)
        problems = []
        for name, spec in step.input.items():
            for path, reason in fields.missing(spec, ctx.data.get(name), name, False):
                problems.append(self._unmet_field(step, path, reason))
        for entry in step.requires:
            args = {k: v for k, v in entry.items() if k != "guard"}
            result = self.registry.guards[entry["guard"]](ctx, **args)
            if isinstance(result, dict):
                problems.append(result)
            elif result:
                problems.extend(result)
        if problems:
            raise PreconditionFailed(problems)

    def _stamp_item_ids(self, ctx: Context, step: Step) -> None:
        """Give each item of an `item_ids` list a stable id, so that a later step names the item and not its
        place in the list. The id is derived from the case, its version and the item: the same on a retry."""
        for name, spec in step.input.items():
            items = ctx.input.get(name)
            if not spec.get("item_ids") or not isinstance(items, list):
                continue
            stamped = []
            for index, item in enumerate(items):
                seed = canonical_json({"case": ctx.case.id, "version": ctx.case.version, "index": index,
                                       "item": item})
                stamped.append({**item, "id": "a" + sha256_hex(seed)[:9]} if isinstance(item, dict) else item)
            ctx.input[name] = ctx.data[name] = stamped

    def remind(self, session: Session, actor: Actor, case_id: int) -> list[int]:
        """The next level asks the owner of a passed deadline to act: an audited reminder by mail.

        Allowed to whoever the passed deadline shows up for besides its owner (`next_level_owner`:
        a COC chair on an overdue GBT); returns the ids of the deadlines reminded of."""

        now = self.clock.now()
        case = self.get_case(session, actor, case_id, for_update=True)
        definition = self.definition(case.definition)
        late = list(session.scalars(select(Deadline).where(Deadline.case_id == case.id, Deadline.status.in_(
            DEADLINE_OPEN), passed(now)).order_by(Deadline.due_at)))
        if not late:  # first: a stale page answers the same to everyone who sees the case
            raise TransitionNotAllowed("no deadline of this case has passed", {})
        if next_level_owner(definition, case.state) not in actor.roles_on(case):
            raise Forbidden("only the next level may send a reminder", {})
        event = audit.new_event(case, now, actor.id, "reminder_sent",
                                data={"deadline_ids": [d.id for d in late]})
        audit.append_only_event(session, case, event, now)
        ctx = self._context(session, case, definition, actor, now, {}, None)
        for d in late:
            subject = self.text("subject.reminder_sent", label=d.label or d.kind, title=case.title or definition.title)
            for uid, address in self.recipients(session, case, d.owner_role):
                self._queue(ctx, event.seq, uid, address, d.owner_role, "reminder_sent", subject)
        return [d.id for d in late]

    def open_blockers(self, session: Session, actor: Actor, definition: Definition, parent: Case) -> list[dict]:
        """What would refuse opening `definition` as a child of `parent` now, before any input: the open
        step's guards on a case that is not stored. A page hides a form that cannot succeed and says why."""
        probe = Case(workflow_key=definition.key, parent_id=parent.id, institution_id=parent.institution_id,
                     region_id=parent.region_id, subject_id=parent.subject_id, opened_by_id=actor.id, data={})
        probe.institution = parent.institution
        ctx = self._context(session, probe, definition, actor, self.clock.now(), {}, None)
        problems = []
        for entry in definition.open.requires:
            args = {k: v for k, v in entry.items() if k != "guard"}
            result = self.registry.guards[entry["guard"]](ctx, **args)
            problems.extend([result] if isinstance(result, dict) else result or [])
        return problems

    def _unmet_field(self, step: Step, path: str, reason: str) -> dict:
        label_nl, label = fields.path_label(step.input, path, "label"), fields.path_label(step.input, path, "label_en")
        kind, _, arg = reason.partition(":")
        text = self.registry.text
        value_en = text(f"value.{arg}") if arg in ("True", "False") else self.registry.choice_word(arg) or arg
        value_nl = text(f"value.{arg}", "nl") if arg in ("True", "False") else self.registry.choice_word(arg, "nl") or arg
        return unmet(f"input.{kind}", text(f"unmet.input.{kind}", label=label, n=arg, value=value_en),
                     text(f"unmet.input.{kind}", "nl", label=label_nl, n=arg, value=value_nl),
                     field=f"data.{path}")

    def _new_data(self, old: dict, data: dict, step: Step, actor: Actor, now: datetime) -> dict:
        new = dict(old or {})
        for key, value in data.items():
            if key in step.collect:
                target = step.collect[key]
                entry = dict(value) if isinstance(value, dict) else {"value": value}
                # provenance is the server's to write: a client's recorded_by/recorded_at are overwritten
                entry["recorded_at"] = now.isoformat()
                entry["recorded_by"] = actor.id
                new[target] = [*new.get(target, []), entry]
            else:
                new[key] = value
        return new

    def _run_effects(self, ctx: Context, step: Step) -> list:
        results = []
        for entry in step.effects:
            args = {k: v for k, v in entry.items() if k != "effect"}
            outcome = self.registry.effects[entry["effect"]](ctx, **args)
            if outcome:
                results.append({"effect": entry["effect"], **outcome})
        return results

    # deadlines

    def _write_deadlines(self, ctx: Context, step: Step, seq: int) -> None:
        for spec in step.deadlines:
            items = ctx.value(spec["for_each"]) if spec.get("for_each") else [None]
            for index, item in enumerate(items if isinstance(items, list) else [], start=1):
                ctx.item = item
                day = due_date(ctx, spec["due"], self.config.timezone, self.config.calendar)
                if day is None:
                    continue
                owner = spec["owner_role"]
                if owner.startswith("item."):
                    owner = str(ctx.value(owner) or "")
                label = spec["label"] or spec["kind"]
                if item is not None and isinstance(item, dict) and item.get("description"):
                    label = f"{label}: {item['description']}"[:300]
                suffix = item.get("id") if isinstance(item, dict) and item.get("id") else index
                ctx.session.add(new_deadline(
                    ctx.case.id, f"{spec['kind']}_{suffix}" if item is not None else spec["kind"], label,
                    self.config.calendar.roll(day, spec.get("roll")), owner or "owner", spec["remind_days_before"],
                    ctx.now, self.config))
            ctx.item = None

    def _resolve_deadlines(self, session, case, status, now, kinds=None) -> None:
        params = {"_case_id": case.id, "_status": status, "_resolved_at": now}
        if kinds:
            params["_kinds"] = list(kinds)
        session.flush()  # as the ORM update did: rows added in this transaction are resolved too
        session.connection().execute(_RESOLVE[bool(kinds)], params)

    def _cancel_kinds(self, session, case, kinds, now) -> None:
        """Open deadlines of `kinds`, and the per-item ones `<kind>_<id>` made from them, cancelled."""
        session.flush()
        open_kinds = session.scalars(select(Deadline.kind).where(Deadline.case_id == case.id,
                                                                 Deadline.status.in_(DEADLINE_OPEN))).all()
        chosen = {k for k in open_kinds if any(k == base or k.startswith(base + "_") for base in kinds)}
        if chosen:
            self._resolve_deadlines(session, case, DeadlineStatus.CANCELLED, now, kinds=sorted(chosen))

    # notifications (the outbox)

    def recipients(self, session: Session, case: Case, to: str) -> list[tuple[int | None, str | None]]:
        """(user id, external address) pairs for a recipient spec."""
        if to in ("subject", "opener", "responsible"):
            uid = {"subject": case.subject_id, "opener": case.opened_by_id, "responsible": case.responsible_id}[to]
            return [(uid, None)] if uid else []
        if to.startswith("external:"):
            address = self.config.external_recipients.get(to.split(":", 1)[1])
            return [(None, address)] if address else []
        role, _, where = to.partition("@")
        institution_id = self._subject_institution(session, case, where) if where else case.institution_id
        excluded = select(CaseExclusion.user_id).where(CaseExclusion.case_id == case.id)
        q = (select(RoleAssignment.user_id).join(User, User.id == RoleAssignment.user_id)
             .where(RoleAssignment.role == role, User.active.is_(True), RoleAssignment.user_id.not_in(excluded))
             .where((RoleAssignment.institution_id == institution_id)
                    | (RoleAssignment.institution_id.is_(None) & (RoleAssignment.region_id == case.region_id)))
             .order_by(RoleAssignment.user_id).distinct())
        if role in self.config.programme_roles:
            programme = case.programme or self.config.default_programme
            q = q.where(func.coalesce(RoleAssignment.programme, self.config.default_programme) == programme)
        return [(uid, None) for uid in session.scalars(q)]

    @staticmethod
    def _subject_institution(session: Session, case: Case, where: str) -> int:
        """`employer` or `placement` of the case's subject by their training record; else where the case sits."""
        column = {"employer": TrainingRecord.employer_id, "placement": TrainingRecord.placement_id}[where]
        found = session.scalar(select(column).where(TrainingRecord.subject_id == case.subject_id)) \
            if case.subject_id else None
        return found or case.institution_id

    def _write_notifications(self, ctx: Context, definition: Definition, step: Step, seq: int) -> None:
        for spec in step.notify:
            if spec.get("when") and ctx.value(spec["when"]) is not True:
                continue  # "zo nodig": only when the step says so
            subject = outbox.safe_format(spec["subject"], title=ctx.case.title or definition.title,
                                         workflow=definition.title, case_id=ctx.case.id)
            for uid, address in self.recipients(ctx.session, ctx.case, spec["to"]):
                self._queue(ctx, seq, uid, address, spec["to"].partition("@")[0], spec["kind"], subject)

    def _queue(self, ctx: Context, seq, uid, address, role, kind, subject, attachments=(), held_for=None) -> None:
        if uid is not None and uid == getattr(ctx.actor, "id", None):
            return  # nobody is mailed about what they did themselves: they saw it happen
        key = f"{ctx.case.id}:{seq}:{outbox.recipient_key(uid, address)}:{kind}"
        outbox.add(ctx.session, key=key, case_id=ctx.case.id, seq=seq, uid=uid, address=address, role=role,
                   kind=kind, subject=subject, now=ctx.now, attachments=attachments, held_for=held_for)

    def send_document(self, ctx: Context, doc: Document, to: str, kind: str, subject: str, seq: int,
                      held_for: Document | None = None, seen: set | None = None, enclosed: tuple | list = ()) -> int:
        """Queue the document (and the `enclosed` ones) as PDF attachments to every recipient of `to`;
        returns how many.

        With `held_for` the rows wait (status held) until every signer has signed that document.
        `seen`: recipients already sent this document in the same step (one who holds two of the roles
        gets it once)."""
        seen = set() if seen is None else seen
        recipients = [r for r in self.recipients(ctx.session, ctx.case, to) if r not in seen]
        seen.update(recipients)
        files = [{"type": "document_pdf", "document_id": d.id} for d in (doc, *enclosed)]
        for uid, address in recipients:
            self._queue(ctx, seq, uid, address, to.partition("@")[0], kind, subject, files,
                        held_for=held_for.id if held_for is not None else None)
        return len(recipients)

    def request_signatures(self, ctx: Context, doc: Document, seq: int) -> None:
        """Ask a document's signers (but the one who wrote it) to sign."""
        spec = ctx.definition.documents[doc.kind]
        subject = self.text("subject.signature_requested", document=spec["title"],
                            title=ctx.case.title or ctx.definition.title)
        for uid in doc.required_signer_ids:
            if uid != ctx.actor.id:
                self._queue(ctx, seq, uid, None, "signer", "signature_requested", subject)


def _compare_and_set(closing: bool):
    """The transition's write to the case, built once: constructing an ORM update on every call
    cost about a tenth of a transition (bench/RESULTS.md). Same SQL, same rowcount."""
    c = Case.__table__.c
    columns = ["state", "version", "data", "audit_seq", "audit_head", "updated_at"] + (["closed_at"] if closing else [])
    return (update(Case.__table__)
            .where(c.id == bindparam("_id"), c.version == bindparam("_expected_version"),
                   c.audit_seq == bindparam("_old_audit_seq"))
            .values({name: bindparam(f"_{name}") for name in columns}))


_COMPARE_AND_SET = {False: _compare_and_set(False), True: _compare_and_set(True)}


def _resolve(by_kind: bool):
    """Open deadlines of a case (of some kinds) met or cancelled, built once like the compare-and-set."""
    c = Deadline.__table__.c
    q = update(Deadline.__table__).where(c.case_id == bindparam("_case_id"), c.status.in_(DEADLINE_OPEN))
    if by_kind:
        q = q.where(c.kind.in_(bindparam("_kinds", expanding=True)))
    return q.values(status=bindparam("_status"), resolved_at=bindparam("_resolved_at"), remind_at=None)


_RESOLVE = {False: _resolve(False), True: _resolve(True)}


def _signable_after_close(definition: Definition, doc: Document, case: Case) -> bool:
    """A letter written by the closing step itself (an outcome report) is signed after it."""
    spec = definition.documents.get(doc.kind, {})
    return bool(spec.get("sign_after_close")) and case.closed_at is not None and doc.created_at >= case.closed_at


def _title(title) -> str:
    """A case's title reaches mail subjects and file names: one line of at most 300 characters."""
    title = title or ""
    if not isinstance(title, str) or fields.control_characters(title):
        raise ValidationError("the title must be one line of text", {"title": ["must not contain control characters"]})
    return title[:300]
