"""Bar charts drawn on the server as SVG: no JavaScript, no external library.

Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` (what a
screen reader announces), a ``<title>`` on every bar (a tooltip), and is meant to
sit next to a table with the same figures.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_CEILING, Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 30
PLOT_WIDTH, PLOT_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
Number = int | float | Decimal

#: An axis step is one of these times a power of ten ...
NICE_STEPS = (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5))
#: ... the smallest that spans the peak in at most this many intervals.
MAX_INTERVALS = 4


def axis_ticks(peak: Number, *, whole_numbers: bool = True) -> list[Decimal]:
    """The y axis' ticks: 0, then round steps up to the first tick at or above ``peak``.

    Counts take whole steps only (a peak of 1 call gives 0, 1; of 3 calls 0, 1, 2, 3;
    of 7 calls 0, 2, 4, 6, 8), costs any round step (0.0123 gives 0, 0.005, 0.010,
    0.015). Without a peak the axis still runs from 0 to 1.
    """
    top = Decimal(str(peak))
    if top <= 0:
        top = Decimal(1)
    for exponent in itertools.count((top / MAX_INTERVALS).adjusted()):
        for multiple in NICE_STEPS:
            step = multiple.scaleb(exponent)
            if whole_numbers and step != step.to_integral_value():
                continue
            intervals = int((top / step).to_integral_value(rounding=ROUND_CEILING))
            if intervals <= MAX_INTERVALS:
                return [step * index for index in range(intervals + 1)]
    raise AssertionError("unreachable: a step of 10 ** (exponent + 1) always fits")


def tick_labels(ticks: Sequence[Decimal]) -> list[str]:
    """The ticks with as many decimals as the step needs, so that no two read the same."""
    step = ticks[1] - ticks[0]
    places = max(0, -int(step.normalize().as_tuple().exponent))
    return [f"{tick:,.{places}f}" for tick in ticks]


@dataclass(frozen=True)
class Series:
    name: str
    #: CSS class that colours the bars.
    css_class: str
    values: Sequence[Number]


@dataclass(frozen=True)
class BarChart:
    """Days along the x axis; the series stacked on each day, first at the bottom."""

    chart_id: str
    title: str
    description: str
    days: Sequence[date]
    series: Sequence[Series]
    #: Formats a value for the tooltips.
    unit_format: str = "{:,.0f}"
    #: Counts (whole steps on the axis) rather than amounts such as costs.
    whole_numbers: bool = True

    def total(self, index: int) -> Number:
        return sum((series.values[index] for series in self.series), start=0)

    def render(self) -> SafeString:
        peak = max((self.total(i) for i in range(len(self.days))), default=0)
        axis = axis_ticks(peak, whole_numbers=self.whole_numbers)
        slot = PLOT_WIDTH / max(len(self.days), 1)
        return format_html(
            '<svg class="byok-chart" viewBox="0 0 {} {}" role="img" '
            'aria-labelledby="{}-title {}-desc" preserveAspectRatio="xMidYMid meet">'
            '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>{}{}{}</svg>',
            WIDTH,
            HEIGHT,
            self.chart_id,
            self.chart_id,
            self.chart_id,
            self.title,
            self.chart_id,
            self.description,
            gridlines(axis),
            self.bars(float(axis[-1]), slot),
            self.day_labels(slot),
        )

    def bars(self, top: float, slot: float) -> SafeString:
        """Each day's bar, its series stacked, scaled so that ``top`` fills the plot."""
        bar = max(slot * 0.7, 1.0)
        rects = []
        for index, day in enumerate(self.days):
            x = LEFT + index * slot + (slot - bar) / 2
            bottom: float = TOP + PLOT_HEIGHT
            for series in self.series:
                value = float(series.values[index])
                if not value:
                    continue
                height = PLOT_HEIGHT * value / top
                bottom -= height
                label = f"{day.isoformat()}: {series.name} {self.unit_format.format(value)}"
                rects.append(
                    (
                        series.css_class,
                        f"{x:.1f}",
                        f"{bottom:.1f}",
                        f"{bar:.1f}",
                        f"{height:.1f}",
                        label,
                    )
                )
        return format_html_join(
            "",
            '<rect class="{}" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
            rects,
        )

    def day_labels(self, slot: float) -> SafeString:
        """The first, middle and last days under the bars."""
        return format_html_join(
            "",
            '<text class="byok-chart-axis" x="{}" y="{}" text-anchor="middle">{}</text>',
            (
                (
                    f"{LEFT + index * slot + slot / 2:.1f}",
                    HEIGHT - 10,
                    self.days[index].strftime("%b %d"),
                )
                for index in sorted({0, len(self.days) // 2, len(self.days) - 1})
                if self.days
            ),
        )


def gridlines(axis: list[Decimal]) -> SafeString:
    """A line and a label for each tick of the y axis."""
    top = float(axis[-1])
    lines = []
    for tick, text in zip(axis, tick_labels(axis), strict=True):
        y = TOP + PLOT_HEIGHT * (1 - float(tick) / top)
        lines.append((LEFT, WIDTH - RIGHT, f"{y:.1f}", f"{y:.1f}", LEFT - 6, f"{y + 4:.1f}", text))
    return format_html_join(
        "",
        '<line class="byok-chart-grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
        '<text class="byok-chart-axis" x="{}" y="{}" text-anchor="end">{}</text>',
        lines,
    )
