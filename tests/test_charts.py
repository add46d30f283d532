from datetime import date, timedelta

from byok.charts import HEIGHT, BarChart, Series

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
    import re

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
