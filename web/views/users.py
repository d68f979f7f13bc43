"""User administration in the pages: invite, roles, deactivate, reset MFA, deputy; the security log.

Administrators manage every account. A COC chair manages the accounts holding a role at the
institution(s) they chair, and gives or withdraws only roles at those institutions; regional roles
and administrators stay the administrator's. Every change writes a security-log row in the same
transaction, shown on the account's page and in the log (web/security_log.py).

A role's scope is a list of fields (SCOPE_FIELDS): each has its form name, its column on the role
assignment and the choices the actor may use. A programme is one more entry there (and its column).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import wraps
from typing import Callable

from flask import Response, abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from sqlalchemy import select

from engine.models import Institution, Programme, Region, RoleAssignment, User
from workflows.roles import INSTITUTION_ROLES, PROGRAMME_ROLES, ROLES

from .. import invitations, mfa, oidc, security_log
from ..auth import end_all_sessions, hash_password
from ..extensions import db
from ..runtime import now
from .auth import password_problem
from .blueprint import ui
from .sso import INVITED


def chaired(actor) -> set[int] | None:
    """The institutions whose accounts `actor` manages; None: every account (an administrator)."""
    if actor.has_role("admin"):
        return None
    return {inst for role, inst, *_ in actor.assignments if role == "coc_chair" and inst is not None}


def user_admin(view):
    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if chaired(g.actor) == set():
            abort(404)  # like a case out of scope: the page does not exist for you
        return view(*args, **kwargs)

    return wrapper


def _manageable(user: User) -> bool:
    scope = chaired(g.actor)
    if scope is None:
        return True
    roles = user.roles
    return (bool(roles) and not any(a.role == "admin" for a in roles)
            and any(a.institution_id in scope for a in roles))


def _target(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None or not _manageable(user):
        abort(404)
    return user


@dataclass(frozen=True)
class ScopeField:
    """One part of a role's scope in the forms: the form field, the assignment's column, the choices."""

    name: str
    label: object  # a lazy translation
    column: str
    choices: Callable[[], list]
    stored: str = "id"  # the attribute of the chosen row the column keeps (a programme: its code)
    roles: tuple[str, ...] = ()  # only these roles have it (none: every role)


def _institutions() -> list[Institution]:
    scope = chaired(g.actor)
    query = select(Institution).order_by(Institution.name)
    if scope is not None:
        query = query.where(Institution.id.in_(scope))
    return list(db.session.scalars(query))


def _regions() -> list[Region]:
    return list(db.session.scalars(select(Region).order_by(Region.name)))


def _programmes() -> list[Programme]:
    return list(db.session.scalars(select(Programme).order_by(Programme.name)))


SCOPE_FIELDS = (
    ScopeField("institution", _l("Institution"), "institution_id", _institutions),
    ScopeField("region", _l("Region"), "region_id", _regions),
    # opleider, plv. opleider and the RSO roles serve one programme; none chosen: the region's default
    ScopeField("programme", _l("Programme"), "programme", _programmes, stored="code", roles=PROGRAMME_ROLES),
)


def _assignable_roles() -> tuple[str, ...]:
    return ROLES if chaired(g.actor) is None else INSTITUTION_ROLES


def _chosen(field: ScopeField):
    raw = request.form.get(field.name) or ""
    allowed = {str(c.id): c for c in field.choices()}
    if raw and raw not in allowed:
        abort(404)  # not one of your choices
    return allowed.get(raw)


def assignment_from_form() -> tuple[dict | None, str | None]:
    """The role assignment the form asks for, as columns, or the reason it cannot be given."""
    role = request.form.get("role") or ""
    if role not in _assignable_roles():
        return None, _("Choose a role.")
    chosen = {f.name: _chosen(f) for f in SCOPE_FIELDS}
    inst, region = chosen.get("institution"), chosen.get("region")
    if role in INSTITUTION_ROLES and inst is None:
        return None, _("This role needs an institution.")
    if role not in INSTITUTION_ROLES:
        chosen["institution"] = inst = None
    if inst is not None:
        chosen["region"] = region = db.session.get(Region, inst.region_id)
    if region is None:
        regions = _regions()
        chosen["region"] = region = regions[0] if regions else None
    if region is None:
        return None, _("There is no region yet.")
    columns = {f.column: (getattr(chosen[f.name], f.stored) if chosen[f.name] is not None
                          and (not f.roles or role in f.roles) else None) for f in SCOPE_FIELDS}
    return {"role": role, **columns}, None


def _describe(a: RoleAssignment | dict) -> str:
    get = a.get if isinstance(a, dict) else (lambda k: getattr(a, k))
    return " ".join(f"{f.name}={get(f.column)}" for f in SCOPE_FIELDS if get(f.column) is not None) + \
        f" role={get('role')}"


def _forms_context() -> dict:
    return {"scope_fields": [(f, f.choices()) for f in SCOPE_FIELDS], "assignable": _assignable_roles()}


@ui.get("/admin/users")
@user_admin
def users_page():
    scope = chaired(g.actor)
    query = select(User).order_by(User.name)
    if scope is not None:
        query = query.where(User.roles.any(RoleAssignment.institution_id.in_(scope)))
    users = [u for u in db.session.scalars(query) if _manageable(u)]
    return render_template("users.html", users=users, sso=oidc.enabled(), **_forms_context())


@ui.post("/admin/users/invite")
@user_admin
def user_invite():
    email = (request.form.get("email") or "").strip().lower()
    name = (request.form.get("name") or "").strip()
    columns, problem = assignment_from_form()
    if not email or "@" not in email or not name:
        problem = _("Give a name and an e-mail address.")
    elif db.session.scalar(select(User.id).where(User.email == email)):
        problem = _("A user with this e-mail address exists already.")
    if problem:
        flash(problem, "error")
        return redirect(url_for("ui.users_page"), 303)
    user = User(email=email, name=name[:200], active=True, created_at=now(), language="nl",
                employee_number=(request.form.get("employee_number") or "").strip() or None)
    user.roles.append(RoleAssignment(**columns))
    db.session.add(user)
    db.session.flush()
    invitations.invite(user, g.user, sso_name=oidc.display_name() if oidc.enabled() else None)
    security_log.record("user.invited", user=user, actor=g.user, method="admin", detail=_describe(columns))
    db.session.commit()
    flash(_("%(name)s has been invited.", name=user.name), "success")
    return redirect(url_for("ui.user_page", user_id=user.id), 303)


@ui.get("/admin/users/<int:user_id>")
@user_admin
def user_page(user_id: int):
    user = _target(user_id)
    deputies = [u for u in db.session.scalars(select(User).where(User.active.is_(True), User.id != user.id)
                                              .order_by(User.name)) if _manageable(u)]
    events = list(security_log.events(user_id=user.id, limit=100))
    return render_template("user.html", user=user, deputies=deputies, events=events,
                           can_change=lambda a: chaired(g.actor) is None or a.institution_id in chaired(g.actor),
                           **_forms_context())


def _done(user: User, message: str):
    db.session.commit()
    flash(message, "success")
    return redirect(url_for("ui.user_page", user_id=user.id), 303)


@ui.post("/admin/users/<int:user_id>/roles")
@user_admin
def user_role_add(user_id: int):
    user = _target(user_id)
    columns, problem = assignment_from_form()
    if problem is None and any(all(getattr(a, k) == v for k, v in columns.items()) for a in user.roles):
        problem = _("This user has this role already.")
    if problem:
        flash(problem, "error")
        return redirect(url_for("ui.user_page", user_id=user.id), 303)
    user.roles.append(RoleAssignment(**columns))
    security_log.record("role.assigned", user=user, actor=g.user, method="admin", detail=_describe(columns))
    return _done(user, _("The role has been given."))


@ui.post("/admin/users/<int:user_id>/roles/<int:assignment_id>/withdraw")
@user_admin
def user_role_withdraw(user_id: int, assignment_id: int):
    user = _target(user_id)
    assignment = next((a for a in user.roles if a.id == assignment_id), None)
    scope = chaired(g.actor)
    if assignment is None or (scope is not None and assignment.institution_id not in scope):
        abort(404)
    detail = _describe(assignment)
    user.roles.remove(assignment)
    end_all_sessions(user)  # a session must not keep what the role gave
    security_log.record("role.withdrawn", user=user, actor=g.user, method="admin", detail=detail)
    return _done(user, _("The role has been withdrawn."))


@ui.post("/admin/users/<int:user_id>/active")
@user_admin
def user_active(user_id: int):
    user = _target(user_id)
    if user.id == g.user.id:
        abort(409)  # locking yourself out is never what was meant
    user.active = request.form.get("active") == "1"
    # Deactivation ends every session and API token (web/auth.py, in this flush).
    security_log.record("user.activated" if user.active else "user.deactivated", user=user, actor=g.user,
                        method="admin")
    return _done(user, _("The account is active again.") if user.active else _("The account has been deactivated."))


@ui.post("/admin/users/<int:user_id>/mfa/reset")
@user_admin
def user_mfa_reset(user_id: int):
    user = _target(user_id)
    mfa.reset(user)
    end_all_sessions(user)
    security_log.record("mfa.reset", user=user, actor=g.user, method="admin")
    return _done(user, _("Two-step verification has been reset; the user sets it up again at the next login."))


@ui.post("/admin/users/<int:user_id>/deputy")
@user_admin
def user_deputy(user_id: int):
    user = _target(user_id)
    raw = request.form.get("deputy") or ""
    deputy = _target(int(raw)) if raw.isdigit() else None
    if deputy is not None and deputy.id == user.id:
        abort(404)
    user.deputy_id = deputy.id if deputy else None
    security_log.record("deputy.set", user=user, actor=g.user, method="admin",
                        detail=f"deputy={deputy.id}" if deputy else "deputy=none")
    return _done(user, _("The deputy has been set.") if deputy else _("The deputy has been removed."))


@ui.post("/admin/users/<int:user_id>/invite")
@user_admin
def user_reinvite(user_id: int):
    user = _target(user_id)
    if not user.active:
        flash(_("Activate the account first."), "error")
        return redirect(url_for("ui.user_page", user_id=user.id), 303)
    invitations.invite(user, g.user, sso_name=oidc.display_name() if oidc.enabled() else None)
    security_log.record("user.invited", user=user, actor=g.user, method="admin", detail="again")
    return _done(user, _("A new invitation has been sent."))


def _admin_only_page():
    if chaired(g.actor) is not None:
        abort(404)


@ui.get("/admin/security-log")
@user_admin
def security_log_page():
    _admin_only_page()
    events = list(security_log.events(limit=300))
    ids = {e.user_id for e in events} | {e.actor_id for e in events}
    names = dict(db.session.execute(select(User.id, User.name).where(User.id.in_(ids - {None}))).all())
    return render_template("security_log.html", events=events, names=names)


@ui.get("/admin/security-log.csv")
@user_admin
def security_log_csv():
    _admin_only_page()
    security_log.record("security_log.exported", user=g.user, actor=g.user, method="admin")
    db.session.commit()
    return Response(security_log.as_csv(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=security-log.csv"})


@ui.route("/invite/<token>", methods=["GET", "POST"])
def invitation(token: str):
    row = invitations.find(token)
    if row is None:
        return render_template("sso_refused.html", heading=_("This link cannot be used"),
                               message=_("The invitation has been used already, has expired, or does not exist. "
                                         "Ask for a new one.")), 404
    user = db.session.get(User, row.user_id)
    error = None
    if request.method == "POST":
        new, repeat = request.form.get("new") or "", request.form.get("repeat") or ""
        error = password_problem(new, user.email) or (_("The two new passwords differ.") if new != repeat else None)
        if error is None:
            user.password_hash = hash_password(new)
            invitations.use(row)
            security_log.record("password.set", user=user, actor=user, method="invitation")
            db.session.commit()
            flash(_("Your password has been set. Log in with it."), "success")
            return redirect(url_for("ui.login"), 303)
    return render_template("invitation.html", user=user, token=token, error=error,
                           sso_name=oidc.display_name() if oidc.enabled() else None), (422 if error else 200)


@ui.post("/invite/<token>/sso")
def invitation_sso(token: str):
    row = invitations.find(token)
    if row is None or not oidc.enabled():
        abort(404)
    session[INVITED] = row.id
    return oidc.begin()
