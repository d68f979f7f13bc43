"""A final decision shown before it is taken: the step is fired as it would be, what it wrote is read
(the letters as they would read, who receives what), and then everything is rolled back.

The engine checks the input and the guards exactly as for the real step, so a preview that shows is a
step that will succeed (unless the case changes meanwhile: the confirmation carries the version).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy import func, select

from engine.models import Case, Document, Notification, OutboxStatus
from notifications import pdf

from ..extensions import db
from . import data, i18n

# Posted by the preview's buttons, never part of the step's input.
CONFIRM, BACK = "confirm", "back"


@dataclass
class Preview:
    letters: list[dict] = field(default_factory=list)
    informed: list[str] = field(default_factory=list)  # told by e-mail, without a letter
    closes: bool = False
    opens: list[str] = field(default_factory=list)  # titles of linked cases the step opens
    posted: list[tuple[str, str]] = field(default_factory=list)  # the form's input, to post again


def dry_run(eng, actor, case_id: int, trigger: str, version: int, values: dict, form) -> Preview:
    """Fire `trigger` in this request's transaction, read what it wrote, roll it all back.

    Engine errors (guards, fields, a stale version) propagate, as from the real step; the transaction
    is rolled back either way, so no audit event, document or outbox row outlives the preview."""
    session = db.session
    try:
        case_ = eng.get_case(session, actor, case_id)
        seq, definition = case_.audit_seq, eng.definition(case_.definition)
        last_doc = session.scalar(select(func.max(Document.id)).where(Document.case_id == case_id)) or 0
        children = set(session.scalars(select(Case.id).where(Case.parent_id == case_id)))
        eng.fire(session, actor, case_id, trigger, version, values)
        new = sorted(set(session.scalars(select(Case.id).where(Case.parent_id == case_id))) - children)
        shown = Preview(closes=case_.state in definition.final_states,
                        opens=[i18n.title(eng.definition(session.get(Case, c).definition)) for c in new],
                        posted=[(k, v) for k, v in form.items(multi=True) if k not in ("csrf_token", CONFIRM, BACK)])
        docs = list(session.scalars(select(Document).where(
            ((Document.case_id == case_id) & (Document.id > last_doc)) | Document.case_id.in_(new))
            .order_by(Document.id)))
        rows = list(session.scalars(select(Notification).where(
            ((Notification.case_id == case_id) & (Notification.event_seq > seq)) | Notification.case_id.in_(new))
            .order_by(Notification.id)))
        _read(session, eng, shown, docs, rows)
        return shown
    finally:
        session.rollback()


def _read(session, eng, shown: Preview, docs: list[Document], rows: list[Notification]) -> None:
    people = data.names(n.recipient_user_id for n in rows)
    by_doc: dict[int, list[Notification]] = {}
    for n in rows:
        files = [a for a in n.attachments or [] if isinstance(a, dict) and a.get("type") == "document_pdf"]
        if files:  # the first file is the letter, the others go along as bijlagen
            by_doc.setdefault(int(files[0]["document_id"]), []).append(n)
        elif n.kind != "signature_requested":
            shown.informed.append(_who(n, people))
    shown.informed = sorted(set(shown.informed))
    for doc in docs:
        text = pdf.letter_text(session, doc)
        if text is None:
            continue
        spec = eng.definition(session.get(Case, doc.case_id).definition).documents.get(doc.kind, {})
        sent = by_doc.get(doc.id, [])
        shown.letters.append({
            "title": i18n.title(spec, doc.kind), "text": text,
            "to": sorted({_who(n, people) for n in sent}),
            "held": any(n.status == OutboxStatus.HELD.value for n in sent),
            "signers": ", ".join(people.get(u) or data.names([u]).get(u, "") for u in doc.required_signer_ids or []),
        })


def _who(n: Notification, people: dict[int, str]) -> str:
    """A person by name (and the role they receive it as); an external recipient by its key in the
    region's configuration ("rgs": the RGS)."""
    if n.recipient_user_id:
        role = n.recipient_role
        name = people.get(n.recipient_user_id, "")
        return f"{name} ({i18n.role_label(role)})" if role and role not in ("subject", "responsible") else name
    if (n.recipient_role or "").startswith("external"):
        return (n.recipient_role or "").split(":", 1)[-1].upper()
    return n.recipient_address or _("an external address")
