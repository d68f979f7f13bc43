"""Server-rendered SVG: a workflow's state diagram and the overview's bar charts.

No script and no style attributes (a strict CSP allows neither): colours come from
classes in static/app.css. Every figure carries a <title> and <desc> for screen
readers, and the pages put the same numbers in a table next to each chart.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from flask import current_app, has_app_context
from markupsafe import Markup, escape

from engine import overview

# -- the state diagram --------------------------------------------------------------------

NODE_W, NODE_H = 168, 60
GAP_X, GAP_Y = 40, 62
PER_ROW = 5
PAD = 16


@dataclass
class Node:
    name: str
    label: str
    x: float
    y: float
    final: bool

    @property
    def cx(self) -> float:
        return self.x + NODE_W / 2

    @property
    def cy(self) -> float:
        return self.y + NODE_H / 2


def _wrap(text: str, width: int = 20) -> list[str]:
    if len(text) <= width:
        return [text]
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    if len(lines) > 3:
        lines = lines[:2] + [" ".join(lines[2:])[: width - 1] + "…"]
    return lines


def _layout(states: list[tuple[str, str, bool]], edges: list[tuple[str, str, str]]) -> list[Node]:
    """Ongoing states in reading order, rows of PER_ROW; each final state beneath the states that lead to it."""
    ongoing = [s for s in states if not s[2]]
    final = [s for s in states if s[2]]
    nodes = []
    for i, (name, text, is_final) in enumerate(ongoing):
        row, col = divmod(i, PER_ROW)
        nodes.append(Node(name, text, PAD + col * (NODE_W + GAP_X), PAD + 22 + row * (NODE_H + GAP_Y), is_final))
    rows = math.ceil(len(ongoing) / PER_ROW) if ongoing else 0
    x_of = {n.name: n.x for n in nodes}
    right = max([n.x for n in nodes] + [PAD])
    wanted = []
    for j, (name, text, is_final) in enumerate(final):
        sources = [x_of[a] for a, b, _ in edges if b == name and a in x_of]
        wanted.append((sum(sources) / len(sources) if sources else PAD + j * (NODE_W + GAP_X), j, name, text))
    wanted.sort()
    placed, cursor = [], PAD
    for x, _, name, text in wanted:  # left to right without overlap
        x = max(x, cursor)
        placed.append([x, name, text])
        cursor = x + NODE_W + GAP_X
    overflow = (placed[-1][0] - right) if placed else 0
    if overflow > 0:  # pushed past the right edge: slide back, keeping the gaps
        limit = right
        for item in reversed(placed):
            item[0] = min(item[0], limit)
            limit = item[0] - NODE_W - GAP_X
    y = PAD + 22 + rows * (NODE_H + GAP_Y) + 14
    for x, name, text in placed:
        nodes.append(Node(name, text, max(x, PAD), y, True))
    return nodes


def _border_point(node: Node, tx: float, ty: float) -> tuple[float, float]:
    """Where the line from the node's centre towards (tx, ty) leaves its box."""
    dx, dy = tx - node.cx, ty - node.cy
    if dx == 0 and dy == 0:
        return node.cx, node.cy
    sx = (NODE_W / 2) / abs(dx) if dx else math.inf
    sy = (NODE_H / 2) / abs(dy) if dy else math.inf
    s = min(sx, sy)
    return node.cx + dx * s, node.cy + dy * s


def state_diagram(states: list[tuple[str, str, bool]], edges: list[tuple[str, str, str]], current: str | None,
                  visited: set[str], highlight: set[tuple[str, str]], title: str, desc: str) -> Markup:
    """states: (name, label, final); edges: (source, dest, label); highlight: edges the viewer may take."""
    nodes = _layout(states, edges)
    by_name = {n.name: n for n in nodes}
    width = max(n.x + NODE_W for n in nodes) + PAD
    height = max(n.y + NODE_H for n in nodes) + PAD + 4
    parts = [
        f'<svg class="diagram" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'role="img" aria-labelledby="dg-title dg-desc" focusable="false">',
        f'<title id="dg-title">{escape(title)}</title><desc id="dg-desc">{escape(desc)}</desc>',
        '<defs>'
        '<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker>'
        '<marker id="arrow-on" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead on"/></marker>'
        '</defs>',
    ]
    seen = set()
    for source, dest, text in edges:
        if (source, dest) in seen or source not in by_name or dest not in by_name:
            continue
        seen.add((source, dest))
        a, b = by_name[source], by_name[dest]
        on = (source, dest) in highlight
        cls = "edge on" if on else "edge"
        marker = "arrow-on" if on else "arrow"
        if a is b:  # a step that stays in its state: a loop above the box
            x0, y0 = a.cx - 22, a.y
            x1 = a.cx + 22
            d = f"M{x0:.1f},{y0:.1f} C{x0 - 6:.1f},{y0 - 30:.1f} {x1 + 6:.1f},{y0 - 30:.1f} {x1:.1f},{y0:.1f}"
        else:
            x0, y0 = _border_point(a, b.cx, b.cy)
            x1, y1 = _border_point(b, a.cx, a.cy)
            same_row = abs(a.y - b.y) < 1
            adjacent = same_row and abs(a.x - b.x) <= NODE_W + GAP_X + 1
            if adjacent or not same_row and abs(a.cx - b.cx) < 1:
                d = f"M{x0:.1f},{y0:.1f} L{x1:.1f},{y1:.1f}"
            else:
                # bend around whatever lies between: control point off the straight line
                mx, my = (x0 + x1) / 2, (y0 + y1) / 2
                dx, dy = x1 - x0, y1 - y0
                length = math.hypot(dx, dy) or 1
                bend = 26 if same_row else 18
                if same_row:
                    x0, y0, x1, y1 = a.cx, a.y, b.cx, b.y
                    mx, my = (x0 + x1) / 2, min(y0, y1) - 2 * bend
                else:
                    mx, my = mx - dy / length * bend, my + dx / length * bend
                d = f"M{x0:.1f},{y0:.1f} Q{mx:.1f},{my:.1f} {x1:.1f},{y1:.1f}"
        parts.append(f'<path class="{cls}" d="{d}" marker-end="url(#{marker})"><title>{escape(text)}</title></path>')
    for n in nodes:
        classes = ["node"]
        if n.final:
            classes.append("final")
        if n.name in visited:
            classes.append("visited")
        if n.name == current:
            classes.append("current")
        parts.append(f'<g class="{" ".join(classes)}">')
        parts.append(f'<rect x="{n.x:.1f}" y="{n.y:.1f}" width="{NODE_W}" height="{NODE_H}" rx="9"/>')
        lines = _wrap(n.label, 18)
        first = n.cy - (len(lines) - 1) * 8.5 + 5
        for i, line in enumerate(lines):
            parts.append(f'<text x="{n.cx:.1f}" y="{first + i * 17:.1f}" text-anchor="middle">{escape(line)}</text>')
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))


# -- charts ---------------------------------------------------------------------------------

# The small-cell rule is the overview's (engine/overview.py); the charts draw it with the region's threshold.
SMALL = overview.THRESHOLD


def threshold() -> int:
    """The region's `small_cell_threshold` (workflows/region.yaml), the default outside an app."""
    if not has_app_context():
        return SMALL
    return overview.threshold_of(current_app.config.get("TRAJECT_REGION"))


def shown(value: int, small: int | None = None) -> str:
    return overview.shown(value, small or threshold())


def bounded(values, small: int | None = None) -> tuple[int, str]:
    """A total whose hidden parts must not be given away: see engine.overview.bounded."""
    return overview.bounded(values, small or threshold())


MARKER = 7  # the length, in px, of the marker that stands for a hidden small count


def hbar_chart(rows: list[tuple], title: str, desc: str, chart_id: str,
               series_class: str = "s0") -> Markup:
    """Horizontal bars, one per row (text, value[, label]); a row whose value is None is a group heading.

    Counts under 5 are drawn as a short hatched marker labelled "< 5", never as a bar: a bar's
    length would claim a number. A row with its own label (a range, see `bounded`) is hatched,
    as long as its least value.
    """
    SMALL = threshold()  # noqa: N806  (the region's, for this chart)
    label_w, bar_w, row_h, head_h = 200, 250, 28, 26
    top = 6
    height = top + sum(head_h if r[1] is None else row_h for r in rows) + 8 if rows else 40
    width = label_w + bar_w + 46
    peak = max([r[1] for r in rows if r[1] is not None] + [2 * SMALL])
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d" focusable="false">',
        f'<title id="{chart_id}-t">{escape(title)}</title><desc id="{chart_id}-d">{escape(desc)}</desc>',
        _hatch_defs(chart_id),
    ]
    if not rows:
        parts.append(f'<text x="8" y="{top + 18}" class="label">—</text>')
    y = top
    for row in rows:
        text, value = row[0], row[1]
        label = row[2] if len(row) > 2 else None
        if value is None:
            parts.append(f'<text x="4" y="{y + 18}" class="group">{escape(_clip(text, 60))}</text>')
            y += head_h
            continue
        marker = overview.is_small(value, SMALL)
        small = marker or (label is not None and not label.isdigit())
        length = MARKER if marker else (max(value, SMALL) if small else value) / peak * bar_w
        parts.append(f'<text x="{label_w - 8}" y="{y + 18}" text-anchor="end" class="label">'
                     f'<title>{escape(text)}</title>{escape(_clip(text, 27))}</text>')
        parts.append(f'<line x1="{label_w}" x2="{label_w}" y1="{y + 2}" y2="{y + row_h - 2}" class="axis"/>')
        if value:
            fill = f'fill="url(#{chart_id}-hatch)" class="bar small"' if small else f'class="bar {series_class}"'
            parts.append(f'<rect x="{label_w}" y="{y + 5}" width="{max(length, 2):.1f}" height="{row_h - 10}" '
                         f'rx="3" {fill}/>')
        parts.append(f'<text x="{label_w + length + 6:.1f}" y="{y + 18}" class="value">'
                     f'{escape(label if label is not None else shown(value, SMALL))}</text>')
        y += row_h
    parts.append("</svg>")
    return Markup("".join(parts))


def column_chart(months: list[str], series: list[tuple[str, str, list[int]]], title: str, desc: str,
                 chart_id: str) -> Markup:
    """Grouped columns per month; series: (name, css class, values)."""
    SMALL = threshold()  # noqa: N806  (the region's, for this chart)
    left, bottom, top = 36, 34, 28
    group_w = 78
    plot_h = 170
    width = left + group_w * max(len(months), 1) + 12
    height = top + plot_h + bottom
    peak = max([v for _, _, vals in series for v in vals] + [2 * SMALL])
    step = _nice_step(peak)
    peak = math.ceil(peak / step) * step
    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d" focusable="false">',
        f'<title id="{chart_id}-t">{escape(title)}</title><desc id="{chart_id}-d">{escape(desc)}</desc>',
        _hatch_defs(chart_id),
    ]
    for tick in range(0, int(peak) + 1, step):
        y = top + plot_h - tick / peak * plot_h
        parts.append(f'<line x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{tick}</text>')
    n = max(len(series), 1)
    col_w = (group_w - 14) / n
    for i, month in enumerate(months):
        gx = left + i * group_w + 7
        for j, (name, cls, values) in enumerate(series):
            value = values[i]
            if not value:
                continue
            small = overview.is_small(value, SMALL)
            h = MARKER if small else value / peak * plot_h
            x = gx + j * col_w
            fill = f'fill="url(#{chart_id}-hatch)" class="bar small small-{cls}"' if small else f'class="bar {cls}"'
            parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{col_w - 2:.1f}" height="{h:.1f}" '
                         f'{fill}><title>{escape(name)} {escape(month)}: {escape(shown(value, SMALL))}</title></rect>')
        parts.append(f'<text x="{gx + (group_w - 14) / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
                     f'class="tick">{escape(month)}</text>')
    # legend
    lx = left
    for name, cls, _ in series:
        parts.append(f'<rect x="{lx}" y="4" width="12" height="12" rx="2" class="bar {cls}"/>')
        parts.append(f'<rect x="{lx + 15}" y="4" width="12" height="12" rx="2" fill="url(#{chart_id}-hatch)" '
                     f'class="bar small small-{cls}"/>')
        lx += 15
        parts.append(f'<text x="{lx + 17}" y="14" class="legend">{escape(name)}</text>')
        lx += 30 + 7.5 * len(name)
    parts.append(f'<rect x="{lx}" y="4" width="12" height="12" rx="2" fill="url(#{chart_id}-hatch)" '
                 f'class="bar small"/><text x="{lx + 17}" y="14" class="legend">&lt; {SMALL}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _hatch_defs(chart_id: str) -> str:
    return (f'<defs><pattern id="{chart_id}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
            f'patternTransform="rotate(45)"><rect width="6" height="6" class="hatch-bg"/>'
            f'<line x1="0" y1="0" x2="0" y2="6" class="hatch-line"/></pattern></defs>')


def _nice_step(peak: float) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000):
        if peak / step <= 6:
            return step
    return 10000


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
