"""The comparison page's charts: one horizontal bar per key, drawn on the server as SVG
like the usage page's (:mod:`byok.charts`): no JavaScript, a ``<title>`` and a
``<desc>`` for screen readers, a tooltip on each bar, the same figures in a table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH = 640
LABEL_WIDTH = 200
RIGHT = 90
TOP = 8
BAR = 14
GAP = 4
ROW_GAP = 12


@dataclass(frozen=True)
class Bar:
    """One series' value for a row, and the text its tooltip and end label show
    (``None``: no figure, no bar)."""

    value: float | None
    text: str


@dataclass(frozen=True)
class Row:
    label: str
    bars: Sequence[Bar]


@dataclass(frozen=True)
class HorizontalBarChart:
    """Rows down the y axis; each row's series as bars side by side (one under the
    other), scaled to the largest value."""

    chart_id: str
    title: str
    description: str
    #: Series name and the CSS class that colours its bars.
    series: Sequence[tuple[str, str]]
    rows: Sequence[Row]

    @property
    def row_height(self) -> int:
        return len(self.series) * (BAR + GAP) - GAP + ROW_GAP

    @property
    def height(self) -> int:
        return TOP * 2 + max(len(self.rows), 1) * self.row_height

    def render(self) -> SafeString:
        peak = max(
            (bar.value for row in self.rows for bar in row.bars if bar.value is not None),
            default=0.0,
        )
        return format_html(
            '<svg class="byok-chart byok-hbar-chart" viewBox="0 0 {} {}" role="img" '
            'aria-labelledby="{}-title {}-desc" preserveAspectRatio="xMidYMid meet">'
            '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>{}</svg>',
            WIDTH,
            self.height,
            self.chart_id,
            self.chart_id,
            self.chart_id,
            self.title,
            self.chart_id,
            self.description,
            self._rows(peak or 1.0),
        )

    def _rows(self, peak: float) -> SafeString:
        plot = WIDTH - LABEL_WIDTH - RIGHT
        parts = []
        for index, row in enumerate(self.rows):
            top = TOP + index * self.row_height
            middle = top + (self.row_height - ROW_GAP) / 2 + 4
            parts.append(
                format_html(
                    '<text class="byok-chart-axis" x="{}" y="{}" text-anchor="end">{}</text>',
                    LABEL_WIDTH - 8,
                    f"{middle:.1f}",
                    _clip(row.label),
                )
            )
            for position, (bar, (name, css_class)) in enumerate(
                zip(row.bars, self.series, strict=True)
            ):
                y = top + position * (BAR + GAP)
                if bar.value is None:
                    width = 0.0
                else:
                    width = max(plot * bar.value / peak, 1.0 if bar.value else 0.0)
                parts.append(
                    format_html(
                        '<rect class="{}" x="{}" y="{}" width="{}" height="{}">'
                        "<title>{}: {} {}</title></rect>"
                        '<text class="byok-chart-axis" x="{}" y="{}">{}</text>',
                        css_class,
                        LABEL_WIDTH,
                        y,
                        f"{width:.1f}",
                        BAR,
                        row.label,
                        name,
                        bar.text,
                        f"{LABEL_WIDTH + width + 4:.1f}",
                        y + BAR - 3,
                        bar.text,
                    )
                )
        return format_html_join("", "{}", ((part,) for part in parts))


def _clip(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else f"{text[: limit - 1]}…"
