"""Charts drawn on the server as SVG: grouped bars and lines with labelled axes, an
accessible <title>/<desc>, and one <title> per mark, readable without JavaScript. Each page
shows the same numbers in a table beside the chart; every mark carries its value in
`data-value` (minor units, or basis points for shares) so the two can be checked together.

A chart is a `Chart` (categories x series of integers); `draw()` lays it out in a 640-wide
viewBox and formats labels with the page's formatter, so numbers read as the tables do."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from markupsafe import Markup, escape

WIDTH = 640
PLOT_HEIGHT = 204
LEFT, RIGHT, TOP = 72, 12, 30
BOTTOM, SLANTED_BOTTOM = 44, 96
CHAR_WIDTH = 11.5
"""Width of a label character at the phone's text size (money.css): a category slot too
narrow for its longest label gets slanted labels (and more room under the axis)."""
TICKS = 5
LABEL_CHARS = 14
MONEY = "money"
SHARE = "share"  # basis points, shown as percent


class Formatter(Protocol):
    def minor(self, amount_minor: int, currency: str) -> str: ...
    def number(self, value: int) -> str: ...
    def short_date(self, day: date) -> str: ...
    def month(self, year: int, month: int) -> str: ...


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    """A msgid: translated when drawn."""
    values: Sequence[int]
    css: str = "s1"


@dataclass(frozen=True, slots=True)
class Chart:
    id: str
    categories: Sequence[date | str]
    series: Sequence[Series]
    unit: str = MONEY
    currency: str = ""
    grain: str = "day"
    """How date categories read: day, week (its Monday) or month."""
    kind: str = "bars"
    """bars or line."""
    labels: dict[str, str] = field(default_factory=dict)
    """Full names for categories that are ids (shown in titles and, shortened, on the axis)."""


def _nice_step(span: float) -> float:
    raw = span / TICKS
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _scale(chart: Chart) -> tuple[float, float, float]:
    """The axis range (low, high) in the chart's units and its tick step."""
    values = [v for s in chart.series for v in s.values] or [0]
    if chart.unit == SHARE:
        # Shares: from 0 to the next round step above the largest (at least 10%).
        step = _nice_step(max(1_000, max(values)))
        return 0, min(10_000, math.ceil(max(1_000, max(values)) / step) * step), step
    low, high = min(0, min(values)), max(0, max(values))
    if low == high:
        high = 100
    step = _nice_step(high - low)
    return math.floor(low / step) * step, math.ceil(high / step) * step, step


def _category(chart: Chart, fmt: Formatter, value: date | str) -> str:
    if isinstance(value, date):
        if chart.grain == "month":
            return fmt.month(value.year, value.month)
        return fmt.short_date(value)
    return chart.labels.get(value, value)


def _value(chart: Chart, fmt: Formatter, value: int) -> str:
    if chart.unit == SHARE:
        return f"{value / 100:.1f}%"
    return fmt.minor(value, chart.currency)


def _tick(chart: Chart, fmt: Formatter, value: float, exponent: int) -> str:
    if chart.unit == SHARE:
        return f"{round(value / 100)}%"
    return fmt.number(round(value / 10**exponent))


def _short(text: str) -> str:
    return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


def draw(
    chart: Chart,
    fmt: Formatter,
    gettext: Callable[[str], str],
    *,
    title: str,
    desc: str,
    exponent: int = 2,
) -> Markup:
    """The chart as inline SVG; `title` and `desc` are already translated."""
    low, high, step = _scale(chart)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, PLOT_HEIGHT
    slot = plot_w / max(1, len(chart.categories))
    labels = [_category(chart, fmt, c) for c in chart.categories]
    slanted = slot < max((len(_short(label)) for label in labels), default=0) * CHAR_WIDTH
    height = TOP + plot_h + (SLANTED_BOTTOM if slanted else BOTTOM)

    def y(value: float) -> float:
        return TOP + plot_h * (high - value) / (high - low)

    parts: list[str] = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{chart.id}-t {chart.id}-d" id="{chart.id}" '
        f'data-unit="{escape(chart.unit)}">',
        f'<title id="{chart.id}-t">{escape(title)}</title>',
        f'<desc id="{chart.id}-d">{escape(desc)}</desc>',
        '<g class="grid" aria-hidden="true">',
    ]
    tick: float = low
    while tick <= high + step / 1000:
        ty = y(tick)
        css = "axis" if tick == 0 else "rule"
        parts.append(
            f'<line class="{css}" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}"/>'
        )
        parts.append(
            f'<text class="tick" x="{LEFT - 8}" y="{ty + 4:.1f}" text-anchor="end">'
            f"{escape(_tick(chart, fmt, tick, exponent))}</text>"
        )
        tick += step
    if chart.unit == MONEY and chart.currency:
        parts.append(
            f'<text class="unit" x="{LEFT - 8}" y="{TOP - 16}" text-anchor="end">'
            f"{escape(chart.currency)}</text>"
        )
    parts.append("</g>")
    names = [gettext(s.name) for s in chart.series]
    if chart.kind == "line":
        parts += _lines(chart, fmt, labels, names, slot, y)
    else:
        parts += _bars(chart, fmt, labels, names, slot, y)
    parts += _x_labels(labels, slot, slanted)
    parts.append("</svg>")
    # Every text and attribute above went through escape(); numbers are formatted by us.
    return Markup("".join(parts))  # noqa: S704


def _bars(
    chart: Chart,
    fmt: Formatter,
    labels: list[str],
    names: list[str],
    slot: float,
    y: Callable[[float], float],
) -> list[str]:
    groups = max(1, len(chart.series))
    gap = slot * 0.2
    width = (slot - gap) / groups
    zero = y(0)
    parts = ['<g class="marks">']
    for index, label in enumerate(labels):
        for number, (series, name) in enumerate(zip(chart.series, names, strict=True)):
            value = series.values[index]
            x = LEFT + index * slot + gap / 2 + number * width
            top, bottom = sorted((y(value), zero))
            parts.append(
                f'<rect class="{series.css}" x="{x:.2f}" y="{top:.2f}" width="{width:.2f}" '
                f'height="{bottom - top:.2f}" data-series="{number}" data-category="{index}" '
                f'data-value="{value}"><title>{escape(name)}, {escape(label)}: '
                f"{escape(_value(chart, fmt, value))}</title></rect>"
            )
    parts.append("</g>")
    return parts


def _lines(
    chart: Chart,
    fmt: Formatter,
    labels: list[str],
    names: list[str],
    slot: float,
    y: Callable[[float], float],
) -> list[str]:
    parts = ['<g class="marks">']
    for number, (series, name) in enumerate(zip(chart.series, names, strict=True)):
        points = [
            (LEFT + (index + 0.5) * slot, y(value)) for index, value in enumerate(series.values)
        ]
        path = " ".join(f"{x:.2f},{py:.2f}" for x, py in points)
        parts.append(f'<polyline class="line {series.css}" points="{path}" aria-hidden="true"/>')
        for index, ((x, py), value) in enumerate(zip(points, series.values, strict=True)):
            parts.append(
                f'<circle class="{series.css}" cx="{x:.2f}" cy="{py:.2f}" r="3.5" '
                f'data-series="{number}" data-category="{index}" data-value="{value}">'
                f"<title>{escape(name)}, {escape(labels[index])}: "
                f"{escape(_value(chart, fmt, value))}</title></circle>"
            )
    parts.append("</g>")
    return parts


def _x_labels(labels: list[str], slot: float, slanted: bool) -> list[str]:
    """Every label when they fit, else every k-th counted back from the last (the latest
    period is always named). Spaced for the larger text a phone gets (money.css)."""
    every = max(1, math.ceil(len(labels) * 90 / (WIDTH - LEFT - RIGHT)))
    base = TOP + PLOT_HEIGHT + 16
    parts = ['<g class="x" aria-hidden="true">']
    for index, label in enumerate(labels):
        if (len(labels) - 1 - index) % every:
            continue
        x = LEFT + (index + 0.5) * slot
        if slanted:
            parts.append(
                f'<text class="tick" x="{x:.1f}" y="{base}" text-anchor="end" '
                f'transform="rotate(-35 {x:.1f} {base})">{escape(_short(label))}</text>'
            )
        else:
            parts.append(
                f'<text class="tick" x="{x:.1f}" y="{base}" text-anchor="middle">'
                f"{escape(_short(label))}</text>"
            )
    parts.append("</g>")
    return parts


def exponent_of(currency: str) -> int:
    from app.money import currency_exponent

    return currency_exponent(currency) if currency else 2


def context() -> dict[str, Any]:
    """What templates need to draw a chart."""
    return {"draw_chart": draw, "exponent_of": exponent_of}
