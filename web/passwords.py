"""The password policy (NEN 7510 / ASVS level 2, V2.1): length and a list of common passwords, no rotation.

At least 12 characters, at most 128 (scrypt hashes any length, but a megabyte password is a denial of
service); not on the list of common passwords shipped with the package (`common_passwords.txt`,
compared case-insensitively, with spaces collapsed); not the account's own e-mail address. No
composition rules and no forced rotation: ASVS 2.1.9 and 2.1.10 advise against both.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

MIN_LENGTH = 12
MAX_LENGTH = 128
_LIST = Path(__file__).with_name("common_passwords.txt")


def N_(text: str) -> str:
    """Marks a msgid for extraction (web/babel.cfg); the views translate it."""
    return text


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    lines = _LIST.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def _normal(password: str) -> str:
    return " ".join(password.lower().split())


def problem(password: str, email: str | None = None) -> tuple[str, dict] | None:
    """Why this password may not be chosen, as (an English msgid, its values), or None when it may."""
    if len(password) < MIN_LENGTH:
        return N_("Choose a password of at least %(n)d characters."), {"n": MIN_LENGTH}
    if len(password) > MAX_LENGTH:
        return N_("Choose a password of at most %(n)d characters."), {"n": MAX_LENGTH}
    normal = _normal(password)
    if normal in common_passwords() or normal.replace(" ", "") in common_passwords():
        return N_("This password is too common. Choose another one."), {}
    if email and normal in {_normal(email), _normal(email.split("@")[0])}:
        return N_("Choose a password that differs from your e-mail address."), {}
    return None
