"""Letters as letters: one common layout, one Jinja template per letter kind (templates/letters/<kind>.txt).

A letter template extends `_letter.txt` and fills its named blocks; this module lays them out the same way for every kind:
letterhead, addressee, place and date, kenmerk and subject, "Geachte …", the body, the signature
block, bijlagen and afschrift, and a footer with the document's version and SHA-256. Blocks a
template leaves out are left out of the letter (no empty "Bijlagen:" line).

- `letterhead`: the sender's organisation (default: the case's institution);
- `to`: the addressee block (lines);
- `subject`: the "Betreft" line (default: the document kind's title);
- `salutation`: "Geachte …," — a named person or "Geachte leden van de …", never "Beste";
- `body`: the letter, written in the first person of the signer;
- `signer`: name and function, one per line; system letters name the person on whose behalf;
- `enclosures`, `copy`: one item per line.

The template sees the document's content (every field of its kind, empty when not stored) and
`letter`: the case number, institution, city, region. The PDF is PDF/A-2b (fpdf2's compliance
mode) and deterministic for a given document: the creation date is the document's.
"""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from fpdf import FPDF
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from engine.fields import parse_date

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates" / "letters"
BLOCKS = ("letterhead", "to", "subject", "salutation", "body", "signer", "enclosures", "copy")


def has_template(kind: str) -> bool:
    return not kind.startswith("_") and (TEMPLATES / f"{kind}.txt").exists()


def days_after(value, days) -> date | str:
    """The last day of a term of `days` days that starts on `value` (a date or 'YYYY-MM-DD…')."""
    start = parse_date(value[:10] if isinstance(value, str) else value)
    try:
        return start + timedelta(days=int(days)) if start else ""
    except (TypeError, ValueError):
        return ""


def weeks_after(value, weeks) -> date | str:
    try:
        return days_after(value, 7 * int(weeks))
    except (TypeError, ValueError):
        return ""


def _environment(filters: dict) -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, autoescape=False,
                      keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(filters, weeks_after=weeks_after, days_after=days_after)
    return env


_env: Environment | None = None


def blocks(kind: str, variables: dict, filters: dict) -> dict[str, str]:
    """Every block of the kind's template, rendered and stripped ('' for a block it does not fill)."""
    global _env
    if _env is None:
        _env = _environment(filters)
    rendered = _env.get_template(f"{kind}.txt").render(variables)
    parts = dict.fromkeys(BLOCKS, "")
    pieces = rendered.split("@@")
    for name, text in zip(pieces[1::2], pieces[2::2]):
        if name in parts:
            parts[name] = text.strip()
    return parts


class LetterPdf(FPDF):
    footer_text = ""

    def footer(self):
        self.set_y(-15)
        self.set_font("DejaVu", size=7)
        self.set_text_color(90, 90, 90)
        self.multi_cell(0, 3.5, f"{self.footer_text}   —   pagina {self.page_no()}/{{nb}}", align="C")


def new_pdf(title: str, created, lang: str = "nl") -> LetterPdf:
    pdf = LetterPdf(format="A4", enforce_compliance="PDF/A-2B")
    pdf.add_font("DejaVu", "", str(HERE / "fonts" / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(HERE / "fonts" / "DejaVuSans-Bold.ttf"))
    pdf.set_creation_date(created)
    pdf.set_title(title)
    pdf.set_lang(lang)
    pdf.set_creator("Traject")
    pdf.set_auto_page_break(True, margin=22)
    pdf.set_margins(22, 18, 22)
    pdf.add_page()
    return pdf


def layout(pdf: LetterPdf, parts: dict[str, str], place_date: str, kenmerk: str) -> None:
    """The common letter layout; `parts` are the rendered blocks."""
    line = lambda text, h=5.4: pdf.multi_cell(0, h, text, new_x="LMARGIN", new_y="NEXT")  # noqa: E731
    pdf.set_font("DejaVu", "B", 13)
    line(parts["letterhead"].splitlines()[0] if parts["letterhead"] else "", 7)
    pdf.set_font("DejaVu", size=8.5)
    pdf.set_text_color(80, 80, 80)
    for extra in parts["letterhead"].splitlines()[1:]:
        line(extra, 4.4)
    pdf.set_text_color(0, 0, 0)
    pdf.ln(10)
    pdf.set_font("DejaVu", size=10)
    line(parts["to"])
    pdf.ln(8)
    line(place_date)
    pdf.ln(2)
    for label, value in (("Kenmerk", kenmerk), ("Betreft", parts["subject"])):
        pdf.set_font("DejaVu", "B", 10)
        pdf.cell(22, 5.4, label)
        pdf.set_font("DejaVu", size=10)
        line(value)
    pdf.ln(6)
    pdf.set_font("DejaVu", size=10.5)
    line(parts["salutation"], 5.8)
    pdf.ln(2)
    line(parts["body"], 5.8)
    pdf.ln(6)
    line("Met vriendelijke groet,", 5.8)
    pdf.ln(8)
    signer = parts["signer"].splitlines() or [""]
    pdf.set_font("DejaVu", "B", 10.5)
    line(signer[0], 5.8)
    pdf.set_font("DejaVu", size=10)
    for extra in signer[1:]:
        line(extra)
    for label, key in (("Bijlage(n)", "enclosures"), ("Afschrift aan", "copy")):
        if parts[key]:
            pdf.ln(6)
            pdf.set_font("DejaVu", "B", 9.5)
            line(label)
            pdf.set_font("DejaVu", size=9.5)
            line("\n".join(f"– {item}" for item in parts[key].splitlines() if item.strip()))
