"""Per-model prices: the declared tables, the host's overrides, and usage kept per
model per day, priced from them."""

from datetime import date
from decimal import Decimal

import pytest
from django.conf import settings
from django.test import override_settings

import byok
from byok import checks
from byok.models import KeyUsage, PlatformUsage
from byok.services import registry
from byok.services.prices import Price, Tokens

from factories import UserAPIKeyFactory

pytestmark = pytest.mark.django_db


def prices(**entries):
    return override_settings(BYOK={**settings.BYOK, "PRICES": entries})


@pytest.mark.parametrize("service", ["openai", "anthropic"])
def test_the_shipped_tables_are_dated_sourced_and_positive(service):
    table = registry.get(service).price_table()
    assert table.as_of >= date(2026, 1, 1)
    assert table.source.startswith("https://")
    assert len(table.models) >= 8
    for model, price in table.models.items():
        assert price.input > 0, model
        assert price.output >= 0, model
        as_of, source = table.dated(model)
        assert as_of is not None
        assert source == table.source


def test_a_chat_call_costs_its_uncached_cached_and_output_tokens(user):
    UserAPIKeyFactory(user=user)
    cost = byok.track_api_usage(
        user, "openai", model="gpt-4o", input_tokens=1_000, cached_input_tokens=200,
        output_tokens=500,
    )  # fmt: skip
    # 800 x $2.50 + 200 x $1.25 + 500 x $10.00, per million
    assert cost == Decimal("0.00725")
    day = KeyUsage.objects.get()
    assert (day.model, day.input_tokens, day.cached_input_tokens, day.output_tokens) == (
        "gpt-4o", 1_000, 200, 500,
    )  # fmt: skip
    assert (day.cost, day.unpriced_calls) == (Decimal("0.00725"), 0)
    assert day.key.estimated_cost == Decimal("0.00725")


def test_anthropic_prices_cache_reads_and_writes(user):
    UserAPIKeyFactory(user=user, service="anthropic")
    cost = byok.track_api_usage(
        user, "anthropic", model="claude-sonnet-4-5-20250929", input_tokens=10_000,
        cached_input_tokens=4_000, cache_write_tokens=2_000, output_tokens=1_000,
    )  # fmt: skip
    # 4,000 x $3 + 4,000 x $0.30 + 2,000 x $3.75 + 1,000 x $15, per million
    assert cost == Decimal("0.0357")


def test_tokens_a_call_does_not_mention_cost_nothing(user):
    UserAPIKeyFactory(user=user, service="anthropic")
    cost = byok.track_api_usage(
        user, "anthropic", model="claude-sonnet-4-5-20250929", input_tokens=1_000
    )
    assert cost == Decimal("0.003")  # 1,000 x $3 per million: no cache reads or writes


def test_usage_is_kept_per_model_per_day(user):
    UserAPIKeyFactory(user=user)
    for model, tokens in [("gpt-4o", 100), ("gpt-4o-mini", 200), ("gpt-4o", 300)]:
        byok.track_api_usage(user, "openai", model=model, input_tokens=tokens)
    rows = {row.model: (row.calls, row.input_tokens) for row in KeyUsage.objects.all()}
    assert rows == {"gpt-4o": (2, 400), "gpt-4o-mini": (1, 200)}


def test_a_dated_snapshot_is_priced_as_its_model(user):
    UserAPIKeyFactory(user=user)
    dated = byok.track_api_usage(user, "openai", model="gpt-4o-2024-08-06", input_tokens=10**6)
    plain = byok.track_api_usage(user, "openai", model="gpt-4o", input_tokens=10**6)
    assert dated == plain == Decimal("2.50")


def test_an_unpriced_model_costs_the_per_call_estimate_and_says_so(user, platform_key):
    cost = byok.track_api_usage(user, "openai", model="gpt-from-the-future", calls=3)
    assert cost == 3 * registry.get("openai").default_cost_per_call
    day = PlatformUsage.objects.get()
    assert (day.model, day.calls, day.unpriced_calls) == ("gpt-from-the-future", 3, 3)


def test_an_explicit_cost_wins_and_is_not_unpriced(user):
    UserAPIKeyFactory(user=user)
    assert byok.track_api_usage(user, "openai", model="unknown-model", cost="0.5") == Decimal(
        "0.5"
    )
    assert KeyUsage.objects.get().unpriced_calls == 0


def test_the_host_overrides_and_extends_prices(user):
    UserAPIKeyFactory(user=user)
    with prices(openai={"gpt-4o": {"input": "1", "output": "2"}, "house-model": {"input": 3}}):
        assert byok.track_api_usage(user, "openai", model="gpt-4o", input_tokens=10**6) == 1
        assert byok.track_api_usage(user, "openai", model="house-model", input_tokens=10**6) == 3
        table = registry.get("openai").price_table()
        assert table.dated("house-model")[1] == "BYOK['PRICES']"
        assert table.dated("gpt-4o-mini")[1] == "https://openai.com/api/pricing"


def test_a_service_without_a_table_can_be_priced_by_the_host(user):
    UserAPIKeyFactory(user=user, service="twilio")
    with prices(twilio={"sms": {"unit": "0.0083"}}):
        cost = byok.track_api_usage(user, "twilio", model="sms", units=10)
    assert cost == Decimal("0.083")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input_tokens": -1},
        {"output_tokens": 1.5},
        {"cached_input_tokens": True},
        {"model": "x" * 101},
        {"model": "bad\nname"},
        {"model": 42},
    ],
)
def test_bad_measurements_are_refused(user, kwargs):
    UserAPIKeyFactory(user=user)
    with pytest.raises(ValueError, match="must"):
        byok.track_api_usage(user, "openai", **kwargs)
    assert not KeyUsage.objects.exists()


def test_cached_tokens_never_count_twice():
    price = Price(Decimal(2), Decimal(0), cached_input=Decimal(1), cache_write=Decimal(4))
    # more cached (and written) tokens reported than input: capped at the input
    assert price.cost(Tokens(input=10, cached=30, cache_write=5)) == Decimal("0.00001")


@pytest.mark.parametrize(
    "value",
    [
        {"nope": {"m": {"input": "1"}}},
        {"openai": ["gpt-4o"]},
        {"openai": {"m": {"input": "cheap"}}},
        {"openai": {"m": {"input": "-1"}}},
        {"openai": {"m": {"per_call": "1"}}},
        {"openai": {"m": 3}},
    ],
)
def test_e017_bad_prices(value):
    with override_settings(BYOK={**settings.BYOK, "PRICES": value}):
        found = [m.id for m in checks.check_settings()]
    assert found in (["byok.E017"], ["byok.E005"])


@pytest.fixture
def platform_key():
    with override_settings(
        BYOK={
            **settings.BYOK,
            "PLATFORM_KEYS": {"openai": "sk-proj-" + "p" * 20 + "T3BlbkFJ" + "q" * 20},
        }
    ):
        yield
