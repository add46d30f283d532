"""byok.comparison: the user's keys side by side, re-pricing on other models, and tips,
from the day rows alone, in two queries, and only ever the user's own calls."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from byok.comparison import (
    DEFAULT_PERIOD,
    PERIODS,
    Period,
    compare,
    money,
    same_kind,
)
from byok.measurement import Percentile
from byok.models import TeamRole
from byok.services.prices import per_million

from factories import (
    KeyUsageFactory,
    PlatformUsageFactory,
    TeamAPIKeyFactory,
    TeamFactory,
    UserAPIKeyFactory,
)

pytestmark = pytest.mark.django_db


def month():
    return Period.named("month")


def seed(user):
    """A month of AI calls: 100 on the user's key (gpt-4o), 50 on the platform's
    (gpt-4o-mini); and 10 e-mails on the user's Resend key."""
    key = UserAPIKeyFactory(user=user, service="openai", nickname="main")
    KeyUsageFactory(
        key=key,
        model="gpt-4o",
        calls=100,
        input_tokens=1_000_000,
        output_tokens=100_000,
        cost=Decimal("3.5"),
        ok_calls=90,
        client_errors=5,
        rate_limited=3,
        server_errors=2,
        latency_le_250=50,
        latency_le_500=45,
        latency_gt_10000=5,
    )
    PlatformUsageFactory(
        user=user,
        model="gpt-4o-mini",
        calls=50,
        input_tokens=1_000_000,
        output_tokens=100_000,
        cost=Decimal("0.21"),
        ok_calls=50,
        latency_le_100=50,
    )
    mail = UserAPIKeyFactory(user=user, service="resend")
    KeyUsageFactory(key=mail, calls=10, cost=Decimal("0.01"), ok_calls=10, latency_le_50=10)
    return key


def ai(comparison):
    [category] = [c for c in comparison.categories if c.category == "ai"]
    return category


# -- Periods ----------------------------------------------------------------------------


def test_periods_end_today_and_this_month_starts_on_the_first():
    today = date(2026, 3, 15)
    assert Period.named("7", today) == Period("7", date(2026, 3, 9), today)
    assert Period.named("90", today).days == 90
    assert Period.named("month", today) == Period("month", date(2026, 3, 1), today)
    assert DEFAULT_PERIOD in PERIODS


@pytest.mark.parametrize("value", [None, "", "0", "8", "-7", "month ", "365", "7.0"])
def test_an_unknown_period_is_refused(value):
    with pytest.raises(ValueError, match="period must be one of"):
        Period.named(value)


def test_only_the_periods_days_count(user):
    key = UserAPIKeyFactory(user=user)
    today = timezone.localdate()
    KeyUsageFactory(key=key, date=today, calls=1)
    KeyUsageFactory(key=key, date=today - timedelta(days=10), calls=10)
    KeyUsageFactory(key=key, date=today - timedelta(days=100), calls=100)
    assert ai(compare(user, Period.named("7"))).calls == 1
    assert ai(compare(user, Period.named("30"))).calls == 11
    assert ai(compare(user, Period.named("90"))).calls == 11


# -- Figures ----------------------------------------------------------------------------


def test_each_key_has_its_calls_rates_latency_and_unit_costs(user):
    key = seed(user)
    comparison = compare(user, month())
    assert [c.category for c in comparison.categories] == ["ai", "email"]
    mine, platform = ai(comparison).sources
    assert (mine.kind, mine.key_id, mine.label, mine.service_name) == (
        "user",
        str(key.pk),
        "main",
        "OpenAI",
    )
    assert (mine.calls, mine.measured.calls) == (100, 100)
    assert mine.error_rate == pytest.approx(0.07)  # 5 4xx and 2 5xx; the 429s apart
    assert mine.rate_limit_rate == pytest.approx(0.03)
    assert mine.p50 == Percentile(100, 250)
    assert mine.p95 == Percentile(250, 500)
    assert mine.cost_per_thousand_calls == Decimal(35)
    assert mine.cost_per_million_tokens.quantize(Decimal("0.0001")) == Decimal("3.1818")
    assert (platform.kind, platform.label, platform.key_id) == ("platform", "", None)
    assert (platform.p50, platform.p95) == (Percentile(50, 100), Percentile(50, 100))
    assert platform.error_rate == 0
    assert ai(comparison).cost == Decimal("3.71")


def test_a_key_without_measurements_has_no_rates_nor_percentiles(user):
    KeyUsageFactory(key=UserAPIKeyFactory(user=user), calls=3)
    [source] = ai(compare(user, month())).sources
    assert (source.calls, source.error_rate, source.p50, source.p95) == (3, None, None, None)
    assert source.cost_per_million_tokens is None
    assert source.cost_per_thousand_calls == 0


def test_a_removed_key_keeps_its_figures_and_says_so(user):
    from byok.keys import remove_user_api_key

    key = UserAPIKeyFactory(user=user)
    KeyUsageFactory(key=key, calls=4)
    remove_user_api_key(key)
    [source] = ai(compare(user, month())).sources
    assert (source.calls, source.removed) == (4, True)
    assert source.label == key.masked_key


def test_one_category_alone(user):
    seed(user)
    comparison = compare(user, month(), category="email")
    assert [c.category for c in comparison.categories] == ["email"]


def test_nothing_to_compare_without_usage(user):
    assert compare(user, month()).categories == []


# -- Only the user's own calls ------------------------------------------------------------


def test_another_users_usage_never_appears(user, other_user):
    seed(other_user)
    theirs = UserAPIKeyFactory(user=other_user, service="anthropic", nickname="theirs")
    KeyUsageFactory(key=theirs, calls=7)
    assert compare(user, month()).categories == []
    seed(user)
    sources = ai(compare(user, month())).sources
    assert [s.calls for s in sources] == [100, 50]
    assert "theirs" not in {s.label for s in sources}


def test_a_team_keys_usage_counts_only_the_users_own_calls(user, other_user):
    team = TeamFactory(owner=user)
    team.add_member(other_user, TeamRole.MEMBER)
    key = TeamAPIKeyFactory(team=team, actor=user, nickname="shared")
    KeyUsageFactory(key=key, user=user, calls=3)
    KeyUsageFactory(key=key, user=other_user, calls=30)
    [source] = ai(compare(user, month())).sources
    assert (source.kind, source.label, source.calls) == ("team", "shared", 3)
    [source] = ai(compare(other_user, month())).sources
    assert source.calls == 30


# -- Re-pricing -------------------------------------------------------------------------------


def test_a_priced_models_tokens_are_repriced_on_every_other_priced_model(user):
    seed(user)
    first, second = ai(compare(user, month())).repricings
    assert (first.service, first.model, first.calls) == ("openai", "gpt-4o", 100)
    # 1M input at $2.50 and 100k output at $10, per million.
    assert first.list_cost == Decimal("3.5")
    assert first.recorded_cost == Decimal("3.5")
    assert first.as_of == date(2025, 10, 1)  # gpt-4o's figures are older than the table's
    names = [(a.service, a.model) for a in first.alternatives]
    assert ("openai", "gpt-4o") not in names
    assert ("anthropic", "claude-haiku-4-5") in names
    # No embedding model: it could not have written the output.
    assert not any("embedding" in model for _, model in names)
    costs = [a.cost for a in first.alternatives]
    assert costs == sorted(costs)
    cheapest = first.cheapest
    assert (cheapest.model, cheapest.cost) == ("gpt-5-nano", Decimal("0.09"))
    assert cheapest.difference == Decimal("-3.41")
    haiku = next(a for a in first.alternatives if a.model == "claude-haiku-4-5")
    assert haiku.cost == Decimal("1.5")  # $1 input, $5 output per million
    assert haiku.difference == Decimal("-2.0")
    assert second.model == "gpt-4o-mini"


def test_calls_without_a_model_or_of_an_unpriced_model_are_not_repriced(user):
    key = UserAPIKeyFactory(user=user)
    KeyUsageFactory(key=key, model="", calls=5, input_tokens=10)
    KeyUsageFactory(key=key, model="my-fine-tune", calls=5, input_tokens=10, unpriced_calls=5)
    KeyUsageFactory(key=key, model="gpt-4o", calls=5)  # no tokens: nothing to re-price
    assert ai(compare(user, month())).repricings == []


def test_a_snapshot_is_repriced_like_its_model_and_not_against_itself(user):
    key = UserAPIKeyFactory(user=user)
    KeyUsageFactory(key=key, model="gpt-4o-2024-08-06", calls=1, input_tokens=1_000_000)
    [repricing] = ai(compare(user, month())).repricings
    assert repricing.list_cost == Decimal("2.5")
    assert "gpt-4o" not in [a.model for a in repricing.alternatives]


def test_the_hosts_prices_are_used(user, settings):
    settings.BYOK = {
        **settings.BYOK,
        "PRICES": {"openai": {"house-model": {"input": "0.01", "output": "0.01"}}},
    }
    key = UserAPIKeyFactory(user=user)
    KeyUsageFactory(key=key, model="gpt-4o", calls=1, input_tokens=1_000_000)
    [repricing] = ai(compare(user, month())).repricings
    assert (repricing.cheapest.model, repricing.cheapest.cost) == ("house-model", Decimal("0.01"))


def test_only_a_model_priced_for_the_same_kinds_of_volume_is_an_alternative():
    embedding, chat = per_million("0.02"), per_million("0.05", "0.40")
    assert same_kind(embedding, per_million("0.13"))
    assert not same_kind(embedding, chat)
    assert not same_kind(chat, embedding)


def test_an_embedding_model_is_repriced_on_embedding_models_only(user):
    key = UserAPIKeyFactory(user=user)
    KeyUsageFactory(key=key, model="text-embedding-3-large", calls=1, input_tokens=10**6)
    [repricing] = ai(compare(user, month())).repricings
    assert [a.model for a in repricing.alternatives] == ["text-embedding-3-small"]


# -- Tips ---------------------------------------------------------------------------------


def tips(user, kind):
    return [tip for tip in ai(compare(user, month())).tips if tip.kind == kind]


def test_most_spend_on_one_model_names_a_cheaper_one_and_its_figures(user):
    seed(user)
    [tip] = tips(user, "concentration")
    assert tip.figures["model"] == "gpt-4o"
    assert tip.figures["share_percent"] == Decimal(94)
    assert tip.figures["alternative_model"] == "gpt-5-nano"
    assert tip.figures["saving"] == Decimal("3.41")
    message = tip.message
    for figure in ("94%", "gpt-4o", "$3.50", "$3.71", "1,000,000", "100,000", "gpt-5-nano"):
        assert figure in message
    assert "$0.0900" in message
    assert "$3.41" in message


def test_no_concentration_tip_when_the_spend_is_spread_or_no_cheaper_model(user):
    key = UserAPIKeyFactory(user=user)
    KeyUsageFactory(
        key=key, model="gpt-5-nano", calls=1, input_tokens=10**6, output_tokens=10, cost="0.05"
    )
    assert tips(user, "concentration") == []  # already among the cheapest
    KeyUsageFactory(key=key, model="", calls=1, cost="10")
    assert tips(user, "concentration") == []


def test_calls_on_the_platforms_key_make_a_tip_with_their_share_and_cost(user):
    seed(user)
    [tip] = tips(user, "platform")
    assert tip.figures["platform_calls"] == 50
    assert tip.figures["category_calls"] == 150
    assert tip.figures["share_percent"] == Decimal(33)
    assert tip.figures["has_own_key"] is True
    assert "50 of this period's 150 calls" in tip.message
    assert "$0.2100" in tip.message


def test_the_platform_tip_counts_its_rate_limited_calls(user):
    PlatformUsageFactory(user=user, calls=40, ok_calls=30, rate_limited=10)
    [tip] = tips(user, "platform")
    assert tip.figures["has_own_key"] is False
    assert "10 of them were rate-limited" in tip.message
    assert "your own OpenAI key" in tip.message


def test_a_key_failing_far_more_than_the_others_makes_a_tip(user):
    bad = UserAPIKeyFactory(user=user, nickname="flaky")
    good = UserAPIKeyFactory(user=user, service="anthropic", nickname="steady")
    KeyUsageFactory(key=bad, calls=40, ok_calls=28, server_errors=8, timeouts=4)
    KeyUsageFactory(key=good, calls=40, ok_calls=39, client_errors=1)
    [tip] = tips(user, "error_rate")
    assert (tip.figures["label"], tip.figures["errors"], tip.figures["calls"]) == (
        "flaky",
        12,
        40,
    )
    assert tip.figures["error_percent"] == Decimal(30)
    assert tip.figures["other_error_percent"] == Decimal(2)  # 2.5 rounds half to even
    assert "“flaky” failed 12 of its 40 measured calls (30%)" in tip.message
    assert "1 of 40" in tip.message


@pytest.mark.parametrize(
    ("bad_errors", "good_errors", "measured"),
    [
        (12, 1, 19),  # too few measured calls on the key
        (3, 1, 40),  # not far above: 7.5% against 2.5%
        (20, 12, 40),  # not twice: 50% against 30%
    ],
)
def test_no_error_tip_without_enough_data_or_gap(user, bad_errors, good_errors, measured):
    bad = UserAPIKeyFactory(user=user)
    good = UserAPIKeyFactory(user=user, service="anthropic")
    KeyUsageFactory(
        key=bad, calls=measured, ok_calls=measured - bad_errors, server_errors=bad_errors
    )
    KeyUsageFactory(key=good, calls=40, ok_calls=40 - good_errors, server_errors=good_errors)
    assert tips(user, "error_rate") == []


def test_no_tip_at_all_without_data(user):
    KeyUsageFactory(key=UserAPIKeyFactory(user=user), calls=1)
    assert ai(compare(user, month())).tips == []


def test_money_reads_as_dollars():
    assert money(Decimal("1234.5")) == "$1,234.50"
    assert money(Decimal("0.01234")) == "$0.0123"


# -- Queries ----------------------------------------------------------------------------------


def test_two_queries_whatever_the_number_of_keys_models_and_days(user):
    seed(user)
    with CaptureQueriesContext(connection) as few:
        compare(user, Period.named("90"))
    today = timezone.localdate()
    for n in range(12):
        key = UserAPIKeyFactory(user=user, service="anthropic")
        for day in range(5):
            KeyUsageFactory(
                key=key,
                model=f"claude-sonnet-4-{n % 3 + 4}",
                date=today - timedelta(days=day),
                calls=2,
                input_tokens=100,
                ok_calls=2,
                latency_le_1000=2,
            )
            PlatformUsageFactory(user=user, model=f"m{n}", date=today - timedelta(days=day))
    with CaptureQueriesContext(connection) as many:
        comparison = compare(user, Period.named("90"))
    assert len(few) == len(many) == 2
    assert len(ai(comparison).sources) == 14


def test_calls_without_a_caller_count_for_the_owner_of_the_key_only(user, other_user):
    """Rows written without a caller (before callers were recorded) are the key owner's;
    a team's key without a caller is nobody's to show."""
    KeyUsageFactory(key=UserAPIKeyFactory(user=user), user=None, calls=2)
    team = TeamFactory(owner=user)
    team.add_member(other_user, TeamRole.MEMBER)
    KeyUsageFactory(key=TeamAPIKeyFactory(team=team, actor=user), user=None, calls=50)
    assert ai(compare(user, month())).calls == 2
    assert compare(other_user, month()).categories == []
