"""Who read a personal case: the one writer of the access log (API and pages), and its readers
(the aios the case is about, the case page, the admin's export)."""
from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import datetime
from typing import Iterator

from flask import g, request
from sqlalchemy import insert, select

from engine.models import AccessLog, Case, RoleAssignment, User

from .extensions import db
from .runtime import engine, now


def log_read(case: Case, action: str) -> None:
    """Every read of a personal case is recorded: who, when, what."""
    log_reads([case], action)


def visible_case(case_id: int, action: str) -> Case:
    """The case if it is in the reader's scope (else 404), its read written to the access log."""
    case = engine().get_case(db.session, g.actor, case_id)
    log_read(case, action)
    return case


def log_reads(cases: list[Case], action: str) -> None:
    """One INSERT for a whole page of cases (executemany), whatever the page size."""
    _write([c.id for c in cases if engine().definition(c.definition).category == "personal"], action)


def log_record_read(subject_id: int, action: str = "record") -> None:
    """A read of a training record is a read of personal data too."""
    db.session.execute(insert(AccessLog), [{"at": now(), "user_id": g.user.id, "case_id": None,
                                            "subject_id": subject_id, "action": action,
                                            "detail": request.path[:300]}])


def log_listed(items) -> None:
    """A list that names cases by (id, workflow key), as the inbox does: listing a personal case is reading it."""
    personal = {key for key, d in engine().latest(db.session).items() if d.category == "personal"}
    _write(list(dict.fromkeys(case_id for case_id, key in items if key in personal)), "list")


def _write(case_ids: list[int], action: str) -> None:
    if case_ids:
        at, user_id, detail = now(), g.user.id, request.path[:300]
        db.session.execute(insert(AccessLog), [{"at": at, "user_id": user_id, "case_id": i, "action": action,
                                                "detail": detail} for i in case_ids])


CSV_HEADER = ["id", "at", "case_id", "workflow", "institution", "user_id", "name", "email", "roles", "action",
              "detail"]


def _roles_by_user(user_ids) -> dict[int, list[tuple[str, int | None, int]]]:
    out: dict[int, list] = defaultdict(list)
    ids = {i for i in user_ids if i is not None}
    if ids:
        for uid, role, inst, region in db.session.execute(
                select(RoleAssignment.user_id, RoleAssignment.role, RoleAssignment.institution_id,
                       RoleAssignment.region_id).where(RoleAssignment.user_id.in_(ids))):
            out[uid].append((role, inst, region))
    return out


def roles_on(case: Case, uid: int, assignments) -> list[str]:
    """The reader's roles towards this case now: held at its institution or region, and subject/opener/responsible."""
    roles = {role for role, inst, region in assignments
             if inst == case.institution_id or (inst is None and region == case.region_id)}
    for name, holder in (("subject", case.subject_id), ("opener", case.opened_by_id),
                         ("responsible", case.responsible_id)):
        if holder == uid:
            roles.add(name)
    return sorted(roles)


def entries(case: Case, limit: int = 500, exclude_user: int | None = None) -> list[dict]:
    """The case's access log, newest first, with each reader's name and roles (two queries)."""
    q = (select(AccessLog, User.name).join(User, User.id == AccessLog.user_id)
         .where(AccessLog.case_id == case.id).order_by(AccessLog.id.desc()).limit(limit))
    if exclude_user is not None:
        q = q.where(AccessLog.user_id != exclude_user)
    rows = db.session.execute(q).all()
    assignments = _roles_by_user(r.user_id for r, _ in rows)
    return [{"id": r.id, "at": r.at, "user_id": r.user_id, "name": name,
             "roles": roles_on(case, r.user_id, assignments[r.user_id]), "action": r.action, "detail": r.detail}
            for r, name in rows]


def export_rows(since: datetime | None = None, until: datetime | None = None, case_id: int | None = None,
                user_id: int | None = None, batch: int = 2000) -> Iterator[list]:
    """Every matching entry as a CSV row, oldest first, read in batches (memory stays flat)."""
    last = 0
    while True:
        q = (select(AccessLog, User.name, User.email, Case)
             .join(User, User.id == AccessLog.user_id).join(Case, Case.id == AccessLog.case_id)
             .where(AccessLog.id > last).order_by(AccessLog.id).limit(batch))
        if since is not None:
            q = q.where(AccessLog.at >= since)
        if until is not None:
            q = q.where(AccessLog.at < until)
        if case_id is not None:
            q = q.where(AccessLog.case_id == case_id)
        if user_id is not None:
            q = q.where(AccessLog.user_id == user_id)
        rows = db.session.execute(q).unique().all()
        if not rows:
            return
        assignments = _roles_by_user(r.user_id for r, *_ in rows)
        for r, name, email, case in rows:
            yield [r.id, r.at, r.case_id, case.workflow_key, case.institution.code, r.user_id, name,
                   email, " ".join(roles_on(case, r.user_id, assignments[r.user_id])), r.action, r.detail]
        last = rows[-1][0].id
        db.session.expunge_all()


def _cell(value):
    if isinstance(value, datetime):
        return value.isoformat()
    # A spreadsheet would run a cell starting with = + - @ as a formula (names and paths come from users).
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_text(rows) -> Iterator[str]:
    """CSV, one chunk per batch of rows (header first)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    for n, row in enumerate(rows, start=1):
        writer.writerow([_cell(v) for v in row])
        if n % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
