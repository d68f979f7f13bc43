"""Notes on a case: written by the people who work on it, kept in the case's audit chain.

The text is stored in `case_note`; the chain gets a `note_added` event with the note's id and the
sha256 of its text, so a changed or removed note is evidence of tampering, while the events (which
every reader of the case may see) never carry the text itself. Who may read and write notes is the
caller's policy (roles as data: `excluded`), always within the engine's scope of the case.
"""
from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .errors import Forbidden, ValidationError
from .fields import control_characters
from .models import Case, CaseNote

MAX_NOTE = 5000


def may_note(roles_on_case: set[str], excluded: frozenset[str]) -> bool:
    """A note is for the case's participants: any role on it except those the policy leaves out."""
    return bool(roles_on_case - excluded)


def add_note(session: Session, case: Case, actor, text: str, now: datetime, excluded: frozenset[str]) -> CaseNote:
    """Add a note (the caller has read the case through the scope; it commits)."""
    if not may_note(actor.roles_on(case), excluded):
        raise Forbidden("your role may not write notes on this case", {"case_id": case.id})
    text = (text or "").strip()
    if not text:
        raise ValidationError("a note needs text", {"text": ["is required"]})
    if len(text) > MAX_NOTE or control_characters(text, multiline=True):
        raise ValidationError("invalid note", {"text": [f"must be at most {MAX_NOTE} characters"
                                                        if len(text) > MAX_NOTE else "must not contain control characters"]})
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    note = CaseNote(case_id=case.id, author_id=actor.id, at=now, text=text, sha256=sha, event_seq=case.audit_seq + 1)
    session.add(note)
    session.flush()
    event = audit.new_event(case, now, actor.id, "note_added", data={"note_id": note.id, "sha256": sha})
    audit.append_only_event(session, case, event, now)
    return note


def notes_of(session: Session, case: Case) -> list[CaseNote]:
    return list(session.scalars(select(CaseNote).where(CaseNote.case_id == case.id).order_by(CaseNote.id)))
