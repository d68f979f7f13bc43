"""Who sees which case, and who may act on it: one place each.

Seeing is applied inside every case query (never per view). Rules are data: each
definition's `visibility` maps a role to `institution` or `region`. Always, whatever the
configuration: the subject and the opener see their own case; superusers (configured,
e.g. admin) see everything.

Acting: a step (opening, or a transition) lists the roles that may take it; `owner` in
that list means the owner role of the level the case is at, `*` any authenticated role.
A step's `when_overdue` roles may take it too while the level's deadline is overdue.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, exists, or_

from .machine import triggers_from
from .models import Case, CaseExclusion

PSEUDO_ROLES = ("subject", "opener", "responsible")


@dataclass(frozen=True)
class Actor:
    id: int
    # (role, institution_id or None for a regional role, region_id)
    assignments: tuple[tuple[str, int | None, int], ...] = ()
    superuser: bool = False
    name: str = ""

    def roles_at(self, institution_id: int, region_id: int) -> set[str]:
        return {
            role
            for role, inst, region in self.assignments
            if inst == institution_id or (inst is None and region == region_id)
        }

    def roles_on(self, case: Case) -> set[str]:
        roles = self.roles_at(case.institution_id, case.region_id)
        if case.subject_id == self.id:
            roles.add("subject")
        if case.opened_by_id == self.id:
            roles.add("opener")
        if case.responsible_id == self.id:
            roles.add("responsible")
        return roles

    def has_role(self, role: str) -> bool:
        return any(r == role for r, _, _ in self.assignments)


def visible(actor: Actor, visibility_by_key: dict[str, dict[str, str]]):
    """A SQL condition on Case: true for exactly the cases `actor` may see."""
    # A user a case is about (conflict of interest) never sees it, whatever their role.
    not_excluded = ~exists().where(CaseExclusion.case_id == Case.id, CaseExclusion.user_id == actor.id)
    if actor.superuser:
        return not_excluded
    clauses = [Case.subject_id == actor.id, Case.opened_by_id == actor.id]
    for role, inst, region in actor.assignments:
        by_scope: dict[str, list[str]] = {"institution": [], "region": []}
        for key, vis in visibility_by_key.items():
            scope = vis.get(role)
            if scope:
                by_scope[scope].append(key)
        if by_scope["institution"] and inst is not None:
            clauses.append(and_(Case.institution_id == inst, Case.workflow_key.in_(by_scope["institution"])))
        if by_scope["region"]:
            # A regional role sees its region; an institution-bound role with region scope too.
            clauses.append(and_(Case.region_id == region, Case.workflow_key.in_(by_scope["region"])))
    return and_(or_(*clauses), not_excluded)


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
    return Actor(id=None, assignments=tuple((role, case.institution_id, case.region_id) for role in sorted(allowed)),
                 superuser=True, name=name)
