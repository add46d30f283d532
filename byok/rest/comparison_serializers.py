"""What ``comparison/`` answers: :func:`byok.comparison.compare`'s figures as JSON."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from byok.comparison import PERIODS, Source, Tip
from byok.measurement import OUTCOME_COLUMNS, Percentile
from byok.rest.schema import OpenApiTypes, extend_schema_field
from byok.rest.serializers import NamedChoiceField
from byok.services.base import CATEGORIES


def money(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=20, decimal_places=6, **kwargs)


class ComparisonQuerySerializer(serializers.Serializer[Any]):
    period = NamedChoiceField(
        enum_name="ComparisonPeriod",
        choices=list(PERIODS),
        default="month",
        help_text=_("The last 7, 30 or 90 days, or this month so far."),
    )
    category = NamedChoiceField(
        enum_name="ComparisonCategory",
        choices=list(CATEGORIES),
        required=False,
        help_text=_("Only this category (all by default)."),
    )


class PeriodSerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    start = serializers.DateField()
    end = serializers.DateField()
    days = serializers.IntegerField()


class PercentileSerializer(serializers.Serializer[Any]):
    above_ms = serializers.IntegerField()
    at_most_ms = serializers.IntegerField(
        allow_null=True, help_text=_("Null in the open bucket past the last bound.")
    )
    text = serializers.SerializerMethodField()

    def get_text(self, value: Percentile) -> str:
        return str(value)


class OutcomesSerializer(serializers.Serializer[Any]):
    ok = serializers.IntegerField()
    client_error = serializers.IntegerField(help_text=_("4xx answers other than 429."))
    rate_limited = serializers.IntegerField(help_text=_("429 answers."))
    server_error = serializers.IntegerField(help_text=_("5xx answers."))
    timeout = serializers.IntegerField()
    other_error = serializers.IntegerField(
        help_text=_("No answer (a connection error), or an answer neither 2xx, 4xx nor 5xx.")
    )


#: Outcome value → the field above.
OUTCOME_FIELDS = dict(
    zip(
        OUTCOME_COLUMNS,
        ("ok", "client_error", "rate_limited", "server_error", "timeout", "other_error"),
        strict=True,
    )
)


class SourceSerializer(serializers.Serializer[Any]):
    kind = NamedChoiceField(choices=["user", "team", "platform"], enum_name="ComparisonSource")
    service = serializers.CharField()
    service_name = serializers.CharField()
    key_id = serializers.CharField(allow_null=True, help_text=_("Null for the platform's key."))
    label = serializers.CharField(  # type: ignore[assignment]
        allow_blank=True, help_text=_("The key's nickname, else its masked hint.")
    )
    environment = serializers.CharField()
    removed = serializers.BooleanField()
    calls = serializers.IntegerField()
    units = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cached_input_tokens = serializers.IntegerField()
    unpriced_calls = serializers.IntegerField()
    cost = money()
    cost_per_thousand_calls = money(allow_null=True)
    cost_per_million_tokens = money(allow_null=True)
    measured_calls = serializers.IntegerField(source="measured.calls")
    outcomes = serializers.SerializerMethodField()
    error_rate = serializers.FloatField(
        allow_null=True, help_text=_("4xx (but 429), 5xx, timeouts and other errors.")
    )
    rate_limit_rate = serializers.FloatField(allow_null=True)
    latency_buckets = serializers.ListField(
        child=serializers.IntegerField(),
        source="measured.buckets",
        help_text=_("Calls per latency bucket, fastest first (see bucket_bounds_ms)."),
    )
    p50 = PercentileSerializer(allow_null=True)
    p95 = PercentileSerializer(allow_null=True)

    @extend_schema_field(OutcomesSerializer)
    def get_outcomes(self, source: Source) -> dict[str, int]:
        return {OUTCOME_FIELDS[name]: n for name, n in source.measured.outcomes.items()}


class AlternativeSerializer(serializers.Serializer[Any]):
    service = serializers.CharField()
    service_name = serializers.CharField()
    model = serializers.CharField()
    cost = money()
    difference = money(
        help_text=_("Against the model used, at list prices: negative is a saving.")
    )
    as_of = serializers.DateField(allow_null=True)


class RepricingSerializer(serializers.Serializer[Any]):
    service = serializers.CharField()
    service_name = serializers.CharField()
    model = serializers.CharField()
    calls = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cached_input_tokens = serializers.IntegerField()
    units = serializers.IntegerField()
    recorded_cost = money()
    list_cost = money()
    as_of = serializers.DateField(allow_null=True)
    price_source = serializers.CharField(source="source")
    alternatives = AlternativeSerializer(many=True)


class TipSerializer(serializers.Serializer[Any]):
    kind = NamedChoiceField(
        choices=["concentration", "platform", "error_rate"], enum_name="ComparisonTip"
    )
    message = serializers.CharField()
    figures = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_figures(self, tip: Tip) -> dict[str, Any]:
        return {name: _plain(value) for name, value in tip.figures.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, date):
        return value.isoformat()
    return value


class CategorySerializer(serializers.Serializer[Any]):
    category = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    calls = serializers.IntegerField()
    cost = money()
    sources = SourceSerializer(many=True)
    repricings = RepricingSerializer(many=True)
    tips = TipSerializer(many=True)


class ComparisonSerializer(serializers.Serializer[Any]):
    period = PeriodSerializer()
    bucket_bounds_ms = serializers.ListField(
        child=serializers.IntegerField(),
        source="bucket_bounds",
        help_text=_("Upper bounds of the latency buckets; one more holds the slower calls."),
    )
    price_dates = serializers.DictField(
        child=serializers.DateField(allow_null=True),
        help_text=_("Each priced service's price table date: the estimates' list prices."),
    )
    categories = CategorySerializer(many=True)
