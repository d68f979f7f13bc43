"""Region aggregates for the regiobestuur, the R-COC and the RSO board: counts, never names.

One computation (`figures`) for every view of the overview: the API and its CSV (`overview`,
`csv_rows`) and the pages (web/views/data.py), which reshape the same numbers. The API counts
every case (open and closed) by workflow × state × institution; the pages show the open ones,
the `open` half of the same cells.

The small-cell rule lives here too, once: a count of 1 to threshold − 1 is shown as "< N"
(`shown`), because in a small hospital a count of 1 in "terminated" can identify a resident.
The API hides such cells of personal workflows (about one aios); the pages hide every small cell
and show a total that includes a hidden cell as a range (`bounded`), so it cannot be subtracted back.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from .deadlines import late
from .models import Case, Deadline, Institution

THRESHOLD = 5  # the default `small_cell_threshold` of a region


# -- the small-cell rule -------------------------------------------------------------------------


def threshold_of(region: Mapping | None) -> int:
    """The region's `small_cell_threshold` (workflows/region.yaml): 5 unless set, and at least 1."""
    value = (region or {}).get("small_cell_threshold", THRESHOLD)
    return max(int(value or THRESHOLD), 1)


def is_small(count: int, threshold: int) -> bool:
    return 0 < count < threshold


def shown(count: int, threshold: int) -> str:
    """A count as people may read it: "< 5" for 1 to 4, else the number."""
    return f"< {threshold}" if is_small(count, threshold) else str(count)


def bounded(values, threshold: int) -> tuple[int, str]:
    """A total over cells some of which are hidden: (its least possible value, what to show).

    Shown exactly, a total would give a hidden cell away (total minus the visible cells); so a
    total with hidden parts is shown as the range the visible cells allow, e.g. "7–10".
    """
    values = [v for v in values if v]
    hidden = [v for v in values if is_small(v, threshold)]
    visible = sum(v for v in values if not is_small(v, threshold))
    if not hidden:
        return visible, str(visible)
    low, high = visible + len(hidden), visible + len(hidden) * (threshold - 1)
    return low, (f"< {threshold}" if high < threshold else f"{low}–{high}")


def banded(personal: int, other: int, threshold: int) -> tuple[int, int, str]:
    """A count over time that includes personal trajectories: (lowest, highest, what to show).

    Exact only without them. Otherwise the personal part is published as a band as wide as the
    threshold (1–4, 5–9, …): subtracting the published cells from such a month leaves a range, never
    the number a hidden cell holds.
    """
    if not personal:
        return other, other, str(other)
    low = personal // threshold * threshold
    low, high = other + max(low, 1), other + low + threshold - 1
    return low, high, (f"< {threshold}" if high < threshold else f"{low}–{high}")


def trend_cell(part: tuple[int, int], threshold: int) -> dict:
    low, high, display = banded(*part, threshold)
    return {"count": low if low == high else None, "display": display}


def cell(count: int, threshold: int, protected: bool = True) -> dict:
    """An API cell: a protected small count has no number, only its display."""
    if protected and is_small(count, threshold):
        return {"count": None, "display": shown(count, threshold)}
    return {"count": count, "display": str(count)}


# -- the numbers ------------------------------------------------------------------------------


def personal_workflows(definitions: dict) -> set[str]:
    return {k for k, d in definitions.items() if d.category == "personal"}


def ladders(definitions: dict) -> set[str]:
    """Escalation ladders: workflows with levels that a role owns, never a personal trajectory."""
    return {k for k, d in definitions.items() if any(s.get("owner") for s in d.states)} - personal_workflows(definitions)


@dataclass
class Figures:
    """The overview's numbers before any cell is hidden: what every view of it is made from."""

    now: datetime
    institutions: list  # (id, code, name, region id) of every institution, by name
    cells: dict  # (workflow, state, institution id) -> (cases, open cases)
    late: dict  # (workflow, institution id) -> open cases with a deadline passed
    months: list  # "YYYY-MM", oldest first, as people in the region count months
    opened: list  # per month: (personal trajectories, other cases)
    closed: list  # per month: (personal trajectories, other cases)

    def code(self, institution_id) -> str:
        return self._codes.get(institution_id, str(institution_id))

    def sort_code(self, institution_id) -> str:
        return self._codes.get(institution_id, "")

    def __post_init__(self):
        self._codes = {i: code for i, code, _name, _region in self.institutions}


def _months(local_now: datetime, n: int) -> list[tuple[int, int]]:
    months, year, month = [], local_now.year, local_now.month
    for _ in range(n):
        months.append((year, month))
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return list(reversed(months))


def figures(session: Session, engine, region_ids: list[int] | None, now: datetime, months: int = 12) -> Figures:
    """Counts over the region(s), `None`: every region. Five queries, whatever the number of cases."""
    in_region = Case.region_id.in_(region_ids) if region_ids is not None else True
    institutions = session.execute(
        select(Institution.id, Institution.code, Institution.name, Institution.region_id).order_by(Institution.name)
    ).all()
    cells = {
        (w, s, i): (n, n - closed) for w, s, i, n, closed in session.execute(
            select(Case.workflow_key, Case.state, Case.institution_id, func.count(), func.count(Case.closed_at))
            .where(in_region).group_by(Case.workflow_key, Case.state, Case.institution_id))
    }
    passed = late(now)
    late_cases = {
        (w, i): n for w, i, n in session.execute(
            select(Case.workflow_key, Case.institution_id, func.count(func.distinct(Case.id)))
            .join(Deadline, Deadline.case_id == Case.id)
            .where(in_region, Case.closed_at.is_(None), passed)
            .group_by(Case.workflow_key, Case.institution_id))
    }
    tz = ZoneInfo(engine.config.timezone)  # months as people in the region count them
    labels = _months(now.astimezone(tz), months)
    # Each month's first moment there, and the one after the last: the database counts into these
    # buckets, instead of sending every case of the year to be sorted here (10,000 cases: 13 → 2 ms).
    starts = [datetime(y, m, 1, tzinfo=tz) for y, m in labels]
    y, m = labels[-1]
    starts.append(datetime(y + m // 12, m % 12 + 1, 1, tzinfo=tz))
    opened, closed = [[0, 0] for _ in range(months)], [[0, 0] for _ in range(months)]
    personal = personal_workflows(engine.latest(session))
    for column, bucket in ((Case.opened_at, opened), (Case.closed_at, closed)):
        month = case(*((column < starts[i + 1], i) for i in range(months)))
        for key, i, n in session.execute(
                select(Case.workflow_key, month, func.count())
                .where(in_region, column >= starts[0], column < starts[-1])
                .group_by(Case.workflow_key, month)):
            bucket[i][0 if key in personal else 1] += n
    return Figures(now=now, institutions=list(institutions), cells=cells, late=late_cases,
                   months=[f"{y:04d}-{m:02d}" for y, m in labels], opened=[tuple(b) for b in opened],
                   closed=[tuple(b) for b in closed])


def escalation_age(session: Session, region_ids: list[int] | None, now: datetime, keys: set[str]) -> list[dict]:
    """How long the open cases of the ladders have been open, per workflow: one query."""
    in_region = Case.region_id.in_(region_ids) if region_ids is not None else True
    ages: dict[str, list[int]] = defaultdict(list)
    for w, opened in session.execute(select(Case.workflow_key, Case.opened_at)
                                     .where(in_region, Case.closed_at.is_(None), Case.workflow_key.in_(keys))):
        ages[w].append(max(0, (now - opened).days))
    age = []
    for w, days in sorted(ages.items()):
        days.sort()
        age.append({"workflow": w, "open": len(days), "median_days": days[len(days) // 2], "max_days": days[-1],
                    "under_30": sum(d < 30 for d in days), "30_to_90": sum(30 <= d <= 90 for d in days),
                    "over_90": sum(d > 90 for d in days)})
    return age


# -- the API's view (CONTRACT.md: GET /overview) --------------------------------------------------------


def overview(session: Session, engine, region_ids: list[int] | None, now: datetime, threshold: int = THRESHOLD,
             months: int = 12) -> dict:
    """Every case by workflow × state × institution, small cells of personal workflows hidden."""
    definitions = engine.latest(session)
    personal, ladder_keys = personal_workflows(definitions), ladders(definitions)
    f = figures(session, engine, region_ids, now, months)
    counts = [
        {"workflow": w, "state": s, "institution": f.code(i), **cell(n, threshold, w in personal)}
        for (w, s, i), (n, _open) in sorted(f.cells.items(), key=lambda c: (c[0][0], f.sort_code(c[0][2]), c[0][1]))
    ]
    overdue = [{"workflow": w, "institution": f.code(i), **cell(n, threshold, w in personal)}
               for (w, i), n in sorted(f.late.items(), key=lambda c: (c[0][0], f.sort_code(c[0][1])))]
    levels: dict[tuple[str, str], int] = defaultdict(int)
    for (w, s, _i), (_n, n_open) in f.cells.items():
        if w in ladder_keys and n_open:
            levels[(w, s)] += n_open
    return {
        "generated_at": now, "threshold": threshold, "counts": counts, "overdue": overdue,
        "escalation_levels": [{"workflow": w, "state": s, "count": n} for (w, s), n in sorted(levels.items())],
        "escalation_age": escalation_age(session, region_ids, now, ladder_keys),
        "trend": [_trend_row(m, o, c, threshold) for m, o, c in zip(f.months, f.opened, f.closed)],
    }


def _trend_row(month: str, opened: tuple, closed: tuple, threshold: int) -> dict:
    o, c = trend_cell(opened, threshold), trend_cell(closed, threshold)
    return {"month": month, "opened": o["count"], "closed": c["count"], "opened_display": o["display"],
            "closed_display": c["display"]}


def csv_rows(data: dict) -> list[list[str]]:
    rows = [["section", "workflow", "state", "institution", "count"]]
    for c in data["counts"]:
        rows.append(["counts", c["workflow"], c["state"], c["institution"], c["display"]])
    for c in data["overdue"]:
        rows.append(["overdue", c["workflow"], "", c["institution"], c["display"]])
    for c in data["escalation_levels"]:
        rows.append(["escalation_level", c["workflow"], c["state"], "", str(c["count"])])
    for t in data["trend"]:
        rows.append(["opened", "", t["month"], "", t["opened_display"]])
        rows.append(["closed", "", t["month"], "", t["closed_display"]])
    return rows
