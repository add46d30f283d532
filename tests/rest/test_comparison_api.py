"""comparison/: the same figures as the page, for the signed-in user only; every bad
query parameter a 400."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient
from test_comparison import seed

from factories import KeyUsageFactory, UserAPIKeyFactory

pytestmark = pytest.mark.django_db

URL = "/api/user/api-keys/comparison/"


def test_the_figures_of_each_category(api, user):
    key = seed(user)
    body = api.get(URL).json()
    assert body["period"] == {
        "id": "month",
        "start": str(timezone.localdate().replace(day=1)),
        "end": str(timezone.localdate()),
        "days": timezone.localdate().day,
    }
    assert body["bucket_bounds_ms"] == [50, 100, 250, 500, 1000, 2500, 5000, 10000]
    assert body["price_dates"] == {"openai": "2026-06-04", "anthropic": "2026-05-01"}
    ai, email = body["categories"]
    assert (ai["category"], ai["label"], ai["calls"], ai["cost"]) == ("ai", "AI", 150, "3.710000")
    assert email["category"] == "email"
    mine, platform = ai["sources"]
    assert mine["key_id"] == str(key.pk)
    assert (mine["kind"], mine["label"], mine["service_name"]) == ("user", "main", "OpenAI")
    assert mine["outcomes"] == {
        "ok": 90,
        "client_error": 5,
        "rate_limited": 3,
        "server_error": 2,
        "timeout": 0,
        "other_error": 0,
    }
    assert (mine["measured_calls"], mine["error_rate"], mine["rate_limit_rate"]) == (
        100,
        0.07,
        0.03,
    )
    assert mine["p50"] == {"above_ms": 100, "at_most_ms": 250, "text": "≤ 250 ms"}
    assert mine["p95"] == {"above_ms": 250, "at_most_ms": 500, "text": "≤ 500 ms"}
    assert mine["latency_buckets"] == [0, 0, 50, 45, 0, 0, 0, 0, 5]
    assert mine["cost_per_thousand_calls"] == "35.000000"
    assert (platform["kind"], platform["key_id"]) == ("platform", None)
    repricing = ai["repricings"][0]
    assert (repricing["model"], repricing["list_cost"]) == ("gpt-4o", "3.500000")
    assert repricing["alternatives"][0] == {
        "service": "openai",
        "service_name": "OpenAI",
        "model": "gpt-5-nano",
        "cost": "0.090000",
        "difference": "-3.410000",
        "as_of": "2025-10-01",
    }
    kinds = {tip["kind"]: tip for tip in ai["tips"]}
    assert set(kinds) == {"concentration", "platform"}
    assert kinds["concentration"]["figures"]["saving"] == "3.41"
    assert "gpt-5-nano" in kinds["concentration"]["message"]


def test_a_period_and_a_category(api, user):
    seed(user)
    old = UserAPIKeyFactory(user=user, service="anthropic")
    KeyUsageFactory(key=old, date=timezone.localdate().replace(day=1), calls=1)
    body = api.get(URL, {"period": "7", "category": "email"}).json()
    assert body["period"]["days"] == 7
    assert [c["category"] for c in body["categories"]] == ["email"]


@pytest.mark.parametrize(
    "query",
    [
        {"period": "8"},
        {"period": "month\x00"},
        {"category": "weather"},
        {"category": "x" * 5000},
    ],
)
def test_a_bad_parameter_is_a_400(api, user, query):
    response = api.get(URL, query)
    assert response.status_code == 400
    assert set(response.json()) <= {"period", "category"}


def test_an_empty_parameter_is_the_default(api, user):
    body = api.get(URL, {"period": "", "category": ""}).json()
    assert body["period"]["id"] == "month"


def test_signing_in_is_needed():
    assert APIClient().get(URL).status_code in (401, 403)


def test_another_users_figures_never_appear(api, user, other_user):
    seed(other_user)
    assert api.get(URL).json()["categories"] == []


def test_no_secret_in_the_answer(api, user):
    key = seed(user)
    text = api.get(URL).content.decode()
    secret = key.get_credentials()["api_key"]
    assert secret not in text
    assert secret[-12:] not in text


def test_the_query_count_does_not_grow_with_the_rows(api, user):
    seed(user)
    with CaptureQueriesContext(connection) as few:
        api.get(URL)
    for n in range(10):
        KeyUsageFactory(key=UserAPIKeyFactory(user=user, service="anthropic"), model=f"m{n}")
    with CaptureQueriesContext(connection) as many:
        assert len(api.get(URL).json()["categories"][0]["sources"]) == 12
    assert len(few) == len(many)
