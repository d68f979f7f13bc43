"""What leaves Traject as a file: document PDFs, the sealed dossier, the subject access export, backups.

The API and the pages serve the same files through the two responses below.
"""
from __future__ import annotations

from flask import Response, current_app, g
from werkzeug.exceptions import RequestEntityTooLarge

from notifications import pdf

from ..access_log import log_read, visible_case
from ..extensions import db
from ..runtime import engine, now
from .dossier import DEFAULT_MAX_DOCUMENTS, TooLarge, export


def document_pdf(document_id: int) -> Response:
    """The document as a clean Dutch PDF (404 outside your scope; the read is logged)."""
    doc, case = engine().get_document(db.session, g.actor, document_id)
    log_read(case, "document_pdf")
    db.session.commit()  # the access-log row first: a long render must not hold the write lock
    body = pdf.render_document(db.session, doc)
    db.session.rollback()
    return Response(body, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{pdf.filename(doc)}"'})


def dossier_zip(case_id: int) -> Response:
    """The sealed dossier of the case and its linked cases (404 outside your scope; the export is logged)."""
    visible_case(case_id, "dossier_export")
    db.session.commit()  # the access-log row first: a long render must not hold the write lock
    limit = current_app.config.get("TRAJECT_DOSSIER_MAX_DOCUMENTS", DEFAULT_MAX_DOCUMENTS)
    try:
        name, body = export(db.session, engine(), g.actor, case_id, now(), max_documents=limit)
    except TooLarge as exc:
        raise RequestEntityTooLarge(str(exc)) from None
    finally:
        db.session.rollback()
    return Response(body, mimetype="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
