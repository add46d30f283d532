"""The comparison page: the user's keys and the platform's side by side, per category,
over a period (:mod:`byok.comparison`). Plain links switch the period and the
category, so it reads the same without JavaScript; a query parameter it does not
know falls back to the default."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from byok.comparison import (
    BUCKET_BOUNDS,
    DEFAULT_PERIOD,
    PERIODS,
    CategoryComparison,
    Period,
    Source,
    compare,
    money,
    service_name,
)
from byok.comparison_charts import Bar, HorizontalBarChart, Row
from byok.services.base import CATEGORIES
from byok.views import page

PERIOD_LABELS = {
    "7": gettext_lazy("7 days"),
    "30": gettext_lazy("30 days"),
    "90": gettext_lazy("90 days"),
    "month": gettext_lazy("This month"),
}


@login_required
@require_GET
def comparison(request: HttpRequest) -> HttpResponse:
    """One category's keys side by side, with tabs for the others that have usage."""
    try:
        period = Period.named(request.GET.get("period", DEFAULT_PERIOD))
    except ValueError:
        period = Period.named(DEFAULT_PERIOD)
    found = compare(request.user, period)
    shown = {category.category: category for category in found.categories}
    wanted = request.GET.get("category", "")
    current = shown.get(wanted) or (found.categories[0] if found.categories else None)
    return page(
        request,
        "byok/compare.html",
        {
            "comparison": found,
            "period": period,
            "periods": [(value, PERIOD_LABELS[value]) for value in PERIODS],
            "tabs": [
                (category.category, CATEGORIES.get(category.category, category.label))
                for category in found.categories
            ],
            "current": current,
            "panel": _panel(current) if current else None,
            "bucket_bounds": ", ".join(f"{bound:,}" for bound in BUCKET_BOUNDS),
            "last_bound": f"{BUCKET_BOUNDS[-1]:,}",
            "price_dates": sorted(
                (service_name(service), as_of)
                for service, as_of in found.price_dates.items()
                if as_of
            ),
        },
    )


def source_name(source: Source) -> str:
    """How a key is named on the page: never its secret."""
    if source.kind == "platform":
        return _("Platform key (%(service)s)") % {"service": source.service_name}
    if source.kind == "team":
        return _("%(label)s (%(service)s, team key)") % {
            "label": source.label,
            "service": source.service_name,
        }
    return _("%(label)s (%(service)s)") % {"label": source.label, "service": source.service_name}


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _panel(category: CategoryComparison) -> dict[str, Any]:
    names = {source.id: source_name(source) for source in category.sources}
    rows = [
        {
            "source": source,
            "name": names[source.id],
            "calls": f"{source.calls:,}",
            "measured": f"{source.measured.calls:,}",
            "error_rate": percent(source.error_rate),
            "rate_limit_rate": percent(source.rate_limit_rate),
            "p50": str(source.p50) if source.p50 else "—",
            "p95": str(source.p95) if source.p95 else "—",
            "per_thousand": _money_or_dash(source.cost_per_thousand_calls),
            "per_million": _money_or_dash(source.cost_per_million_tokens),
        }
        for source in category.sources
    ]
    label = category.label
    latency = HorizontalBarChart(
        f"byok-latency-{category.category}",
        _("%(category)s: latency, p50 and p95") % {"category": label},
        _(
            "The bucket each key's median and 95th-percentile latency falls in, in "
            "milliseconds; slower than %(bound)s ms is drawn at the last bound."
        )
        % {"bound": f"{BUCKET_BOUNDS[-1]:,}"},
        [(_("p50"), "byok-bar-user"), (_("p95"), "byok-bar-platform")],
        [
            Row(
                names[source.id],
                [
                    Bar(float(p.sort_key) if p else None, str(p) if p else "—")
                    for p in (source.p50, source.p95)
                ],
            )
            for source in category.sources
        ],
    )
    errors = HorizontalBarChart(
        f"byok-errors-{category.category}",
        _("%(category)s: error and rate-limit rates") % {"category": label},
        _(
            "The share of each key's measured calls that failed (4xx but 429, 5xx, "
            "timeouts, no answer) and that were rate-limited (429)."
        ),
        [(_("errors"), "byok-bar-user"), (_("rate-limited"), "byok-bar-platform")],
        [
            Row(
                names[source.id],
                [
                    Bar(rate * 100 if rate is not None else None, percent(rate))
                    for rate in (source.error_rate, source.rate_limit_rate)
                ],
            )
            for source in category.sources
        ],
    )
    cost = HorizontalBarChart(
        f"byok-cost-{category.category}",
        _("%(category)s: estimated cost per 1,000 calls") % {"category": label},
        _("Each key's estimated cost over the period, divided by its calls, times 1,000."),
        [(_("cost per 1,000 calls"), "byok-bar-user")],
        [
            Row(
                names[source.id],
                [
                    Bar(
                        float(source.cost_per_thousand_calls)
                        if source.cost_per_thousand_calls is not None
                        else None,
                        _money_or_dash(source.cost_per_thousand_calls),
                    )
                ],
            )
            for source in category.sources
        ],
    )
    return {
        "rows": rows,
        "charts": [
            {"svg": chart.render(), "title": chart.title, "series": chart.series}
            for chart in (latency, errors, cost)
        ],
        "measured": any(source.measured.calls for source in category.sources),
        "repricings": [
            {
                "repricing": repricing,
                "list_cost": money(repricing.list_cost),
                "calls": f"{repricing.calls:,}",
                "input_tokens": f"{repricing.input_tokens:,}",
                "output_tokens": f"{repricing.output_tokens:,}",
                "recorded_cost": money(repricing.recorded_cost),
                "alternatives": [
                    {
                        "alternative": alternative,
                        "cost": money(alternative.cost),
                        "difference": money(abs(alternative.difference)),
                        "saving": alternative.difference < 0,
                        "same": alternative.difference == 0,
                    }
                    for alternative in repricing.alternatives
                ],
            }
            for repricing in category.repricings
        ],
    }


def _money_or_dash(amount: Decimal | None) -> str:
    return "—" if amount is None else money(amount)
