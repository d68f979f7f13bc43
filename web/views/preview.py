"""A final decision shown before it is taken: the step is fired as it would be, what it wrote is read
(the letters as they would read, who receives what), and then everything is rolled back.

The engine checks the input and the guards exactly as for the real step, so a preview that shows is a
step that will succeed (unless the case changes meanwhile: the confirmation carries the version).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy import func, select

from engine.models import Case, Document, Notification, OutboxStatus
from notifications import letters, pdf
from workflows import roles

from ..extensions import db
from . import data, i18n

# Posted by the preview's buttons, never part of the step's input.
CONFIRM, BACK, PDF = "confirm", "back", "draft_pdf"


@dataclass
class Preview:
    letters: list[dict] = field(default_factory=list)
    informed: list[str] = field(default_factory=list)  # told by e-mail, without a letter
    closes: bool = False
    opens: list[str] = field(default_factory=list)  # titles of linked cases the step opens
    posted: list[tuple[str, str]] = field(default_factory=list)  # the form's input, to post again


@contextmanager
def _fired(eng, actor, case_id: int, trigger: str, version: int, values: dict):
    """Fire `trigger` in this request's transaction and yield what it wrote: (whether it closed the case,
    the linked cases it opened, the documents, the outbox rows); then roll it all back.

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
        docs = list(session.scalars(select(Document).where(
            ((Document.case_id == case_id) & (Document.id > last_doc)) | Document.case_id.in_(new))
            .order_by(Document.id)))
        rows = list(session.scalars(select(Notification).where(
            ((Notification.case_id == case_id) & (Notification.event_seq > seq)) | Notification.case_id.in_(new))
            .order_by(Notification.id)))
        yield case_.state in definition.final_states, new, [d for d in docs if letters.has_template(d.kind)], rows
    finally:
        session.rollback()


def dry_run(eng, actor, case_id: int, trigger: str, version: int, values: dict, form) -> Preview:
    """What the step would do, read while it is (not yet) done."""
    with _fired(eng, actor, case_id, trigger, version, values) as (closes, new, docs, rows):
        shown = Preview(closes=closes,
                        opens=[i18n.title(eng.definition(db.session.get(Case, c).definition)) for c in new],
                        posted=[(k, v) for k, v in form.items(multi=True)
                                if k not in ("csrf_token", CONFIRM, BACK, PDF)])
        _read(db.session, eng, shown, docs, rows)
        return shown


def draft_pdf(eng, actor, case_id: int, trigger: str, version: int, values: dict, index: int) -> tuple[str, bytes]:
    """The step's `index`-th letter as the PDF it would send, marked as a draft; LookupError: no such letter."""
    with _fired(eng, actor, case_id, trigger, version, values) as (_closes, _new, docs, _rows):
        if not 0 <= index < len(docs):
            raise LookupError(index)
        return f"concept-{docs[index].kind}.pdf", pdf.render_document(db.session, docs[index], draft=True)


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
        name, key = people.get(n.recipient_user_id, ""), n.recipient_role or ""
        # the case's own people (the aios, the submitter) by name only; others with the role they receive it as
        return name if key in roles.PSEUDO_LABELS or i18n.role_label(key) == key else f"{name} ({i18n.role_label(key)})"
    if (n.recipient_role or "").startswith("external"):
        return (n.recipient_role or "").split(":", 1)[-1].upper()
    return n.recipient_address or _("an external address")
