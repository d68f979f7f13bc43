"""Documents of a case, their PDFs and their signatures."""
from __future__ import annotations

from flask import g
from flask.views import MethodView

from engine.models import Document

from .. import exports
from ..access_log import log_read
from ..extensions import db
from ..runtime import engine
from .blueprint import api
from .openapi import BINARY
from .schemas import DocumentCreate, DocumentSchema, SignatureCreate, SignatureSchema


def document_out(doc: Document) -> dict:
    return {
        "id": doc.id, "case_id": doc.case_id, "kind": doc.kind, "version": doc.version, "sha256": doc.sha256,
        "content": doc.content, "required_signers": list(doc.required_signer_ids), "created_at": doc.created_at,
        "signatures": [
            {"id": s.id, "signer_id": s.signer_id, "verdict": s.verdict, "comment": s.comment,
             "signed_at": s.signed_at, "document_sha256": s.document_sha256}
            for s in doc.signatures
        ],
    }


@api.route("/cases/<int(max=9223372036854775807):case_id>/documents")
class Documents(MethodView):
    @api.arguments(DocumentCreate)
    @api.response(201, DocumentSchema)
    def post(self, body, case_id):
        """Add a document (a new version when one of that kind exists); its signatures start empty."""
        doc = engine().add_document(db.session, g.actor, case_id, body["kind"], body["content"])
        db.session.commit()
        return document_out(doc)


@api.route("/documents/<int(max=9223372036854775807):document_id>")
class DocumentOne(MethodView):
    @api.response(200, DocumentSchema)
    def get(self, document_id):
        """One document with its signatures."""
        doc, case = engine().get_document(db.session, g.actor, document_id)
        log_read(case, "document")
        db.session.commit()
        return document_out(doc)


@api.route("/documents/<int(max=9223372036854775807):document_id>/pdf")
class DocumentPdf(MethodView):
    @api.response(200, BINARY, description="the document as a PDF, with its signatures and sha256",
                  content_type="application/pdf")
    def get(self, document_id):
        """The document as a clean Dutch PDF."""
        return exports.document_pdf(document_id)


@api.route("/documents/<int(max=9223372036854775807):document_id>/signatures")
class Signatures(MethodView):
    @api.arguments(SignatureCreate)
    @api.response(201, SignatureSchema)
    def post(self, body, document_id):
        """Sign a document: agreed, or (the aios) seen, not agreed — with a comment."""
        signature = engine().sign(db.session, g.actor, document_id, body["verdict"], body.get("comment", ""))
        db.session.commit()
        return signature
