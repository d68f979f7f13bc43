"""Guards, effects and document validators specific to the Dutch training procedures."""
from __future__ import annotations

from engine.calendar import months_between_ok
from engine.fields import parse_date
from engine.registry import Context, Registry


def install(registry: Registry) -> Registry:
    registry.validator("term_months")(term_months)
    return registry


def term_months(ctx: Context, content: dict, start: str, end: str, min: int, max: int):
    """The GBT rule: end at least `min` and at most `max` calendar months after start."""
    a, b = parse_date(content.get(start)), parse_date(content.get(end))
    if a and b and not months_between_ok(a, b, min, max):
        return {
            f"content.{end}": (
                f"must lie at least {min} and at most {max} calendar months after {start} "
                f"(between {a.isoformat()} + {min} and + {max} months) / "
                f"moet minstens {min} en hoogstens {max} kalendermaanden na de startdatum liggen"
            )
        }
    return None
