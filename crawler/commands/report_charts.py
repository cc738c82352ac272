"""The report's charts, as inline SVG drawn from the report dict (report.build_report), and
`text`, the one place the report's HTML escapes a value.

Every string that goes into the report's markup, whether from the crawled site or not, goes
through `text` (html.escape, quotes included); the functions here and in report_html.py
return markup built only from `text(...)` and literals. No chart fetches anything: shapes,
labels and numbers are all in the SVG.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

CLASS_COLOURS = {
    "2xx": "#2e7d32", "3xx": "#1565c0", "4xx": "#ef6c00", "5xx": "#c62828",
    "none": "#757575", "other": "#6a1b9a",
}  # fmt: skip
BAR_COLOUR = "#3949ab"
WIDTH, HEIGHT = 480, 220
PAD_LEFT, PAD_BOTTOM, PAD_TOP = 44, 34, 14


def text(value: object) -> str:
    """`value` as HTML text: the report's one escape (None as an empty string)."""
    return "" if value is None else html.escape(str(value), quote=True)


def _figure(chart_id: str, title: str, body: str, caption: str) -> str:
    return (
        f'<figure class="chart" id="{text(chart_id)}">'
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{text(title)}"'
        f"><title>{text(title)}</title>{body}</svg>"
        f"<figcaption>{text(caption)}</figcaption></figure>"
    )


def _axis(top: int) -> str:
    base = HEIGHT - PAD_BOTTOM
    return (
        f'<line x1="{PAD_LEFT}" y1="{base}" x2="{WIDTH - 6}" y2="{base}" stroke="#999"/>'
        f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + 4}" text-anchor="end" class="tick">'
        f"{text(top)}</text>"
        f'<text x="{PAD_LEFT - 6}" y="{base}" text-anchor="end" class="tick">0</text>'
    )


def stacked_bars(
    chart_id: str,
    title: str,
    bars: Sequence[tuple[str, Mapping[str, int]]],
    caption: str,
) -> str:
    """One bar per (label, parts), each part a stacked piece coloured by its key."""
    top = max((sum(parts.values()) for _, parts in bars), default=0)
    if top == 0:
        return _figure(chart_id, title, _empty(), caption)
    span = (WIDTH - PAD_LEFT - 6) / len(bars)
    plot = HEIGHT - PAD_BOTTOM - PAD_TOP
    shapes = [_axis(top)]
    every = _label_every(len(bars), max(len(label) for label, _ in bars))
    for i, (label, parts) in enumerate(bars):
        x = PAD_LEFT + i * span + span * 0.15
        width = max(span * 0.7, 1.0)
        y = float(HEIGHT - PAD_BOTTOM)
        for key, n in parts.items():
            if n <= 0:
                continue
            h = plot * n / top
            y -= h
            colour = CLASS_COLOURS.get(key, BAR_COLOUR)
            shapes.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{h:.1f}"'
                f' fill="{colour}"><title>{text(label)}: {text(key)} {text(n)}</title></rect>'
            )
        if i % every == 0:
            shapes.append(
                f'<text x="{x + width / 2:.1f}" y="{HEIGHT - PAD_BOTTOM + 14}"'
                f' text-anchor="middle" class="tick">{text(label)}</text>'
            )
    return _figure(chart_id, title, "".join(shapes) + _legend(bars), caption)


def _label_every(count: int, longest: int) -> int:
    """Label every n-th bar, n as small as lets the labels stand apart (11 px text, about
    7 px a character, in a chart WIDTH wide)."""
    fits = max(int((WIDTH - PAD_LEFT) / (longest * 7 + 8)), 1)
    return -(-count // fits)


def bars(chart_id: str, title: str, values: Sequence[tuple[str, int]], caption: str) -> str:
    """A plain bar chart: one bar per (label, value)."""
    return stacked_bars(chart_id, title, [(label, {"": n}) for label, n in values], caption)


def _legend(bars: Sequence[tuple[str, Mapping[str, int]]]) -> str:
    keys = [k for k in CLASS_COLOURS if any(parts.get(k) for _, parts in bars)]
    items = []
    for i, key in enumerate(keys):
        x = PAD_LEFT + i * 62
        items.append(
            f'<rect x="{x}" y="{HEIGHT - 14}" width="10" height="10"'
            f' fill="{CLASS_COLOURS[key]}"/>'
            f'<text x="{x + 14}" y="{HEIGHT - 5}" class="tick">{text(key)}</text>'
        )
    return "".join(items)


def _empty() -> str:
    return (
        f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="tick">no pages</text>'
    )


def charts(report: Mapping[str, Any]) -> str:
    """The report's four charts: status mix, pages by depth and status class, pages fetched
    over time, response times."""
    by_status: Mapping[str, int] = report["summary"]["by_status"]
    depth_rows: Sequence[Mapping[str, int]] = report["depth"]
    depths = [
        (str(row["depth"]), {k: int(row.get(k, 0)) for k in CLASS_COLOURS}) for row in depth_rows
    ]
    timeline = report["charts"]["fetched_over_time"]
    over_time = [(_time_label(b["t"]), int(b["pages"])) for b in timeline["buckets"]]
    times = [
        (f"<{edge}" if edge is not None else f"≥{previous}", int(b["pages"]))
        for b, edge, previous in _edges(report["charts"]["response_times"])
    ]
    return "".join(
        [
            stacked_bars(
                "chart-status",
                "Status mix",
                [(key, {key: int(n)}) for key, n in by_status.items()],
                "Pages by status class",
            ),
            stacked_bars(
                "chart-depth", "Pages by depth", depths, "Pages per link depth, by status class"
            ),
            bars(
                "chart-time",
                "Pages fetched over time",
                over_time,
                f"Pages fetched per {timeline['unit']}",
            ),
            bars("chart-response", "Response times", times, "Pages per response time (ms)"),
        ]
    )


def _time_label(stamp: str) -> str:
    return stamp[11:] if len(stamp) > 10 else stamp  # the time of day, or the day


def _edges(buckets: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], Any, Any]]:
    previous = [None, *[b["under_ms"] for b in buckets]]
    return [(b, b["under_ms"], p) for b, p in zip(buckets, previous, strict=False)]
