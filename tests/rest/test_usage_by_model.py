"""usage/by-model/: tokens and cost per model, and whether the estimate is complete."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

import byok

from factories import KeyUsageFactory, PlatformUsageFactory, UserAPIKeyFactory
from fakes import fake_credentials

pytestmark = pytest.mark.django_db

URL = "/api/user/api-keys/usage/by-model/"


@pytest.fixture
def platform():
    byok_settings = {**settings.BYOK, "PLATFORM_KEYS": {"openai": fake_credentials("openai")}}
    with override_settings(BYOK=byok_settings):
        yield


def test_cost_and_tokens_per_model_and_source(api, user, platform):
    byok.track_api_usage(user, "openai", model="gpt-4o", input_tokens=1000, output_tokens=500)
    UserAPIKeyFactory(user=user)
    for _ in range(2):
        byok.track_api_usage(
            user,
            "openai",
            model="gpt-4o",
            input_tokens=2_000_000,
            cached_input_tokens=1_000_000,
            output_tokens=1_000_000,
        )
    assert reverse("byok_api:apikey-usage-by-model") == URL  # the documented name
    body = api.get(URL).json()
    assert (body["days"], body["end"], body["service"]) == (30, str(timezone.localdate()), None)
    assert body["incomplete"] is False
    platform_row, own_row = body["rows"]
    assert platform_row == {
        "service": "openai",
        "model": "gpt-4o",
        "source": "platform",
        "calls": 1,
        "units": 0,
        "input_tokens": 1000,
        "output_tokens": 500,
        "cached_input_tokens": 0,
        "cost": platform_row["cost"],
        "unpriced_calls": 0,
        "incomplete": False,
    }
    assert (own_row["source"], own_row["calls"], own_row["input_tokens"]) == (
        "user",
        2,
        4_000_000,
    )
    assert (own_row["cached_input_tokens"], own_row["output_tokens"]) == (2_000_000, 2_000_000)
    # gpt-4o per million tokens: 2.50 in (1M uncached), 1.25 cached in, 10.00 out; twice.
    assert own_row["cost"] == "27.500000"
    assert platform_row["cost"] == "0.007500"
    assert body["cost"] == "27.507500"


def test_an_unpriced_model_flags_the_estimate_incomplete(api, user):
    UserAPIKeyFactory(user=user)
    byok.track_api_usage(user, "openai", model="gpt-4o", input_tokens=10)
    byok.track_api_usage(user, "openai", model="my-finetune", input_tokens=10)
    body = api.get(URL).json()
    rows = {row["model"]: row for row in body["rows"]}
    assert body["incomplete"] is True
    assert (rows["my-finetune"]["unpriced_calls"], rows["my-finetune"]["incomplete"]) == (1, True)
    assert rows["gpt-4o"]["incomplete"] is False


def test_the_window_and_the_service_filter(api, user):
    key = UserAPIKeyFactory(user=user)
    today = timezone.localdate()
    KeyUsageFactory(key=key, model="gpt-4o", date=today - timedelta(days=40), calls=7)
    KeyUsageFactory(key=key, model="gpt-4o", date=today, calls=1)
    PlatformUsageFactory(user=user, service="anthropic", model="claude-x", calls=2)
    assert [row["calls"] for row in api.get(URL).json()["rows"]] == [2, 1]
    only = api.get(URL, {"days": 90, "service": "openai"}).json()
    assert [(row["model"], row["calls"]) for row in only["rows"]] == [("gpt-4o", 8)]
    assert only["service"] == "openai"


def test_other_users_usage_is_not_counted(api, other_user):
    KeyUsageFactory(key__user=other_user, model="gpt-4o", calls=3)
    PlatformUsageFactory(user=other_user, model="gpt-4o")
    assert api.get(URL).json()["rows"] == []


def test_the_query_count_does_not_grow_with_models_or_days(api, user, django_assert_num_queries):
    key = UserAPIKeyFactory(user=user)
    today = timezone.localdate()

    def rows():
        with django_assert_num_queries(2):
            return len(api.get(URL).json()["rows"])

    assert rows() == 0
    for day in range(10):
        for model in ("a", "b", "c"):
            KeyUsageFactory(key=key, model=model, date=today - timedelta(days=day))
            PlatformUsageFactory(user=user, model=model, date=today - timedelta(days=day))
    assert rows() == 6


@pytest.mark.parametrize("query", ["days=0", "days=367", "days=x", "service=open%20ai"])
def test_bad_queries_are_400(api, query):
    assert api.get(f"{URL}?{query}").status_code == 400


def test_anonymous_callers_are_refused(client):
    assert client.get(URL).status_code in (401, 403)
