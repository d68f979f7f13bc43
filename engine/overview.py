"""Region aggregates for the regiobestuur, the R-COC and the RSO board: counts, never names.

Cells of personal workflows (about one aios) with fewer cases than the threshold are shown
as "< N": in a small hospital a count of 1 in "terminated" can identify a resident.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .deadlines import late
from .models import Case, Deadline, Institution


def _months(now: datetime, n: int) -> list[str]:
    months, year, month = [], now.year, now.month
    for _ in range(n):
        months.append(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return list(reversed(months))


def _cell(count: int, personal: bool, threshold: int) -> dict:
    if personal and 0 < count < threshold:
        return {"count": None, "display": f"< {threshold}"}
    return {"count": count, "display": str(count)}


def overview(session: Session, engine, region_ids: list[int] | None, now: datetime, threshold: int = 5,
             months: int = 12) -> dict:
    definitions = engine.latest(session)
    personal = {k for k, d in definitions.items() if d.category == "personal"}
    ladders = {k for k, d in definitions.items() if any(s.get("owner") for s in d.states)} - personal
    in_region = Case.region_id.in_(region_ids) if region_ids is not None else True
    codes = dict(session.execute(select(Institution.id, Institution.code)).all())

    counts = session.execute(
        select(Case.workflow_key, Case.state, Case.institution_id, func.count())
        .where(in_region).group_by(Case.workflow_key, Case.state, Case.institution_id)
    ).all()
    cells = [
        {"workflow": w, "state": s, "institution": codes.get(i, str(i)), **_cell(n, w in personal, threshold)}
        for w, s, i, n in sorted(counts, key=lambda r: (r[0], codes.get(r[2], ""), r[1]))
    ]

    overdue_rows = session.execute(
        select(Case.workflow_key, Case.institution_id, func.count(func.distinct(Case.id)))
        .join(Deadline, Deadline.case_id == Case.id)
        .where(in_region, Case.closed_at.is_(None), late(now))
        .group_by(Case.workflow_key, Case.institution_id)
    ).all()
    overdue = [{"workflow": w, "institution": codes.get(i, str(i)), **_cell(n, w in personal, threshold)}
               for w, i, n in sorted(overdue_rows, key=lambda r: (r[0], codes.get(r[1], "")))]

    open_ladders = session.execute(
        select(Case.workflow_key, Case.state, Case.opened_at)
        .where(in_region, Case.closed_at.is_(None), Case.workflow_key.in_(ladders))
    ).all()
    levels: Counter = Counter()
    ages: dict[str, list[int]] = defaultdict(list)
    for w, s, opened in open_ladders:
        levels[(w, s)] += 1
        ages[w].append(max(0, (now - opened).days))
    escalation_levels = [{"workflow": w, "state": s, "count": n} for (w, s), n in sorted(levels.items())]
    age = []
    for w, days in sorted(ages.items()):
        days.sort()
        age.append({"workflow": w, "open": len(days), "median_days": days[len(days) // 2], "max_days": days[-1],
                    "under_30": sum(d < 30 for d in days), "30_to_90": sum(30 <= d <= 90 for d in days),
                    "over_90": sum(d > 90 for d in days)})

    labels = _months(now, months)
    since = datetime(int(labels[0][:4]), int(labels[0][5:]), 1, tzinfo=now.tzinfo) - timedelta(days=1)
    trend = {m: {"month": m, "opened": 0, "closed": 0} for m in labels}
    tz = ZoneInfo(engine.config.timezone)
    for column, field in ((Case.opened_at, "opened"), (Case.closed_at, "closed")):
        for (moment,) in session.execute(select(column).where(in_region, column > since)):
            local = moment.astimezone(tz)  # months as people in the region count them
            key = f"{local.year:04d}-{local.month:02d}"
            if key in trend:
                trend[key][field] += 1
    return {
        "generated_at": now, "threshold": threshold, "counts": cells, "overdue": overdue,
        "escalation_levels": escalation_levels, "escalation_age": age, "trend": list(trend.values()),
    }


def csv_rows(data: dict) -> list[list[str]]:
    rows = [["section", "workflow", "state", "institution", "count"]]
    for c in data["counts"]:
        rows.append(["counts", c["workflow"], c["state"], c["institution"], c["display"]])
    for c in data["overdue"]:
        rows.append(["overdue", c["workflow"], "", c["institution"], c["display"]])
    for c in data["escalation_levels"]:
        rows.append(["escalation_level", c["workflow"], c["state"], "", str(c["count"])])
    for t in data["trend"]:
        rows.append(["opened", "", t["month"], "", str(t["opened"])])
        rows.append(["closed", "", t["month"], "", str(t["closed"])])
    return rows
