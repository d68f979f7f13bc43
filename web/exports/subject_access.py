"""`traject privacy export --user ID`: a subject access export (AVG art. 15) as JSON and a PDF summary.

Everything Traject holds about the person: the account (not the password hash), roles, tokens
(metadata), the cases they are the subject of in full (events, deadlines, documents and
signatures, messages, who read them), and of the cases where they acted in a role what *they*
did (opened, were responsible, fired a step, wrote or signed a document) — not the content
about others (art. 15(4): the copy must not harm the rights of others). Also their messages,
their own reads, holds they placed, and the cases pseudonymised under their pseudonym.

Left out on purpose: cases in which the person is the one a confidential signal is about
(conflict-of-interest exclusion). The command names them on stderr for the privacy officer,
who decides what can be disclosed without harming the signaller.
"""
from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from sqlalchemy import or_, select

from engine import privacy
from engine.canonical import sha256_hex
from engine.disclosure import for_roles
from engine.models import (
    AccessLog,
    AuditEvent,
    AuthToken,
    Case,
    CaseExclusion,
    CaseRetention,
    Deadline,
    Document,
    LegalHold,
    Notification,
    Signature,
    User,
)
from notifications.pdf import _new_pdf, datetime_nl
from workflows.roles import LABELS_NL

from .. import access_log
from ..extensions import db

FORMAT = "traject-subject-access/1"
READS_NL = {"read": "opende de zaak", "list": "zag de zaak in een lijst", "events": "bekeek de audittrail",
            "notifications": "bekeek de berichten", "document": "bekeek een document",
            "document_pdf": "opende een document als pdf", "dossier_export": "downloadde het zaakdossier",
            "diagram": "bekeek het toestandsdiagram", "access_log": "bekeek wie de zaak inzag"}


def _iso(value):
    return value.isoformat() if isinstance(value, datetime) else value


def _names(ids) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return dict(db.session.execute(select(User.id, User.name).where(User.id.in_(ids))).all())


def collect(engine, user_id: int, key: bytes, now: datetime) -> tuple[dict, list[int]]:
    """(the export, ids of cases withheld for the privacy officer), in four steps:

    1. the cases the person is concerned in: about them, opened by them, or theirs to run;
       confidential cases about them (an exclusion) are withheld for the privacy officer;
    2. the cases about them, whole: events, deadlines, documents and who read them;
    3. their work in other cases: actions, documents written, signatures;
    4. their account, roles and tokens; the messages to them, their reads, legal holds, pseudonymised cases.
    """
    session = db.session
    user = session.get(User, user_id)
    if user is None:
        raise LookupError(f"no user {user_id}")
    cases, excluded = _concerned(session, user.id)
    own = [c for c in cases if c.subject_id == user.id]
    export = {
        "format": FORMAT,
        "generated_at": _iso(now),
        **_account(session, user),
        "cases_about_you": _about_you(session, engine, cases, own),
        **_work_elsewhere(session, user.id, cases, [c.id for c in own], excluded),
        **_traces(session, user.id, privacy.pseudonym(key, user.id)),
    }
    return export, sorted(excluded)


def _concerned(session, uid: int) -> tuple[list[Case], set[int]]:
    cases = list(session.scalars(select(Case).where(or_(Case.subject_id == uid, Case.opened_by_id == uid,
                                                        Case.responsible_id == uid)).order_by(Case.id)).unique())
    excluded = set(session.scalars(select(CaseExclusion.case_id).where(CaseExclusion.user_id == uid)))
    return cases, excluded


def _by_case(rows) -> dict[int, list]:
    out = defaultdict(list)
    for row in rows:
        out[row.case_id].append(row)
    return out


def _about_you(session, engine, cases: list[Case], own: list[Case]) -> list[dict]:
    own_ids = [c.id for c in own]
    events = _by_case(session.scalars(select(AuditEvent).where(AuditEvent.case_id.in_(own_ids))
                                      .order_by(AuditEvent.case_id, AuditEvent.seq)))
    deadlines = _by_case(session.scalars(select(Deadline).where(Deadline.case_id.in_(own_ids)).order_by(Deadline.id)))
    documents = _by_case(session.scalars(select(Document).where(Document.case_id.in_(own_ids))
                                         .order_by(Document.case_id, Document.kind, Document.version)))
    people = _names({c.opened_by_id for c in cases} | {c.responsible_id for c in cases}
                    | {e.actor_id for evs in events.values() for e in evs}
                    | {s.signer_id for docs in documents.values() for d in docs for s in d.signatures})

    def person(i):
        return {"id": i, "name": people.get(i, "")} if i is not None else None

    marker = engine.text("redacted")
    return [_case_about_you(engine.definition(c.definition), c, person, marker, events[c.id], deadlines[c.id],
                            documents[c.id]) for c in own]


def _case_about_you(definition, c: Case, person, marker: str, events, deadlines, documents) -> dict:
    shown = for_roles(definition.confidential, {"subject"}, marker).data

    return {
        "id": c.id, "workflow": c.workflow_key, "workflow_title": definition.title, "title": c.title,
        "institution": c.institution.name, "state": c.state,
        "state_label": (definition.state(c.state) or {}).get("label") or c.state, "opened_at": _iso(c.opened_at),
        "closed_at": _iso(c.closed_at), "parent_id": c.parent_id, "opened_by": person(c.opened_by_id),
        "responsible": person(c.responsible_id), "data": shown(c.data or {}),
        "events": [{"seq": e.seq, "at": _iso(e.at), "actor": person(e.actor_id), "type": e.type,
                    "trigger": e.trigger, "from_state": e.from_state, "to_state": e.to_state,
                    "data": {**(e.data or {}), **({"input": shown(e.data["input"])}
                                                if isinstance((e.data or {}).get("input"), dict) else {})},
                    "hash": e.hash} for e in events],
        "deadlines": [{"kind": d.kind, "label": d.label, "due_at": _iso(d.due_at), "status": d.status,
                       "owner_role": d.owner_role} for d in deadlines],
        "documents": [{"id": d.id, "kind": d.kind, "version": d.version, "sha256": d.sha256,
                       "content": d.content, "created_at": _iso(d.created_at),
                       "signatures": [{"signer": person(s.signer_id), "verdict": s.verdict,
                                       "comment": s.comment, "signed_at": _iso(s.signed_at),
                                       "document_sha256": s.document_sha256} for s in d.signatures]}
                      for d in documents],
        "who_read_it": [{**{k: _iso(v) for k, v in entry.items()}} for entry in access_log.entries(c, 10000)],
    }


def _work_elsewhere(session, uid: int, cases: list[Case], own_ids: list[int], excluded: set[int]) -> dict:
    others = own_ids or [-1]
    return {
        "cases_you_opened_or_were_responsible_for": [
            {"id": c.id, "workflow": c.workflow_key, "institution": c.institution.name, "state": c.state,
             "your_role": [r for r, holder in (("opener", c.opened_by_id), ("responsible", c.responsible_id))
                           if holder == uid],
             "opened_at": _iso(c.opened_at), "closed_at": _iso(c.closed_at)}
            for c in cases if c.subject_id != uid and c.id not in excluded],
        "your_actions_in_other_cases": [
            {"case_id": e.case_id, "seq": e.seq, "at": _iso(e.at), "type": e.type, "trigger": e.trigger,
             "from_state": e.from_state, "to_state": e.to_state}
            for e in session.scalars(select(AuditEvent).where(AuditEvent.actor_id == uid,
                                                              AuditEvent.case_id.not_in(others))
                                     .order_by(AuditEvent.case_id, AuditEvent.seq))
            if e.case_id not in excluded],
        "documents_you_wrote_in_other_cases": [
            {"id": d.id, "case_id": d.case_id, "kind": d.kind, "version": d.version, "sha256": d.sha256,
             "created_at": _iso(d.created_at)}
            for d in session.scalars(select(Document).where(Document.created_by_id == uid,
                                                            Document.case_id.not_in(others)).order_by(Document.id))],
        "your_signatures": [
            {"id": s.id, "document_id": s.document_id, "case_id": case_id, "kind": kind,
             "verdict": s.verdict, "comment": s.comment, "signed_at": _iso(s.signed_at),
             "document_sha256": s.document_sha256}
            for s, case_id, kind in session.execute(
                select(Signature, Document.case_id, Document.kind).join(Document, Document.id == Signature.document_id)
                .where(Signature.signer_id == uid).order_by(Signature.id))],
    }


def _account(session, user: User) -> dict:
    uid = user.id
    return {
        "account": {"id": user.id, "email": user.email, "name": user.name, "language": user.language,
                    "active": user.active, "created_at": _iso(user.created_at),
                    "password": "set (stored only as a one-way hash)" if user.password_hash else "not set"},
        "roles": [{"role": r.role, "institution": r.institution.name if r.institution else None}
                  for r in user.roles],
        "api_tokens": [{"created_at": _iso(t.created_at), "expires_at": _iso(t.expires_at),
                        "revoked_at": _iso(t.revoked_at)}
                       for t in session.scalars(select(AuthToken).where(AuthToken.user_id == uid)
                                                .order_by(AuthToken.id))],
    }


def _traces(session, uid: int, alias: str) -> dict:
    return {
        "messages_to_you": [{"id": n.id, "case_id": n.case_id, "kind": n.kind, "subject": n.subject,
                             "status": n.status, "created_at": _iso(n.created_at), "sent_at": _iso(n.sent_at)}
                            for n in session.scalars(select(Notification).where(Notification.recipient_user_id == uid)
                                                     .order_by(Notification.id))],
        "your_reads_of_cases": [{"at": _iso(r.at), "case_id": r.case_id, "action": r.action, "detail": r.detail}
                                for r in session.scalars(select(AccessLog).where(AccessLog.user_id == uid)
                                                         .order_by(AccessLog.id))],
        "legal_holds_you_placed_or_lifted": [privacy.hold_out(h) for h in session.scalars(
            select(LegalHold).where(or_(LegalHold.placed_by_id == uid, LegalHold.lifted_by_id == uid))
            .order_by(LegalHold.id))],
        "pseudonymised_cases": [{"case_id": r.case_id, "action": r.action, "applied_at": _iso(r.applied_at),
                                 "workflow": r.policy.get("workflow")}
                                for r in session.scalars(select(CaseRetention)
                                                         .where(CaseRetention.subject_pseudonym == alias)
                                                         .order_by(CaseRetention.case_id))],
    }


def write(engine, user_id: int, key: bytes, now: datetime, out_dir: str | Path) -> tuple[Path, Path, list[int]]:
    export, withheld = collect(engine, user_id, key, now)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"traject-inzage-gebruiker{user_id}-{now:%Y%m%d}"
    body = json.dumps(export, ensure_ascii=False, indent=2, sort_keys=False, default=str).encode()
    json_path = out / f"{stem}.json"
    json_path.write_bytes(body)
    pdf_path = out / f"{stem}.pdf"
    pdf_path.write_bytes(summary_pdf(export, sha256_hex(body), json_path.name))
    return json_path, pdf_path, withheld


def summary_pdf(export: dict, json_sha256: str, json_name: str) -> bytes:
    """A readable Dutch summary; the JSON next to it is complete."""
    def when(value):
        return datetime_nl(datetime.fromisoformat(value)) if value else "—"

    account = export["account"]
    pdf = _new_pdf("Inzage persoonsgegevens", datetime.fromisoformat(export["generated_at"]))
    pdf.footer_text = f"Traject · inzage gebruiker {account['id']} · {json_name} SHA-256 {json_sha256}"
    pdf.set_font("DejaVu", "B", 15)
    pdf.multi_cell(0, 8, "Inzage in uw persoonsgegevens (AVG art. 15)", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", size=9.5)
    pdf.multi_cell(0, 5.5, f"Opgesteld op {when(export['generated_at'])}. Dit overzicht vat samen wat Traject over "
                           f"u vastlegt; het volledige overzicht staat in {json_name}.", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)

    def heading(text):
        pdf.ln(2)
        pdf.set_font("DejaVu", "B", 11.5)
        pdf.multi_cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", size=9.5)

    def line(text):
        pdf.multi_cell(0, 5.2, text, new_x="LMARGIN", new_y="NEXT")

    heading("Account")
    line(f"{account['name']} <{account['email']}>, gebruiker {account['id']}, aangemaakt {when(account['created_at'])}"
         f", {'actief' if account['active'] else 'niet actief'}, taal {account['language']}.")
    line("Rollen: " + (", ".join(LABELS_NL.get(r["role"], r["role"])
                                 + (f" ({r['institution']})" if r["institution"] else " (regio)")
                                 for r in export["roles"]) or "geen"))
    heading(f"Trajecten over u ({len(export['cases_about_you'])})")
    for c in export["cases_about_you"]:
        line(f"• Zaak {c['id']}: {c['workflow_title']} — {c['institution']}, stand: {c['state_label']}, geopend "
             f"{when(c['opened_at'])}" + (f", gesloten {when(c['closed_at'])}" if c["closed_at"] else "")
             + f"; {len(c['events'])} gebeurtenissen, {len(c['documents'])} documenten, "
               f"{len(c['who_read_it'])} keer ingezien.")
        for r in c["who_read_it"][:15]:
            roles = ", ".join(LABELS_NL.get(x, x) for x in r["roles"]) or "—"
            line(f"    ingezien {when(r['at'])} door {r['name']} ({roles}): {READS_NL.get(r['action'], r['action'])}")
        if len(c["who_read_it"]) > 15:
            line(f"    … en {len(c['who_read_it']) - 15} eerdere inzagen (zie JSON)")
    counts = [
        ("Trajecten waarin u een rol had (geopend of verantwoordelijk)",
         export["cases_you_opened_or_were_responsible_for"]),
        ("Uw handelingen in andere trajecten", export["your_actions_in_other_cases"]),
        ("Documenten die u schreef in andere trajecten", export["documents_you_wrote_in_other_cases"]),
        ("Uw ondertekeningen", export["your_signatures"]),
        ("Berichten aan u", export["messages_to_you"]),
        ("Trajecten die u inzag (toegangslog)", export["your_reads_of_cases"]),
        ("Juridische blokkades die u plaatste of ophief", export["legal_holds_you_placed_or_lifted"]),
        ("Gepseudonimiseerde trajecten", export["pseudonymised_cases"]),
        ("API-tokens", export["api_tokens"]),
    ]
    heading("Verder")
    for label, rows in counts:
        line(f"• {label}: {len(rows)}")
    pdf.ln(3)
    pdf.set_font("DejaVu", size=8)
    pdf.set_text_color(60, 60, 60)
    line("Gegevens over anderen staan hier alleen voor zover ze over u gaan (AVG art. 15 lid 4). Vragen: de "
         "functionaris gegevensbescherming van uw regio.")
    return bytes(pdf.output())
