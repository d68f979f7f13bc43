"""Documents and letters as clean Dutch PDFs (fpdf2): content, signatures and the sha256.

Rendering is deterministic for a given document and its signatures (fixed creation date),
so the bytes in a dossier export can be checked again later.
"""
from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import Case, Document, User

from . import letters

HERE = Path(__file__).parent
TZ = ZoneInfo("Europe/Amsterdam")
MONTHS = ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
          "november", "december"]
MOMENTS = {"progress_meeting": "een voortgangsgesprek", "suitability_assessment": "een geschiktheidsbeoordeling",
           "final_assessment": "een eindbeoordeling"}
OUTCOMES = {"suitable": "geschikt", "extend": "verlenging van de opleiding", "unsuitable": "niet geschikt"}
VERDICTS = {"agreed": "akkoord", "seen_not_agreed": "gezien, niet akkoord"}


def datum(value) -> str:
    """'2026-03-02' → '2 maart 2026'."""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value[:10])
        except ValueError:
            return value
    if isinstance(value, datetime):
        value = value.astimezone(TZ).date()
    if isinstance(value, date):
        return f"{value.day} {MONTHS[value.month - 1]} {value.year}"
    return str(value or "")


def moment(value) -> str:
    return datetime_nl(value) if isinstance(value, datetime) else f"{datum(value)}"


def datetime_nl(value: datetime) -> str:
    local = value.astimezone(TZ)
    return f"{datum(local.date())} {local:%H:%M}"


_FILTERS = {"datum": datum, "moment": lambda v: MOMENTS.get(v, v), "uitkomst": lambda v: OUTCOMES.get(v, v)}


# The same page (footer with the document's identity and page numbers) as the letters.
_Pdf = letters.LetterPdf


def _new_pdf(title: str, created: datetime) -> _Pdf:
    pdf = _Pdf(format="A4")
    pdf.add_font("DejaVu", "", str(HERE / "fonts" / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(HERE / "fonts" / "DejaVuSans-Bold.ttf"))
    pdf.set_creation_date(created)
    pdf.set_title(title)
    pdf.set_creator("Traject")
    pdf.set_auto_page_break(True, margin=22)
    pdf.set_margins(20, 18, 20)
    pdf.add_page()
    return pdf


def _value_text(value) -> str:
    if isinstance(value, list):
        return "\n".join(f"• {_value_text(item)}" for item in value)
    if isinstance(value, dict):  # a row of a letter's list (a step of the history, an agreed action)
        return " — ".join(_value_text(v) for k, v in value.items()
                          if v not in (None, "") and k not in ("id", "owner_role"))
    if isinstance(value, bool):
        return "ja" if value else "nee"
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        return datum(value)
    return OUTCOMES.get(value, MOMENTS.get(value, str(value))) if isinstance(value, str) else str(value)


DRAFT = "CONCEPT — voorbeeld, niet verzonden"


def render(document: Document, case: Case, definition: dict, users: dict[int, User], region_name: str = "",
           draft: bool = False) -> bytes:
    """`definition` is the case's pinned definition as data (its YAML), so old cases render as they were.

    A kind with a letter template (templates/letters/<kind>.txt) is laid out as a letter
    (notifications/letters.py); every other document as its fields, its signatures and its hash.
    `draft`: a letter a step would write, shown before it is taken: marked so, without an identity or hash."""
    spec = definition.get("documents", {}).get(document.kind) or {"title": document.kind, "fields": {}}
    spec.setdefault("fields", {})
    if letters.has_template(document.kind):
        pdf = _letter(document, case, spec, region_name, draft)
    else:
        pdf = _new_pdf(spec["title"], document.created_at)
        _document_head(pdf, document, case, definition, spec, users, region_name)
        _fields(pdf, spec, document.content)
    pdf.footer_text = (f"{DRAFT} · {spec['title']}" if draft else
                       f"{spec['title']} · document {document.id}, versie {document.version} · "
                       f"SHA-256 {document.sha256}")
    _signatures(pdf, document, users)
    if draft:
        return bytes(pdf.output())
    pdf.ln(3)
    pdf.set_font("DejaVu", size=8)
    pdf.set_text_color(60, 60, 60)
    pdf.multi_cell(0, 4.2, "SHA-256 van de inhoud (canonieke JSON):\n" + document.sha256, new_x="LMARGIN",
                   new_y="NEXT", align="L")
    return bytes(pdf.output())


def _letter(document: Document, case: Case, spec: dict, region_name: str, draft: bool = False) -> _Pdf:
    parts = _letter_parts(document, case, spec, region_name)
    pdf = letters.new_pdf(spec["title"], document.created_at)
    if draft:
        pdf.set_font("DejaVu", "B", 12)
        pdf.set_text_color(170, 20, 20)
        pdf.multi_cell(0, 7, DRAFT, new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
        pdf.ln(2)
    letters.layout(pdf, parts, parts["place_date"], parts["kenmerk"])
    return pdf


def _letter_parts(document: Document, case: Case, spec: dict, region_name: str) -> dict[str, str]:
    """The letter's blocks as the PDF lays them out, with its place and date and its kenmerk."""
    institution = case.institution
    content = {**{k: "" for k in spec["fields"]}, **document.content}
    context = {"institution_city": institution.city or "", "institution_name": institution.name,
               "region": region_name, "case_id": case.id, "workflow": case.workflow_key, "title": spec["title"]}
    parts = letters.blocks(document.kind, {**content, "letter": context}, _FILTERS)
    parts["letterhead"] = parts["letterhead"] or institution.name
    parts["subject"] = parts["subject"] or spec["title"]
    place = institution.city or ""
    when = datum(content.get("letter_date") or document.created_at)
    parts["place_date"] = f"{place}, {when}" if place else when
    parts["kenmerk"] = f"zaak {case.id}"
    return parts


def letter_text(session: Session, document: Document) -> dict[str, str] | None:
    """A stored letter's blocks as they read in its PDF (None: the kind is no letter): the pages show the
    letter a final decision would send, from the same template."""
    if not letters.has_template(document.kind):
        return None
    case = session.get(Case, document.case_id)
    definition = yaml.safe_load(case.definition.source)
    spec = definition.get("documents", {}).get(document.kind) or {"title": document.kind, "fields": {}}
    spec.setdefault("fields", {})
    region = case.institution.region.name if case.institution.region else ""
    return _letter_parts(document, case, spec, region)


def _document_head(pdf, document, case, definition, spec, users, region_name) -> None:
    pdf.set_font("DejaVu", size=8)
    pdf.set_text_color(90, 90, 90)
    pdf.cell(0, 5, f"Traject · {region_name or case.institution.name}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.set_font("DejaVu", "B", 15)
    pdf.multi_cell(0, 8, spec["title"], new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", size=9)
    subject = users.get(case.subject_id)
    meta = [
        ("Traject", f"{definition.get('title', case.workflow_key)} (zaak {case.id})"),
        ("Instelling", case.institution.name),
        ("Aios", subject.name if subject else "—"),
        ("Versie", f"{document.version}, vastgelegd op {datetime_nl(document.created_at)}"),
    ]
    if definition.get("category") == "organisational":  # about a training, never about one aios
        meta = [row for row in meta if row[0] != "Aios"]
    for label, value in meta:
        pdf.set_font("DejaVu", "B", 9)
        pdf.cell(35, 5.5, label)
        pdf.set_font("DejaVu", size=9)
        pdf.multi_cell(0, 5.5, value, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)


def _signatures(pdf, document: Document, users: dict[int, User]) -> None:
    if document.required_signer_ids or document.signatures:
        pdf.ln(4)
        pdf.set_font("DejaVu", "B", 11)
        pdf.cell(0, 7, "Ondertekening", new_x="LMARGIN", new_y="NEXT")
        signed = {s.signer_id: s for s in document.signatures}
        for uid in document.required_signer_ids:
            who = users.get(uid)
            s = signed.get(uid)
            pdf.set_font("DejaVu", "B", 9.5)
            pdf.cell(0, 5.5, who.name if who else f"gebruiker {uid}" if uid else "(verwijderd volgens de "
                     "bewaartermijn)", new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("DejaVu", size=9.5)
            if s is None:
                pdf.multi_cell(0, 5.5, "Nog niet ondertekend.", new_x="LMARGIN", new_y="NEXT")
            else:
                line = f"{VERDICTS.get(s.verdict, s.verdict)} — {datetime_nl(s.signed_at)}"
                pdf.multi_cell(0, 5.5, line, new_x="LMARGIN", new_y="NEXT")
                if s.comment:
                    pdf.multi_cell(0, 5.5, f"Opmerking: {s.comment}", new_x="LMARGIN", new_y="NEXT")
                pdf.set_text_color(90, 90, 90)
                pdf.set_font("DejaVu", size=7.5)
                pdf.multi_cell(0, 4, f"ondertekende inhoud SHA-256 {s.document_sha256}", new_x="LMARGIN",
                               new_y="NEXT", align="L")
                pdf.set_text_color(0, 0, 0)
            pdf.ln(1.5)


def _fields(pdf: _Pdf, spec: dict, content: dict) -> None:
    for name, field in spec["fields"].items():
        if name not in content:
            continue
        pdf.set_font("DejaVu", "B", 9.5)
        pdf.multi_cell(0, 5.5, field.get("label") or name, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", size=9.5)
        pdf.multi_cell(0, 5.5, _value_text(content[name]) or "—", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)


def filename(document: Document) -> str:
    return f"{document.kind}-zaak{document.case_id}-v{document.version}.pdf"


def render_document(session: Session, document: Document, draft: bool = False) -> bytes:
    case = session.get(Case, document.case_id)
    definition = yaml.safe_load(case.definition.source)
    ids = {case.subject_id, *document.required_signer_ids}
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_([i for i in ids if i])))}
    region = case.institution.region.name if case.institution.region else ""
    return render(document, case, definition, users, region, draft)


def document_pdf(session: Session, document_id: int) -> tuple[str, bytes]:
    """The outbox's attachment renderer: (filename, bytes) of a stored document."""
    document = session.get(Document, document_id)
    if document is None:
        raise LookupError(f"document {document_id} does not exist")
    return filename(document), render_document(session, document)
