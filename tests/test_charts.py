import re
from datetime import date, timedelta
from decimal import Decimal

import pytest

from byok.charts import HEIGHT, BarChart, Series, axis_ticks, tick_labels

DAYS = [date(2026, 11, 1) + timedelta(days=offset) for offset in range(4)]


def chart(user, platform, **kwargs):
    return BarChart(
        "c",
        kwargs.pop("title", "Calls"),
        "Calls per day",
        DAYS,
        [
            Series("your keys", "byok-bar-user", user),
            Series("platform", "byok-bar-platform", platform),
        ],
        **kwargs,
    ).render()


def heights(svg, css_class):
    return [float(h) for h in re.findall(rf'class="{css_class}"[^>]*height="([\d.]+)"', svg)]


def test_bars_are_stacked_and_proportional():
    svg = chart([10, 0, 5, 0], [10, 0, 0, 20])
    assert heights(svg, "byok-bar-user") == [89.0, 44.5]
    assert heights(svg, "byok-bar-platform") == [89.0, 178.0]


def test_it_is_accessible():
    svg = chart([1, 2, 3, 4], [0, 0, 0, 0])
    assert 'role="img"' in svg
    assert 'aria-labelledby="c-title c-desc"' in svg
    assert '<title id="c-title">Calls</title>' in svg
    assert "<title>2026-11-02: your keys 2</title>" in svg
    assert svg.count("<rect") == 4


def test_text_is_escaped():
    svg = chart([1, 0, 0, 0], [0, 0, 0, 0], title='<script>alert("x")</script>')
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg


def test_no_usage_draws_an_empty_chart():
    svg = chart([0, 0, 0, 0], [0, 0, 0, 0])
    assert "<rect" not in svg
    assert f'viewBox="0 0 640 {HEIGHT}"' in svg


def test_costs_use_their_own_format():
    svg = chart([0.0021, 0, 0, 0], [0, 0, 0, 0], unit_format="{:,.4f}")
    assert "your keys 0.0021" in svg


# The y axis ---------------------------------------------------------------------------

AXIS_LABEL = re.compile(r'<text class="byok-chart-axis"[^>]*text-anchor="end">([^<]*)</text>')
GRIDLINE = re.compile(r'<line class="byok-chart-grid"[^>]*y1="([\d.]+)"')


def axis(values, **kwargs):
    """The y axis' labels of a chart whose one series has these values."""
    svg = BarChart("c", "t", "d", DAYS[: len(values)], [Series("s", "x", values)], **kwargs)
    return AXIS_LABEL.findall(svg.render())


@pytest.mark.parametrize(
    ("peak", "labels"),
    [
        (0, ["0", "1"]),
        (1, ["0", "1"]),
        (2, ["0", "1", "2"]),
        (3, ["0", "1", "2", "3"]),
        (7, ["0", "2", "4", "6", "8"]),
        (10, ["0", "5", "10"]),
        (999, ["0", "250", "500", "750", "1,000"]),
    ],
)
def test_calls_get_whole_distinct_ticks(peak, labels):
    assert axis([peak, 0]) == labels


@pytest.mark.parametrize(
    ("peak", "labels"),
    [
        (Decimal("0.0004"), ["0.0000", "0.0001", "0.0002", "0.0003", "0.0004"]),
        (Decimal("0.0123"), ["0.000", "0.005", "0.010", "0.015"]),
        (Decimal("1.5"), ["0.0", "0.5", "1.0", "1.5"]),
        (Decimal("0.0021"), ["0.000", "0.001", "0.002", "0.003"]),
    ],
)
def test_costs_get_round_ticks_that_read_differently(peak, labels):
    assert axis([peak, Decimal(0)], unit_format="{:,.4f}", whole_numbers=False) == labels


def test_every_peak_gets_a_tight_round_scale():
    for peak in range(1, 3000):
        ticks = axis_ticks(peak)
        step = ticks[1]
        assert ticks == [step * i for i in range(len(ticks))]
        assert step == int(step)
        assert step / 10 ** (len(str(int(step))) - 1) in (1, 2, 2.5, 5)
        assert 2 <= len(ticks) <= 5
        assert ticks[-2] < peak <= ticks[-1]  # no whole interval left empty
        assert len(set(tick_labels(ticks))) == len(ticks)


def test_every_cost_gets_distinct_labels():
    for cents in range(1, 20_000, 7):
        peak = Decimal(cents) / 10_000
        ticks = axis_ticks(peak, whole_numbers=False)
        assert ticks[-2] < peak <= ticks[-1]
        labels = tick_labels(ticks)
        assert len(set(labels)) == len(labels)
        assert [Decimal(label) for label in labels] == ticks


def test_bars_and_gridlines_share_the_scale():
    """A bar as tall as a tick's value reaches that tick's gridline."""
    svg = BarChart("c", "t", "d", DAYS[:2], [Series("s", "x", [7, 4])]).render()
    bottom = max(float(y) for y in GRIDLINE.findall(svg))
    lines = dict(zip(AXIS_LABEL.findall(svg), map(float, GRIDLINE.findall(svg)), strict=True))
    tops = [float(y) for y in re.findall(r'class="x"[^>]*y="([\d.]+)"', svg)]
    assert tops[1] == lines["4"]
    assert tops[0] == pytest.approx(bottom - (bottom - lines["8"]) * 7 / 8, abs=0.1)
