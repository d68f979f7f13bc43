"""Serialising transactions about one person: the database difference behind one seam.

A rule such as "one open trajectory per aios" reads, then writes; two transactions that both read
before either writes would both pass. Taking the person's lock first makes them take turns: the
second waits until the first commits and then reads what it wrote.
"""
from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .models import User


def hold_person(session: Session, user_id: int) -> None:
    """Until this transaction ends, every other `hold_person` for the same user waits."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        # NO KEY UPDATE: two holders exclude each other, but rows that merely reference the user
        # (cases, signatures, outbox rows, taking KEY SHARE) are not held up.
        conn.execute(select(User.id).where(User.id == user_id).with_for_update(key_share=True))
    else:
        # SQLite has no row locks: a write takes its one write lock until the commit, and every read
        # after it sees the newest commit.
        conn.execute(update(User).where(User.id == user_id).values(name=User.name))
