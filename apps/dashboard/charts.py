"""Small SVG charts drawn on the server: geometry here, markup in templates/dashboard/_chart.html.

No script and no inline style: shapes carry presentation attributes and CSS classes only, so they
render under the Content-Security-Policy (style-src 'self') with nothing to download.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils.formats import number_format

WIDTH, HEIGHT = 720, 180
LEFT, BOTTOM, TOP = 44, 22, 8  # room for the value axis, the labels under it, the top tick's text


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Line:
    points: str
    css: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass
class Chart:
    title: str
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    grid: list[float] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)  # (css class, text)


def _nice_top(value: float) -> float:
    """The axis top: 1, 2 or 5 times a power of ten at or above `value` (at least 1)."""
    if value <= 1:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return float(step * magnitude)
    return float(10 * magnitude)


def _value_axis(chart: Chart, top: float) -> Callable[[float], float]:
    plot = chart.height - BOTTOM - TOP

    def y(value: float) -> float:
        return round(chart.height - BOTTOM - plot * value / top, 1)

    for fraction in (0, 0.5, 1):
        at = y(top * fraction)
        chart.grid.append(at)
        chart.labels.append(Label(LEFT - 4, at + 4, number_format(top * fraction, 0), "end"))
    return y


def _every(count: int, most: int) -> int:
    return max(1, -(-count // most))


def stacked_columns(
    *,
    title: str,
    rows: Sequence[dict[str, Any]],
    series: Sequence[tuple[str, str, str]],
    label: Callable[[dict[str, Any]], str],
    most_labels: int = 8,
) -> Chart:
    """One column per row, its `series` ((key, css class, legend text)) stacked bottom up."""
    chart = Chart(title=title, legend=[(css, text) for _, css, text in series])
    top = _nice_top(max((sum(row[key] for key, _, _ in series) for row in rows), default=0))
    y = _value_axis(chart, top)
    slot = (chart.width - LEFT) / max(len(rows), 1)
    gap = slot * 0.15 if slot > 4 else 0
    every = _every(len(rows), most_labels)
    for index, row in enumerate(rows):
        x = round(LEFT + index * slot + gap / 2, 2)
        base = 0.0
        name = label(row)
        for key, css, text in series:
            value = row[key]
            if value:
                chart.bars.append(
                    Bar(
                        x,
                        y(base + value),
                        round(slot - gap, 2),
                        round(y(base) - y(base + value), 1),
                        css,
                        f"{name} · {text}: {number_format(value, 0)}",
                    )
                )
            base += value
        if index % every == 0:
            chart.labels.append(Label(round(x + (slot - gap) / 2, 1), chart.height - 6, name))
    return chart


def lines(
    *,
    title: str,
    rows: Sequence[dict[str, Any]],
    series: Sequence[tuple[str, str, str]],
    label: Callable[[dict[str, Any]], str],
    most_labels: int = 8,
) -> Chart:
    """One polyline per series over the rows."""
    chart = Chart(title=title, legend=[(css, text) for _, css, text in series])
    top = _nice_top(max((row[key] for row in rows for key, _, _ in series), default=0))
    y = _value_axis(chart, top)
    step = (chart.width - LEFT - 8) / max(len(rows) - 1, 1)
    for key, css, _ in series:
        points = " ".join(f"{round(LEFT + 4 + i * step, 1)},{y(row[key])}" for i, row in enumerate(rows))
        chart.lines.append(Line(points, css))
    every = _every(len(rows), most_labels)
    for index, row in enumerate(rows):
        if index % every == 0:
            chart.labels.append(Label(round(LEFT + 4 + index * step, 1), chart.height - 6, label(row)))
    return chart


def horizontal_bars(*, title: str, items: Sequence[tuple[str, int, str]], of: int | None = None) -> Chart:
    """One bar per (label, value, css class), scaled to `of` (default: the largest value)."""
    height = 28 * len(items) + 8
    chart = Chart(title=title, height=height)
    most = of or max((value for _, value, _ in items), default=0) or 1
    room = chart.width - 180 - 80
    for index, (text, value, css) in enumerate(items):
        y = 8 + index * 28
        chart.labels.append(Label(172, y + 15, text, "end"))
        length = round(room * value / most, 1)
        chart.bars.append(
            Bar(180, y, max(length, 1 if value else 0), 18, css, f"{text}: {number_format(value, 0)}")
        )
        chart.labels.append(Label(180 + length + 6, y + 15, number_format(value, 0), "start"))
    return chart
