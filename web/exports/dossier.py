"""The dossier export: a case and its linked cases as a sealed evidence pack (ZIP).

Contents: README, manifest.json (sha256 of every file), SEAL.txt (sha256 of the manifest),
per case its summary, pinned definition, audit trail (JSON) and documents (PDF + JSON),
and verify.py, a stdlib-only script that checks it all again.
"""
from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

from engine.canonical import isoformat_utc, sha256_hex
from engine.disclosure import Disclosure
from engine.errors import NotFound
from engine.models import AuditEvent, Case, Deadline, Document
from engine.scope import Actor
from notifications import pdf

README = """Traject — zaakdossier {case_id}
===================================

Dit pakket bevat zaak {case_id} en de daaraan gekoppelde zaken ({ids}), zoals vastgelegd in
Traject op {generated}. Per zaak: de samenvatting (case.json), de vastgezette versie van de
procedure (definition.yaml), de audittrail (audit.json; een hashketen) en de documenten
(PDF en JSON met de ondertekeningen).

Controleren: pak het ZIP-bestand uit en voer in de map uit:   python3 verify.py
Het script controleert elk bestand tegen manifest.json, manifest.json tegen SEAL.txt, elke
audit-keten en de sha256 van elk document. Uitkomst "OK: dossier intact" betekent dat er
sinds de export niets is gewijzigd. Gebeurtenissen met gegevens die voor u vertrouwelijk zijn
(bijvoorbeeld wie een signaal gaf) staan er zonder die gegevens in ("withheld"): hun hash sluit
de keten, hun inhoud kan in dit pakket niet worden gecontroleerd.

This pack holds case {case_id} and its linked cases; run `python3 verify.py` to check every
file, the seal, the audit hash chains and the document hashes.
"""


DEFAULT_MAX_DOCUMENTS = 300  # every version of every document of the case and its linked cases


class TooLarge(ValueError):
    """More documents than one request may render (TRAJECT_DOSSIER_MAX_DOCUMENTS)."""


def linked_cases(session, engine, actor: Actor, case_id: int) -> list[Case]:
    """The case, its ancestors and descendants — only those the actor may see."""
    root = engine.get_case(session, actor, case_id)
    scope = engine.scope(session, actor)
    seen = {root.id: root}
    frontier = [root]
    while frontier:
        current = frontier.pop()
        related = list(session.scalars(select(Case).where(scope, Case.parent_id == current.id)))
        if current.parent_id:
            related += list(session.scalars(select(Case).where(scope, Case.id == current.parent_id)))
        for case in related:
            if case.id not in seen:
                seen[case.id] = case
                frontier.append(case)
    return [seen[i] for i in sorted(seen)]


def _event_json(ev: AuditEvent, shown: Disclosure) -> dict:
    out = {"case_id": ev.case_id, "seq": ev.seq, "at": isoformat_utc(ev.at), "actor_id": shown.actor_of(ev.seq, ev.actor_id),
           "type": ev.type, "trigger": ev.trigger, "from_state": ev.from_state, "to_state": ev.to_state,
           "data": shown.event_data(ev.data or {}), "prev_hash": ev.prev_hash, "hash": ev.hash}
    if shown.withholds(ev.seq, ev.data):
        # Confidential for this reader: the hash still links the chain; its content cannot be checked here.
        out["withheld"] = True
    return out


def export(session, engine, actor: Actor, case_id: int, now: datetime,
           max_documents: int = DEFAULT_MAX_DOCUMENTS) -> tuple[str, bytes]:
    cases = linked_cases(session, engine, actor, case_id)
    if not cases:
        raise NotFound("case not found", {"case_id": case_id})
    count = session.scalar(select(func.count()).select_from(Document)
                           .where(Document.case_id.in_([c.id for c in cases])))
    if count > max_documents:
        raise TooLarge(f"the dossier would hold {count} documents; at most {max_documents} are rendered at once")
    files: dict[str, bytes] = {}
    manifest_cases = []
    for case in cases:
        base = f"cases/{case.id}"
        events = session.scalars(select(AuditEvent).where(AuditEvent.case_id == case.id)
                                 .order_by(AuditEvent.seq)).all()
        deadlines = session.scalars(select(Deadline).where(Deadline.case_id == case.id)
                                    .order_by(Deadline.id)).all()
        shown = engine.disclosure(case, actor)
        files[f"{base}/audit.json"] = _json([_event_json(e, shown) for e in events])
        files[f"{base}/definition.yaml"] = case.definition.source.encode()
        files[f"{base}/case.json"] = _json({
            "id": case.id, "workflow": case.workflow_key, "workflow_version": case.definition.version,
            "definition_sha256": case.definition.sha256, "institution": case.institution.code,
            "subject_id": case.subject_id, "opened_by": shown.opened_by(case), "state": case.state,
            "version": case.version, "opened_at": isoformat_utc(case.opened_at),
            "closed_at": isoformat_utc(case.closed_at) if case.closed_at else None, "parent_id": case.parent_id,
            "data": shown.data(case.data), "audit_head": {"seq": case.audit_seq, "hash": case.audit_head},
            "deadlines": [{"kind": d.kind, "due_at": isoformat_utc(d.due_at), "status": d.status,
                           "owner_role": d.owner_role} for d in deadlines],
        })
        docs = []
        for doc in session.scalars(select(Document).where(Document.case_id == case.id)
                                   .order_by(Document.kind, Document.version)):
            stem = f"{base}/documents/{doc.kind}-v{doc.version}"
            files[f"{stem}.pdf"] = pdf.render_document(session, doc)
            files[f"{stem}.json"] = _json({
                "id": doc.id, "kind": doc.kind, "version": doc.version, "sha256": doc.sha256,
                "content": doc.content, "created_at": isoformat_utc(doc.created_at),
                "required_signers": doc.required_signer_ids,
                "signatures": [{"signer_id": s.signer_id, "verdict": s.verdict, "comment": s.comment,
                                "signed_at": isoformat_utc(s.signed_at), "document_sha256": s.document_sha256}
                               for s in doc.signatures]})
            docs.append({"id": doc.id, "kind": doc.kind, "version": doc.version, "pdf": f"{stem}.pdf",
                         "json": f"{stem}.json"})
        manifest_cases.append({"id": case.id, "workflow": case.workflow_key, "audit": f"{base}/audit.json",
                               "documents": docs})
    generated = isoformat_utc(now)
    files["README.txt"] = README.format(case_id=case_id, ids=", ".join(str(c.id) for c in cases),
                                        generated=generated).encode()
    files["verify.py"] = (Path(__file__).parent / "verify_dossier.py").read_bytes()
    manifest = _json({"format": "traject-dossier/1", "case_id": case_id, "generated_at": generated,
                      "generated_by": actor.id, "cases": manifest_cases,
                      "files": {path: sha256_hex(body) for path, body in sorted(files.items())}})
    files["manifest.json"] = manifest
    files["SEAL.txt"] = f"sha256(manifest.json) {sha256_hex(manifest)}\n".encode()
    buffer = io.BytesIO()
    stamp = now.timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, body in sorted(files.items()):
            info = zipfile.ZipInfo(f"dossier-{case_id}/{path}", date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, body)
    return f"dossier-zaak{case_id}.zip", buffer.getvalue()


def _json(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str).encode()
