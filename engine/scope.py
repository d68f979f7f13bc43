"""Who sees which case, and who may act on it: one place each.

Seeing is applied inside every case query (never per view). Rules are data: each
definition's `visibility` maps a role to `institution` or `region`. Always, whatever the
configuration: the subject and the opener see their own case; superusers (configured,
e.g. admin) see everything.

Acting: a step (opening, or a transition) lists the roles that may take it; `owner` in
that list means the owner role of the level the case is at, `*` any authenticated role.
A step's `when_overdue` roles may take it too while the level's deadline is overdue.

Programmes: an assignment may carry a programme (a specialty's training); it then covers only the
cases of that programme (a case without one belongs to the region's default). A deputy role
(`EngineConfig.deputies`) holds, on a case, the role it deputises for.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, exists, or_, select

from .machine import triggers_from
from .models import Case, CaseExclusion, TrainingRecord

PSEUDO_ROLES = ("subject", "opener", "responsible")


@dataclass(frozen=True)
class Actor:
    id: int
    # (role, institution_id or None for a regional role, region_id, programme or None for all)
    assignments: tuple[tuple[str, int | None, int, str | None], ...] = ()
    superuser: bool = False
    name: str = ""
    default_programme: str = ""  # the programme of a case stored without one
    deputies: tuple[tuple[str, str], ...] = ()  # (deputy role, the role it acts for)

    def roles_at(self, institution_id: int, region_id: int, programme: str | None = None) -> set[str]:
        """The roles held here; `programme` given: only assignments that cover that programme."""
        programme = programme or self.default_programme
        roles = {
            role
            for role, inst, region, prog in self.assignments
            if (inst == institution_id or (inst is None and region == region_id))
            and (prog is None or not programme or prog == programme)
        }
        return roles | {principal for deputy, principal in self.deputies if deputy in roles}

    def borrowed_on(self, case: Case) -> set[str]:
        """The roles held on `case` only as someone's deputy (an act with them is on another's behalf)."""
        programme = case.programme or self.default_programme
        own = {role for role, inst, region, prog in self.assignments
               if (inst == case.institution_id or (inst is None and region == case.region_id))
               and (prog is None or prog == programme)}
        return {principal for deputy, principal in self.deputies if deputy in own and principal not in own}

    def roles_on(self, case: Case) -> set[str]:
        roles = self.roles_at(case.institution_id, case.region_id, case.programme)
        if case.subject_id == self.id:
            roles.add("subject")
        if case.opened_by_id == self.id:
            roles.add("opener")
        if case.responsible_id == self.id:
            roles.add("responsible")
        return roles

    def has_role(self, role: str) -> bool:
        return any(r == role for r, _, _, _ in self.assignments)


def visible(actor: Actor, visibility_by_key: dict[str, dict[str, str]]):
    """A SQL condition on Case: true for exactly the cases `actor` may see."""
    # A user a case is about (conflict of interest) never sees it, whatever their role.
    not_excluded = ~exists().where(CaseExclusion.case_id == Case.id, CaseExclusion.user_id == actor.id)
    if actor.superuser:
        return not_excluded
    clauses = [Case.subject_id == actor.id, Case.opened_by_id == actor.id]
    deputy_for = dict(actor.deputies)
    for role, inst, region, programme in actor.assignments:
        by_scope: dict[str, list[str]] = {"institution": [], "region": [], "employer": []}
        for key, vis in visibility_by_key.items():
            scope = vis.get(role) or vis.get(deputy_for.get(role, ""))
            if scope:
                by_scope[scope].append(key)
        of_programme = _of_programme(programme, actor.default_programme)
        if by_scope["institution"] and inst is not None:
            clauses.append(and_(Case.institution_id == inst, Case.workflow_key.in_(by_scope["institution"]),
                                *of_programme))
        if by_scope["region"]:
            # A regional role sees its region; an institution-bound role with region scope too.
            clauses.append(and_(Case.region_id == region, Case.workflow_key.in_(by_scope["region"]), *of_programme))
        if by_scope["employer"] and inst is not None:
            clauses.append(and_(Case.workflow_key.in_(by_scope["employer"]), employed_at(inst), *of_programme))
    return and_(or_(*clauses), not_excluded)


def _of_programme(programme: str | None, default: str) -> tuple:
    if programme is None:
        return ()
    if programme == default:
        return (or_(Case.programme == programme, Case.programme.is_(None)),)
    return (Case.programme == programme,)


def employed_at(institution_id: int):
    """Cases whose subject the institution employs (their training record says so); a subject without
    a record counts as employed where the case sits."""
    record = select(TrainingRecord.subject_id).where(TrainingRecord.subject_id == Case.subject_id)
    return or_(exists(record.where(TrainingRecord.employer_id == institution_id)),
               and_(~exists(record), Case.institution_id == institution_id))


# -- who may act --------------------------------------------------------------------------


def permits(allowed, roles: set[str]) -> bool:
    """'*' in a definition means: any authenticated role."""
    return "*" in allowed and bool(roles) or bool(roles & set(allowed))


def allowed_roles(definition, step, state: str) -> set[str]:
    """The roles a step names, with `owner` replaced by the owner role of `state` (if it has one)."""
    allowed = set(step.roles)
    if "owner" in allowed:
        allowed.discard("owner")
        owner = definition.state(state).get("owner")
        if owner:
            allowed.add(owner)
    return allowed


def may(definition, step, state: str, roles: set[str], overdue: bool) -> bool:
    """May someone with `roles` take `step` from `state`? `overdue`: the level's deadline has passed."""
    if permits(allowed_roles(definition, step, state), roles):
        return True
    return overdue and bool(roles & set(step.when_overdue))


def triggers_for(definition, state: str, roles: set[str], overdue: bool = False) -> list[str]:
    """The triggers someone with `roles` may fire from `state`, in the machine's order."""
    out = []
    for trigger in triggers_from(definition.machine, state):
        step = definition.step(trigger, state)
        if step and may(definition, step, state, roles, overdue):
            out.append(trigger)
    return out


def system_actor(definition, case: Case, trigger: str, name: str) -> Actor:
    """Who fires an automatic escalation: the system, holding exactly the roles the step allows here."""
    step = definition.step(trigger, case.state)
    allowed = allowed_roles(definition, step, case.state) if step else set()
    allowed -= {"*", *PSEUDO_ROLES}
    return Actor(id=None, assignments=tuple((role, case.institution_id, case.region_id, None)
                                            for role in sorted(allowed)),
                 superuser=True, name=name)


# -- training records -----------------------------------------------------------------------


@dataclass(frozen=True)
class RecordPlace:
    """Where a training record sits: whose it is, the placement and employer, the region and programme."""
    subject_id: int
    placement_id: int | None
    employer_id: int | None
    region_id: int
    programme: str


def may_on_record(actor: Actor, place: RecordPlace, roles: dict[str, str]) -> bool:
    """`roles` maps a role to where it must be held: at the record's `placement` or its `employer`.
    Programme-bound roles count only for the record's programme; superusers always."""
    if actor.superuser:
        return True
    for role, inst, _region, programme in actor.assignments:
        where = roles.get(role)
        if not where or inst is None:
            continue
        at = place.placement_id if where == "placement" else place.employer_id
        if inst == at and (programme is None or programme == place.programme):
            return True
    return False


def may_read_record(actor: Actor, place: RecordPlace, roles: dict[str, str]) -> bool:
    """The aios reads their own record; the others as `may_on_record` says."""
    return actor.id == place.subject_id or may_on_record(actor, place, roles)
