"""What an e-mail tells, as at the event that wrote it: what happened, what the reader must do and by
when, which letters are attached, and whom to ask.

Everything is read as it stood at the event (the audit event `n.event_seq`, the deadlines open at
the row's creation), not as it stands when the worker delivers: a mail delivered an hour later
does not speak of a state the case reached since.
"""
from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from engine.models import AuditEvent, Case, Deadline, Document, Notification, User


def context(session: Session, n: Notification, case: Case, case_ctx: dict, definition, lang: str,
            tz: ZoneInfo) -> dict:
    event = session.get(AuditEvent, (case.id, n.event_seq)) if n.event_seq else None
    state = (event.to_state or event.from_state) if event is not None else None
    if definition is not None and state in definition.state_names:
        spec = definition.state(state)
        case_ctx["state"] = (spec.get("label_en") if lang == "en" else spec.get("label")) or case_ctx["state"]
    letters = _attached(session, n, definition, lang)
    # Who opened a case with confidential parts (a signal, an RSO report) is never named in a mail.
    hidden = case.opened_by_id if definition is not None and definition.confidential else None
    return {
        "event": _event(session, event, definition, lang, tz, hidden),
        "todo": _todo(session, n, case, tz),
        "enclosed": [title for title, _ in letters],
        "letter": letters[0][1] if letters else {},
        "contact": _contact(session, n, case, event, hidden),
        "for_subject": n.recipient_user_id is not None and n.recipient_user_id == case.subject_id,
        "external": n.recipient_user_id is None,
        "case_data": case.data or {},
    }


def _event(session: Session, event: AuditEvent | None, definition, lang: str, tz: ZoneInfo,
           hidden: int | None) -> dict | None:
    if event is None:
        return None
    step = definition.step(event.trigger, event.from_state) if definition and event.trigger else None
    if step is None and definition is not None and event.type == "opened":
        step = definition.open
    actor = session.get(User, event.actor_id) if event.actor_id and event.actor_id != hidden else None
    return {"at": event.at.astimezone(tz), "actor": actor.name if actor else "",
            "step": ((step.label_en if lang == "en" else step.label) or step.label) if step else ""}


def _todo(session: Session, n: Notification, case: Case, tz: ZoneInfo) -> list[dict]:
    """The deadlines open at the row's creation that the reader owns on this case."""
    if not n.recipient_user_id:
        return []
    owned = {n.recipient_role or ""}
    if n.recipient_user_id == case.responsible_id:
        owned.add("responsible")
    if n.recipient_user_id == case.subject_id:
        owned.add("subject")
    rows = session.scalars(select(Deadline).where(
        Deadline.case_id == case.id, Deadline.owner_role.in_(sorted(owned)), Deadline.created_at <= n.created_at,
        or_(Deadline.resolved_at.is_(None), Deadline.resolved_at > n.created_at)).order_by(Deadline.due_at))
    return [{"label": d.label or "", "due": d.due_at.astimezone(tz)} for d in rows]


def _attached(session: Session, n: Notification, definition, lang: str) -> list[tuple[str, dict]]:
    out = []
    for entry in n.attachments or []:
        if isinstance(entry, dict) and entry.get("type") == "document_pdf":
            doc = session.get(Document, int(entry.get("document_id") or 0))
            if doc is not None:
                spec = (definition.documents.get(doc.kind) if definition is not None else None) or {}
                title = (spec.get("title_en") if lang == "en" else spec.get("title")) or spec.get("title") or ""
                out.append((title, doc.content or {}))
    return out


def _contact(session: Session, n: Notification, case: Case, event: AuditEvent | None,
             hidden: int | None) -> dict | None:
    """Whom to ask: the person who acted, else the responsible opleider; never the reader."""
    for uid in (event.actor_id if event is not None else None, case.responsible_id):
        if uid and uid != n.recipient_user_id and uid != hidden:
            user = session.get(User, uid)
            if user is not None and user.active:
                return {"name": user.name, "email": user.email}
    return None
