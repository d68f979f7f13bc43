"""Generic guards and effects every definition may use; domain-specific ones live in workflows/."""
from __future__ import annotations

from .registry import Context, Registry, unmet


def install(registry: Registry) -> Registry:
    registry.guard("min_items")(min_items)
    registry.guard("document_signed")(document_signed)
    registry.guard("field_equals")(field_equals)
    registry.guard("deadline_open")(deadline_open)
    registry.effect("open_child")(open_child)
    registry.effect("meet_deadline")(meet_deadline)
    return registry


def _matches(item, where: dict | None) -> bool:
    return not where or (isinstance(item, dict) and all(item.get(k) == v for k, v in where.items()))


def min_items(ctx: Context, field: str, min: int = 1, where: dict | None = None, label: str = "",
              label_en: str = ""):
    items = ctx.value(field) or []
    count = sum(1 for item in items if _matches(item, where)) if isinstance(items, list) else 0
    if count >= min:
        return None
    return unmet("min_items", f"at least {min} {label_en or field} needed, found {count}",
                 f"minstens {min} {label or field} nodig, er zijn er {count}", field=f"data.{field}")


def document_signed(ctx: Context, kind: str):
    spec = ctx.definition.documents.get(kind, {})
    title_nl, title_en = spec.get("title", kind), spec.get("title_en") or kind
    doc = ctx.documents.get(kind)
    if doc is None:
        return unmet("document_signed", f"{title_en} has not been written yet", f"{title_nl} is nog niet opgesteld",
                     field=f"documents.{kind}", kind=kind)
    if not ctx.document_is_signed(kind):
        signed = {s.signer_id for s in doc.signatures}
        waiting = [uid for uid in doc.required_signer_ids if uid not in signed]
        return unmet("document_signed", f"{title_en} (version {doc.version}) is not signed by everyone yet",
                     f"{title_nl} (versie {doc.version}) is nog niet door iedereen ondertekend",
                     field=f"documents.{kind}", kind=kind, waiting_for=waiting)
    return None


def field_equals(ctx: Context, field: str, value, label: str = "", label_en: str = ""):
    if ctx.value(field) == value:
        return None
    return unmet("field_equals", f"{label_en or field} must be {value}", f"{label or field} moet {value} zijn",
                 field=field)


def open_child(ctx: Context, workflow: str, carry: list | None = None, title: str = ""):
    """Open a linked case of another workflow in the same transaction (e.g. intensify → GBT)."""
    data = {k: ctx.data[k] for k in (carry or []) if k in ctx.data}
    child = ctx.engine.open_case(
        ctx.session, ctx.actor, workflow=workflow, institution=ctx.case.institution_id,
        subject_id=ctx.case.subject_id, parent_id=ctx.case.id, title=title or ctx.case.title, data=data,
        responsible_id=ctx.case.responsible_id,
    )
    return {"opened_case_id": child.id, "workflow": workflow}


def meet_deadline(ctx: Context, kind: str):
    """Mark one open deadline met, e.g. kind "action_{action}" with data.action = 2."""
    from sqlalchemy import update

    from .models import DEADLINE_OPEN, Deadline

    name = kind.format_map({k: v for k, v in ctx.input.items() if isinstance(v, (int, str))})
    result = ctx.session.execute(
        update(Deadline).where(Deadline.case_id == ctx.case.id, Deadline.kind == name,
                               Deadline.status.in_(DEADLINE_OPEN))
        .values(status="met", resolved_at=ctx.now, remind_at=None).execution_options(synchronize_session=False))
    return {"deadline": name, "met": result.rowcount}


def deadline_open(ctx: Context, kind: str):
    from sqlalchemy import select

    from .models import DEADLINE_OPEN, Deadline

    name = kind.format_map({k: v for k, v in ctx.input.items() if isinstance(v, (int, str))})
    found = ctx.session.scalar(select(Deadline.id).where(Deadline.case_id == ctx.case.id, Deadline.kind == name,
                                                         Deadline.status.in_(DEADLINE_OPEN)).limit(1))
    if found:
        return None
    return unmet("deadline_open", f"there is no open {name}", f"er is geen openstaande {name.replace('_', ' ')}",
                 field=None)
