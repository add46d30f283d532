"""Bar charts drawn on the server as SVG: no JavaScript, no external library.

Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` (what a
screen reader announces), a ``<title>`` on every bar (a tooltip), and is meant to
sit next to a table with the same figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 30
Number = int | float | Decimal


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
    #: Formats a value for the axis and the tooltips.
    unit_format: str = "{:,.0f}"

    def total(self, index: int) -> Number:
        return sum((series.values[index] for series in self.series), start=0)

    def render(self) -> SafeString:
        peak = max((float(self.total(i)) for i in range(len(self.days))), default=0.0) or 1.0
        plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
        slot = plot_width / max(len(self.days), 1)
        bar = max(slot * 0.7, 1.0)
        rects = []
        for index, day in enumerate(self.days):
            x = LEFT + index * slot + (slot - bar) / 2
            bottom: float = TOP + plot_height
            for series in self.series:
                value = float(series.values[index])
                if not value:
                    continue
                height = plot_height * value / peak
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
        bars = format_html_join(
            "",
            '<rect class="{}" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
            rects,
        )
        ticks = format_html_join(
            "",
            '<line class="byok-chart-grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
            '<text class="byok-chart-axis" x="{}" y="{}" text-anchor="end">{}</text>',
            (
                (
                    LEFT,
                    WIDTH - RIGHT,
                    f"{y:.1f}",
                    f"{y:.1f}",
                    LEFT - 6,
                    f"{y + 4:.1f}",
                    self.unit_format.format(peak * share),
                )
                for share, y in ((share, TOP + plot_height * (1 - share)) for share in (0, 0.5, 1))
            ),
        )
        labels = format_html_join(
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
            ticks,
            bars,
            labels,
        )
