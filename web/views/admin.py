"""The administrator's pages: users, institutions, definitions and their versions, the outbox, the audit chain."""
from __future__ import annotations

from collections import defaultdict
from functools import wraps

from flask import abort, flash, g, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import func, select

from engine import audit
from engine.models import (Case, Institution, Notification, OutboxStatus, Region, User, WorkerHeartbeat,
                           WorkflowDefinition)

from ..extensions import db
from .blueprint import ui


def admin_only(view):
    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if not g.actor.has_role("admin"):
            abort(404)  # like a case out of scope: the page does not exist for you
        return view(*args, **kwargs)

    return wrapper


@ui.get("/admin")
@admin_only
def admin_page():
    users = list(db.session.scalars(select(User).order_by(User.name)))  # roles: one selectin query
    insts = db.session.execute(
        select(Institution, Region.name, func.count(Case.id))
        .join(Region, Region.id == Institution.region_id)
        .outerjoin(Case, Case.institution_id == Institution.id)
        .group_by(Institution.id, Region.name).order_by(Institution.name)).all()
    rows = db.session.execute(
        select(WorkflowDefinition.id, WorkflowDefinition.key, WorkflowDefinition.version, WorkflowDefinition.title,
               WorkflowDefinition.sha256, WorkflowDefinition.loaded_at, func.count(Case.id))
        .outerjoin(Case, Case.definition_id == WorkflowDefinition.id)
        .group_by(WorkflowDefinition.id).order_by(WorkflowDefinition.key, WorkflowDefinition.version.desc())).all()
    definitions = defaultdict(list)
    for row in rows:
        definitions[row.key].append(row)
    outbox = db.session.execute(select(Notification.status, func.count()).group_by(Notification.status)
                                .order_by(Notification.status)).all()
    failing = list(db.session.scalars(select(Notification).where(Notification.status.not_in((OutboxStatus.PENDING, OutboxStatus.SENT)))
                                      .order_by(Notification.id.desc()).limit(20)))
    workers = list(db.session.scalars(select(WorkerHeartbeat).order_by(WorkerHeartbeat.seen_at.desc()).limit(10)))
    return render_template("admin.html", users=users, institutions=insts, definitions=dict(definitions),
                           outbox=outbox, failing=failing, workers=workers)


@ui.post("/admin/audit/verify")
@admin_only
def admin_verify():
    cases, events, problem = audit.verify(db.session)
    db.session.rollback()
    if problem is None:
        flash(_("Audit trail intact: %(cases)d cases, %(events)d events verified.", cases=cases, events=events),
              "success")
    else:
        flash(_("Audit trail BROKEN at case %(case)s, event %(seq)s: %(problem)s", case=problem.case_id,
                seq=problem.seq if problem.seq is not None else "—", problem=problem.problem), "error")
    return redirect(url_for("ui.admin_page") + "#audit", 303)
