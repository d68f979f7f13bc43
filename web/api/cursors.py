"""Opaque page cursors (`next` of every list): URL-safe base64 of a short text, checked when read back."""
from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from engine.errors import ValidationError


def invalid() -> ValidationError:
    return ValidationError("invalid cursor", {"cursor": ["invalid cursor"]})


def encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor.encode() + b"==").decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid() from None


def encode_position(position: tuple) -> str:
    """An inbox position (engine/inbox.py: reason order, due moment, case, deadline, document)."""
    order, due, *ids = position
    return encode(json.dumps([order, due.isoformat(), *ids], separators=(",", ":")))


def decode_position(cursor: str) -> tuple:
    try:
        order, due, *ids = json.loads(decode(cursor))
        moment = datetime.fromisoformat(due)
        if not (isinstance(order, int) and len(ids) == 3 and all(isinstance(i, int) for i in ids)
                and moment.tzinfo is not None):
            raise ValueError
    except (ValueError, TypeError):
        raise invalid() from None
    return (order, moment, *ids)
