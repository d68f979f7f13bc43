"""Canonical JSON: the byte form that hashes are computed over."""
from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timezone


def _default(value):
    if isinstance(value, datetime):
        return isoformat_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def isoformat_utc(value: datetime) -> str:
    # Fixed width with microseconds so that the stored value and a reloaded value hash alike.
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default)


def sha256_hex(text: str | bytes) -> str:
    if isinstance(text, str):
        text = text.encode("utf-8")
    return hashlib.sha256(text).hexdigest()
