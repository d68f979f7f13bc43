"""Finding cases by text: the title, the aios' name or the case number (CONTRACT.md section 9).

Only a condition: callers add it to a query that already carries the reader's scope, so a name
finds nothing but the cases the reader may see anyway (an aios outside the scope finds no case,
which is the same answer as a name nobody has).
"""
from __future__ import annotations

import re

from sqlalchemy import false, func, or_, select

from .models import Case, User

MAX_QUERY = 100
_NUMBER = re.compile(r"^#?\s*(\d{1,18})$")


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def matching(text: str):
    """Cases whose number is `text` ("12", "#12"), or whose title or aios' name contains it (any case)."""
    text = " ".join((text or "").split())[:MAX_QUERY]
    if not text:
        return false()
    pattern = _like(text)
    names = select(User.id).where(func.lower(User.name).like(pattern, escape="\\"))
    found = [func.lower(Case.title).like(pattern, escape="\\"), Case.subject_id.in_(names)]
    number = _NUMBER.match(text)
    if number and int(number.group(1)) < 2**63:
        found.append(Case.id == int(number.group(1)))
    return or_(*found)
