"""Who sees which case: one place, applied inside every case query (never per view).

Rules are data: each definition's `visibility` maps a role to `institution` or `region`.
Always, whatever the configuration: the subject and the opener see their own case;
superusers (configured, e.g. admin) see everything.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, exists, or_, true

from .models import Case, CaseExclusion


@dataclass(frozen=True)
class Actor:
    id: int
    # (role, institution_id or None for a regional role, region_id)
    assignments: tuple[tuple[str, int | None, int], ...] = ()
    superuser: bool = False
    name: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

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


REDACTED = "[vertrouwelijk]"


def redact(confidential: dict[str, list[str]], data: dict, roles: set[str]) -> dict:
    """Hide confidential fields (e.g. a signaller's identity) from everyone but the listed roles."""
    if not confidential or not isinstance(data, dict):
        return data
    hidden = {k for k, allowed in confidential.items() if k in data and not roles & set(allowed)}
    return {k: (REDACTED if k in hidden else v) for k, v in data.items()} if hidden else data
