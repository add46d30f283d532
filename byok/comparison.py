"""Provider comparison: a user's own keys and the platform's key side by side, per
category, over a period; what the same tokens would have cost on the category's
other priced models; and tips computed from those figures.

Everything comes from the day rows :func:`byok.track_api_usage` keeps (usage, outcome
counters and latency buckets, :mod:`byok.measurement`): two queries, whatever the
number of days, keys and models. Nothing here reads or shows a credential; a key is
named by its nickname or its masked hint, as the dashboard shows it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from byok.measurement import (
    LATENCY_BOUNDS,
    MEASUREMENT_COLUMNS,
    NOTHING_MEASURED,
    Measured,
    Percentile,
)
from byok.models import KeyUsage, PlatformUsage
from byok.services.base import CATEGORIES
from byok.services.prices import Price, Tokens
from byok.services.registry import registry
from byok.usage import USAGE_COLUMNS

#: The periods one can compare over: the last 7, 30 or 90 days, or this month so far.
PERIODS = ("7", "30", "90", "month")
DEFAULT_PERIOD = "month"
THOUSAND, MILLION, HUNDRED = Decimal(1000), Decimal(1_000_000), Decimal(100)
#: Bucket resolution, as the pages state it.
BUCKET_BOUNDS = LATENCY_BOUNDS

# What a tip needs before it is shown.
#: The share of a category's spend on one model that makes it worth a tip ...
CONCENTRATION_SHARE = Decimal("0.5")
#: ... when another model would have cost at least this much less.
WORTHWHILE_SAVING = Decimal("0.2")
#: Measured calls a key (and the others together) needs for its error rate to count.
MIN_MEASURED_CALLS = 20
#: An error rate "far above" the others': this many points above, and at least twice.
ERROR_RATE_GAP = 0.10


@dataclass(frozen=True)
class Period:
    """The days compared: ``start`` to ``end`` (today), both included."""

    id: str
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @classmethod
    def named(cls, value: str | None, today: date | None = None) -> Period:
        """The period ``value`` names (one of :data:`PERIODS`); ``ValueError`` for
        anything else."""
        today = today or timezone.localdate()
        if value not in PERIODS:
            raise ValueError(f"period must be one of: {', '.join(PERIODS)}.")
        if value == "month":
            return cls(value, today.replace(day=1), today)
        return cls(value, today - timedelta(days=int(value) - 1), today)


@dataclass(frozen=True)
class Source:
    """One key's figures over the period: a user's or a team's key, or the platform's
    key for one service."""

    #: ``"user"``, ``"team"`` or ``"platform"``.
    kind: str
    service: str
    #: The key's id; ``None`` for the platform's key.
    key_id: str | None
    #: The nickname, else the masked hint; empty for the platform's key.
    label: str
    environment: str
    removed: bool
    calls: int
    units: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    unpriced_calls: int
    cost: Decimal
    measured: Measured

    @property
    def id(self) -> str:
        """Unique within a comparison (an HTML id, a row key)."""
        return self.key_id or f"platform-{self.service}-{self.environment}"

    @property
    def service_name(self) -> str:
        return service_name(self.service)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def cost_per_thousand_calls(self) -> Decimal | None:
        return self.cost / self.calls * THOUSAND if self.calls else None

    @property
    def cost_per_million_tokens(self) -> Decimal | None:
        return self.cost / self.tokens * MILLION if self.tokens else None

    @property
    def error_rate(self) -> float | None:
        return self.measured.error_rate()

    @property
    def rate_limit_rate(self) -> float | None:
        return self.measured.rate_limit_rate()

    @property
    def p50(self) -> Percentile | None:
        return self.measured.p50()

    @property
    def p95(self) -> Percentile | None:
        return self.measured.p95()


@dataclass(frozen=True)
class Alternative:
    """The volume of one model re-priced on another at list prices."""

    service: str
    model: str
    cost: Decimal
    #: ``cost`` minus what the volume costs on the model used, at list prices:
    #: negative is a saving.
    difference: Decimal
    #: When the figures were read (``None``: the host's ``BYOK["PRICES"]``, undated).
    as_of: date | None

    @property
    def service_name(self) -> str:
        return service_name(self.service)


@dataclass(frozen=True)
class Repricing:
    """One priced model's volume over the period, and what it would have cost on every
    other priced model of the category, the cheapest first."""

    service: str
    model: str
    calls: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    units: int
    #: What was recorded (the host may have passed its own costs).
    recorded_cost: Decimal
    #: The same volume at the model's list price: what the alternatives are set against.
    list_cost: Decimal
    as_of: date | None
    source: str
    alternatives: list[Alternative]

    @property
    def service_name(self) -> str:
        return service_name(self.service)

    @property
    def cheapest(self) -> Alternative | None:
        return self.alternatives[0] if self.alternatives else None


@dataclass(frozen=True)
class Tip:
    """A computed hint: ``kind`` (``concentration``, ``platform`` or ``error_rate``)
    and the figures it is based on, which its :attr:`message` names."""

    kind: str
    figures: Mapping[str, Any]

    @property
    def message(self) -> str:
        return tip_message(self)


@dataclass(frozen=True)
class CategoryComparison:
    category: str
    sources: list[Source]
    repricings: list[Repricing]
    tips: list[Tip]

    @property
    def label(self) -> str:
        return str(CATEGORIES.get(self.category, self.category))

    @property
    def calls(self) -> int:
        return sum(source.calls for source in self.sources)

    @property
    def cost(self) -> Decimal:
        return sum((source.cost for source in self.sources), Decimal(0))


@dataclass(frozen=True)
class Comparison:
    period: Period
    categories: list[CategoryComparison]
    #: The latency buckets' upper bounds in milliseconds (the percentiles' resolution).
    bucket_bounds: tuple[int, ...] = BUCKET_BOUNDS
    #: Each priced service's price table date, for the "list prices of" note.
    price_dates: dict[str, date | None] = field(default_factory=dict)


def service_name(service_id: str) -> str:
    """A service's name; its id for a service the site no longer has."""
    return registry.get(service_id).name if service_id in registry else service_id


def category_of(service_id: str) -> str:
    return registry.get(service_id).category if service_id in registry else "other"


def compare(user: Any, period: Period, *, category: str | None = None) -> Comparison:
    """``user``'s comparison over ``period``: only calls the user made (on their own
    keys, their teams' keys or the platform's), never anyone else's. Two queries."""
    rows = list(_usage_rows(user, period))
    by_category: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_category[category_of(row["service"])].append(row)
    order = [*CATEGORIES, *sorted(set(by_category) - set(CATEGORIES))]
    categories = [
        _category(name, by_category[name])
        for name in order
        if by_category.get(name) and (category is None or name == category)
    ]
    dates = {
        service.id: table.as_of
        for service in registry.all()
        if (table := service.price_table()) is not None and table.models
    }
    return Comparison(period, categories, price_dates=dates)


def _usage_rows(user: Any, period: Period) -> Iterable[dict[str, Any]]:
    """One row per (key, model) and per (platform service, environment, model)."""
    sums = {name: Sum(name) for name in (*USAGE_COLUMNS, *MEASUREMENT_COLUMNS)}
    window = {"date__gte": period.start, "date__lte": period.end}
    own = (
        # The calls the user made; on their own key, also those recorded without a caller.
        KeyUsage.objects.filter(Q(user=user) | Q(key__user=user, user__isnull=True), **window)
        .values(
            "key",
            "model",
            service=F("key__service"),
            nickname=F("key__nickname"),
            masked=F("key__masked_key"),
            environment=F("key__environment"),
            team=F("key__team"),
            deleted_at=F("key__deleted_at"),
        )
        .annotate(**sums)
        .order_by()
    )
    for row in own:
        yield {**row, "kind": "team" if row["team"] is not None else "user"}
    platform = (
        PlatformUsage.objects.filter(user=user, **window)
        .values("service", "environment", "model")
        .annotate(**sums)
        .order_by()
    )
    for platform_row in platform:
        yield {**platform_row, "kind": "platform", "key": None}


def _category(name: str, rows: list[dict[str, Any]]) -> CategoryComparison:
    sources = _sources(rows)
    repricings = _repricings(name, rows)
    return CategoryComparison(name, sources, repricings, _tips(sources, repricings))


def _sources(rows: list[dict[str, Any]]) -> list[Source]:
    grouped: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[(row["kind"], row["service"], row["key"], row["environment"])].append(row)
    sources = []
    for (kind, service, key, environment), group in grouped.items():
        first = group[0]
        totals = {name: sum((row[name] or 0) for row in group) for name in USAGE_COLUMNS}
        measured = sum((Measured.of(row) for row in group), NOTHING_MEASURED)
        label = "" if kind == "platform" else (first["nickname"] or first["masked"] or "")
        sources.append(
            Source(
                kind=kind,
                service=service,
                key_id=str(key) if key is not None else None,
                label=label,
                environment=environment,
                removed=kind != "platform" and first["deleted_at"] is not None,
                calls=totals["calls"],
                units=totals["units"],
                input_tokens=totals["input_tokens"],
                output_tokens=totals["output_tokens"],
                cached_input_tokens=totals["cached_input_tokens"],
                unpriced_calls=totals["unpriced_calls"],
                cost=Decimal(totals["cost"]),
                measured=measured,
            )
        )
    kinds = {"user": 0, "team": 1, "platform": 2}
    sources.sort(key=lambda s: (s.service_name.lower(), kinds[s.kind], s.label, s.id))
    return sources


def priced_models(category: str) -> list[tuple[str, str, Price, date | None]]:
    """Every priced model of the category's services: service, model, price, date."""
    found = []
    for service in registry.all():
        table = service.price_table()
        if service.category != category or table is None:
            continue
        for model in table.models:
            price = table.price(model)
            if price is not None:
                found.append((service.id, model, price, table.dated(model)[0]))
    return found


def same_kind(price: Price, other: Price) -> bool:
    """Whether ``other`` charges for the same kinds of volume as ``price`` (input,
    output, units): an embedding model (no output price) is no alternative to a chat
    model, nor a per-message price to a per-token one."""

    def kinds(p: Price) -> tuple[bool, bool, bool]:
        return (p.input > 0, p.output > 0, p.unit > 0)

    return kinds(price) == kinds(other)


def _repricings(category: str, rows: list[dict[str, Any]]) -> list[Repricing]:
    volumes: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        if not row["model"]:
            continue
        volume = volumes.setdefault(
            (row["service"], row["model"]), dict.fromkeys(USAGE_COLUMNS, 0)
        )
        for name in USAGE_COLUMNS:
            volume[name] += row[name] or 0
    candidates = priced_models(category)
    repricings = []
    for (service, model), volume in volumes.items():
        table = registry.get(service).price_table() if service in registry else None
        price = table.price(model) if table is not None else None
        tokens = Tokens(
            input=volume["input_tokens"],
            output=volume["output_tokens"],
            cached=volume["cached_input_tokens"],
            units=volume["units"],
        )
        if table is None or price is None or tokens == Tokens():
            continue
        list_cost = price.cost(tokens)
        alternatives = sorted(
            (
                Alternative(
                    other_service,
                    other_model,
                    cost := other.cost(tokens),
                    cost - list_cost,
                    as_of,
                )
                for other_service, other_model, other, as_of in candidates
                if (other_service, other_model) != (service, model)
                and other is not price  # an alias of the same model
                and same_kind(price, other)
            ),
            key=lambda a: (a.cost, a.service, a.model),
        )
        as_of, source = table.dated(model)
        repricings.append(
            Repricing(
                service=service,
                model=model,
                calls=volume["calls"],
                input_tokens=tokens.input,
                output_tokens=tokens.output,
                cached_input_tokens=tokens.cached,
                units=tokens.units,
                recorded_cost=Decimal(volume["cost"]),
                list_cost=list_cost,
                as_of=as_of,
                source=source,
                alternatives=alternatives,
            )
        )
    repricings.sort(key=lambda r: (-r.list_cost, r.service, r.model))
    return repricings


# -- Tips -----------------------------------------------------------------------------


def _tips(sources: list[Source], repricings: list[Repricing]) -> list[Tip]:
    return [
        *_concentration_tips(sources, repricings),
        *_platform_tips(sources),
        *_error_rate_tips(sources),
    ]


def _share(part: Decimal | int, whole: Decimal | int) -> Decimal:
    return (Decimal(part) / Decimal(whole) * HUNDRED).quantize(Decimal(1))


def _concentration_tips(sources: list[Source], repricings: list[Repricing]) -> list[Tip]:
    """Most of the category's spend on one model, and a priced model that would have
    cost markedly less for the same tokens."""
    total = sum((source.cost for source in sources), Decimal(0))
    if total <= 0 or not repricings:
        return []
    top = max(repricings, key=lambda r: r.recorded_cost)
    cheapest = top.cheapest
    if (
        top.recorded_cost < total * CONCENTRATION_SHARE
        or cheapest is None
        or top.list_cost <= 0
        or cheapest.cost > top.list_cost * (1 - WORTHWHILE_SAVING)
    ):
        return []
    return [
        Tip(
            "concentration",
            {
                "service": top.service,
                "model": top.model,
                "share_percent": _share(top.recorded_cost, total),
                "model_cost": top.recorded_cost,
                "category_cost": total,
                "input_tokens": top.input_tokens,
                "output_tokens": top.output_tokens,
                "list_cost": top.list_cost,
                "alternative_service": cheapest.service,
                "alternative_model": cheapest.model,
                "alternative_cost": cheapest.cost,
                "saving": -cheapest.difference,
                "as_of": cheapest.as_of,
            },
        )
    ]


def _platform_tips(sources: list[Source]) -> list[Tip]:
    """Per service, the calls the platform's key served, and what the user's own key
    for it (when they have one in the period) did meanwhile."""
    calls = sum(source.calls for source in sources)
    tips = []
    services = sorted({s.service for s in sources if s.kind == "platform" and s.calls})
    for service in services:
        platform = [s for s in sources if s.kind == "platform" and s.service == service]
        own = [s for s in sources if s.kind != "platform" and s.service == service]
        served = sum(s.calls for s in platform)
        measured = sum((s.measured for s in platform), NOTHING_MEASURED)
        figures: dict[str, Any] = {
            "service": service,
            "platform_calls": served,
            "category_calls": calls,
            "share_percent": _share(served, calls),
            "platform_cost": sum((s.cost for s in platform), Decimal(0)),
            "rate_limited": measured.rate_limited,
            "has_own_key": bool(own),
        }
        tips.append(Tip("platform", figures))
    return tips


def _error_rate_tips(sources: list[Source]) -> list[Tip]:
    """A key whose error rate is far above that of the category's other keys together."""
    tips = []
    for source in sources:
        others = sum((s.measured for s in sources if s is not source), NOTHING_MEASURED)
        rate, other_rate = source.error_rate, others.error_rate()
        if (
            rate is None
            or other_rate is None
            or source.measured.calls < MIN_MEASURED_CALLS
            or others.calls < MIN_MEASURED_CALLS
            or rate < other_rate + ERROR_RATE_GAP
            or rate < 2 * other_rate
        ):
            continue
        tips.append(
            Tip(
                "error_rate",
                {
                    "service": source.service,
                    "kind": source.kind,
                    "label": source.label,
                    "errors": source.measured.errors,
                    "calls": source.measured.calls,
                    "error_percent": _share(source.measured.errors, source.measured.calls),
                    "other_errors": others.errors,
                    "other_calls": others.calls,
                    "other_error_percent": _share(others.errors, others.calls),
                },
            )
        )
    return tips


# -- Wording --------------------------------------------------------------------------


def money(amount: Decimal) -> str:
    """US dollars, with cents, or four decimals below a dollar."""
    return f"${amount:,.2f}" if abs(amount) >= 1 else f"${amount:,.4f}"


def tip_message(tip: Tip) -> str:
    """The tip in words, every figure it rests on named."""
    f = tip.figures
    if tip.kind == "concentration":
        return _(
            "%(share)s%% of this period's spend in the category (%(cost)s of %(total)s) "
            "went to %(model)s. The same %(input)s input and %(output)s output tokens on "
            "%(alternative)s (%(alternative_service)s) would have cost %(alternative_cost)s "
            "instead of %(list_cost)s at list prices (as of %(as_of)s): %(saving)s less."
        ) % {
            "share": f["share_percent"],
            "cost": money(f["model_cost"]),
            "total": money(f["category_cost"]),
            "model": f["model"],
            "input": f"{f['input_tokens']:,}",
            "output": f"{f['output_tokens']:,}",
            "alternative": f["alternative_model"],
            "alternative_service": service_name(f["alternative_service"]),
            "alternative_cost": money(f["alternative_cost"]),
            "list_cost": money(f["list_cost"]),
            "as_of": f["as_of"].isoformat() if f["as_of"] else _("undated"),
            "saving": money(f["saving"]),
        }
    if tip.kind == "platform":
        values = {
            "calls": f"{f['platform_calls']:,}",
            "total": f"{f['category_calls']:,}",
            "share": f["share_percent"],
            "service": service_name(f["service"]),
            "cost": money(f["platform_cost"]),
            "limited": f"{f['rate_limited']:,}",
        }
        text = _(
            "%(calls)s of this period's %(total)s calls in the category (%(share)s%%) ran on "
            "the platform's %(service)s key, %(cost)s estimated."
        )
        if f["has_own_key"]:
            text += " " + _(
                "You have a %(service)s key of your own: check that it is active and the "
                "default for the environment these calls used."
            )
        else:
            text += " " + _(
                "With your own %(service)s key they would be billed to your %(service)s "
                "account at the same list prices, under your own rate limits."
            )
        if f["rate_limited"]:
            text += " " + _("%(limited)s of them were rate-limited (429) on the shared key.")
        return text % values
    if tip.kind == "error_rate":
        if f["kind"] == "platform":
            name = _("The platform's %(service)s key") % {"service": service_name(f["service"])}
        else:
            name = _("Your %(service)s key “%(name)s”") % {
                "service": service_name(f["service"]),
                "name": f["label"],
            }
        return _(
            "%(name)s failed %(errors)s of its %(calls)s measured calls (%(rate)s%%); the "
            "other keys in the category failed %(other_errors)s of %(other_calls)s "
            "(%(other_rate)s%%)."
        ) % {
            "service": service_name(f["service"]),
            "name": name,
            "errors": f"{f['errors']:,}",
            "calls": f"{f['calls']:,}",
            "rate": f["error_percent"],
            "other_errors": f"{f['other_errors']:,}",
            "other_calls": f"{f['other_calls']:,}",
            "other_rate": f["other_error_percent"],
        }
    raise ValueError(f"unknown tip kind {tip.kind!r}")
