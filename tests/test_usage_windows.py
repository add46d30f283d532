"""Reading usage back: the windows of days the pages and the REST API show, for a user
and for a team, with the edges of each window and the order of the rows exact."""

import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

import byok
from byok.usage import (
    calls_by_key,
    cost_by_model,
    team_totals,
    team_usage_for,
    usage_by_model,
    usage_for,
)

from factories import (
    KeyUsageFactory,
    PlatformUsageFactory,
    TeamAPIKeyFactory,
    TeamFactory,
    UserAPIKeyFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

#: Days ago that hold usage: today, the edges of a 7-day window and of a 30-day one.
DAYS_AGO = (0, 6, 7, 29, 30)


def ago(days):
    return timezone.localdate() - timedelta(days=days)


@pytest.fixture
def history(user):
    """On each of DAYS_AGO: ``n`` calls on the user's openai key (gpt-4o), ``100 n`` on
    their anthropic key (claude), ``10,000 n`` on the platform's openai key, with
    ``n`` = 1, 2, 4, 8, 16 from today back, each call costing a cent."""
    openai = UserAPIKeyFactory(user=user, service="openai")
    anthropic = UserAPIKeyFactory(user=user, service="anthropic")
    for n, days in zip((1, 2, 4, 8, 16), DAYS_AGO, strict=True):
        for key, calls, model in ((openai, n, "gpt-4o"), (anthropic, 100 * n, "claude")):
            KeyUsageFactory(
                key=key, date=ago(days), model=model, calls=calls, units=calls,
                input_tokens=10 * calls, cost=Decimal(calls) / 100,
            )  # fmt: skip
        PlatformUsageFactory(
            user=user, service="openai", date=ago(days), model="gpt-4o-mini",
            calls=10_000 * n, units=10_000 * n, cost=Decimal(100 * n),
        )  # fmt: skip
    return user


def calls_per(rows, *fields):
    return [(*(row[field] for field in fields), row["calls"]) for row in rows]


def test_a_usage_window_holds_the_last_30_days_by_default_sorted(history):
    window = usage_for(history)
    assert (window.start, window.end, window.days, window.service) == (ago(29), ago(0), 30, None)
    assert calls_per(window.rows, "date", "service", "source") == [
        (ago(29), "anthropic", "user", 800),
        (ago(29), "openai", "platform", 80_000),
        (ago(29), "openai", "user", 8),
        (ago(7), "anthropic", "user", 400),
        (ago(7), "openai", "platform", 40_000),
        (ago(7), "openai", "user", 4),
        (ago(6), "anthropic", "user", 200),
        (ago(6), "openai", "platform", 20_000),
        (ago(6), "openai", "user", 2),
        (ago(0), "anthropic", "user", 100),
        (ago(0), "openai", "platform", 10_000),
        (ago(0), "openai", "user", 1),
    ]
    assert window.rows[0]["units"] == 800
    assert window.rows[0]["cost"] == Decimal(8)


def test_a_usage_window_of_seven_days_for_one_service(history):
    window = usage_for(history, days=7, service="openai")
    assert (window.start, window.days, window.service) == (ago(6), 7, "openai")
    assert calls_per(window.rows, "date", "source") == [
        (ago(6), "platform", 20_000),
        (ago(6), "user", 2),
        (ago(0), "platform", 10_000),
        (ago(0), "user", 1),
    ]


def test_usage_by_model_adds_up_the_window_per_service_model_and_source(history):
    window = usage_by_model(history, days=7)
    assert (window.start, window.days, window.service) == (ago(6), 7, None)
    assert calls_per(window.rows, "service", "model", "source") == [
        ("anthropic", "claude", "user", 300),
        ("openai", "gpt-4o", "user", 3),
        ("openai", "gpt-4o-mini", "platform", 30_000),
    ]
    assert window.cost == Decimal("303.03")
    assert window.incomplete is False
    assert [row["input_tokens"] for row in window.rows] == [3_000, 30, 0]
    only = usage_by_model(history, service="anthropic")
    assert (only.service, calls_per(only.rows, "model")) == ("anthropic", [("claude", 1_500)])
    assert usage_by_model(history).start == ago(29)


def test_usage_by_model_says_when_a_model_was_unpriced(history):
    KeyUsageFactory(key=history.byok_api_keys.get(service="openai"), model="mystery", calls=2,
                    unpriced_calls=2)  # fmt: skip
    window = usage_by_model(history, days=1)
    assert window.incomplete is True
    assert [
        (row["model"], row["incomplete"]) for row in window.rows if row["source"] == "user"
    ] == [
        ("claude", False),
        ("gpt-4o", False),
        ("mystery", True),
    ]


def test_cost_by_model_merges_the_users_keys_and_the_platforms_costliest_first(history):
    KeyUsageFactory(key=history.byok_api_keys.get(service="openai"), model="gpt-4o-mini",
                    calls=3, cost=Decimal("0.03"), input_tokens=7)  # fmt: skip
    rows = cost_by_model(history, days=1)
    assert [(row["service"], row["model"], row["calls"], row["cost"]) for row in rows] == [
        ("openai", "gpt-4o-mini", 10_003, Decimal("100.03")),
        ("anthropic", "claude", 100, Decimal("1")),
        ("openai", "gpt-4o", 1, Decimal("0.01")),
    ]
    assert rows[0]["input_tokens"] == 7  # the platform's row recorded none
    assert [row["calls"] for row in cost_by_model(history)] == [150_003, 1_500, 15]


def test_windows_are_values(history):
    for window in (usage_for(history), usage_by_model(history)):
        with pytest.raises(dataclasses.FrozenInstanceError):
            window.days = 1


@pytest.fixture
def team_history(user):
    """A team whose openai key two members used on DAYS_AGO (``n`` and ``10 n`` calls),
    one of them since deleted."""
    team = TeamFactory(owner=user)
    key = TeamAPIKeyFactory(team=team, actor=user)
    gone = UserFactory()
    team.add_member(gone)
    for n, days in zip((1, 2, 4, 8, 16), DAYS_AGO, strict=True):
        KeyUsageFactory(key=key, user=user, date=ago(days), calls=n, units=n, cost=n)
        KeyUsageFactory(key=key, user=gone, date=ago(days), calls=10 * n, cost=10 * n)
    gone_pk = gone.pk
    gone.delete()
    return team, key, gone_pk


def test_a_teams_usage_window_per_member(user, team_history):
    team, _key, _gone = team_history
    window = team_usage_for(team, days=7)
    assert (window.start, window.days, window.service) == (ago(6), 7, None)
    # By day, then by member (the deleted one's ``None`` sorted as text, like an id).
    expected = [(ago(6), user.pk, 2), (ago(6), None, 20), (ago(0), user.pk, 1), (ago(0), None, 10)]
    expected.sort(key=lambda row: (row[0], str(row[1])))
    assert calls_per(window.rows, "date", "user") == expected
    assert usage_for(user).rows == []  # a team's key is not the user's own
    default = team_usage_for(team, service="openai")
    assert (default.start, default.service, len(default.rows)) == (ago(29), "openai", 8)
    assert team_usage_for(team, service="anthropic").rows == []
    mine = team_usage_for(team, member=user)
    assert {row["user"] for row in mine.rows} == {user.pk}


def test_a_teams_totals_per_member_and_per_service(user, team_history):
    team, _key, _gone = team_history
    per_member = sorted(team_totals(team, by="user", days=7), key=lambda row: row["calls"])
    assert [(row["user"], row["calls"], row["units"], row["cost"]) for row in per_member] == [
        (user.pk, 3, 3, Decimal(3)),
        (None, 30, 0, Decimal(30)),
    ]
    assert [(row["service"], row["calls"]) for row in team_totals(team, by="service")] == [
        ("openai", 165)
    ]
    assert [row["calls"] for row in team_totals(team, by="user", member=user)] == [15]
    with pytest.raises(ValueError, match=r"^by must be 'user' or 'service'\.$"):
        team_totals(team, by="model")


def test_calls_by_key_counts_a_members_calls_ever(user, team_history):
    team, key, _gone = team_history
    other = TeamAPIKeyFactory(team=team, actor=user, service="anthropic")
    assert calls_by_key(team, user) == {key.pk: 31}
    KeyUsageFactory(key=other, user=user, calls=0)
    assert calls_by_key(team, user) == {key.pk: 31, other.pk: 0}
    assert calls_by_key(team, UserFactory()) == {}


def test_usage_with_no_key_anywhere_is_the_users_on_the_platform(user):
    byok.track_api_usage(user, "openai", cost="0.01")
    assert calls_per(usage_for(user).rows, "service", "source") == [("openai", "platform", 1)]


def test_a_teams_usage_rows_are_sorted_by_day_then_service_then_member(user):
    team = TeamFactory(owner=user)
    openai = TeamAPIKeyFactory(team=team, actor=user, service="openai")
    anthropic = TeamAPIKeyFactory(team=team, actor=user, service="anthropic")
    other = UserFactory()
    team.add_member(other)
    first, second = sorted((user, other), key=lambda member: str(member.pk))
    KeyUsageFactory(key=openai, user=first, calls=1)
    KeyUsageFactory(key=anthropic, user=second, calls=2)
    KeyUsageFactory(key=openai, user=second, calls=3)
    rows = team_usage_for(team).rows
    assert [(row["service"], row["user"], row["calls"]) for row in rows] == [
        ("anthropic", second.pk, 2),
        ("openai", first.pk, 1),
        ("openai", second.pk, 3),
    ]
