"""What several commands share: reading a moment given on the command line."""
from __future__ import annotations

from datetime import datetime, timezone

import click


def moment(text: str | None, option: str) -> datetime | None:
    """An ISO-8601 moment; without a zone it is read as UTC, like everything stored."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"not an ISO-8601 moment: {text!r}", param_hint=option) from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
