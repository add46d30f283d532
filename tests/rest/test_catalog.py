"""services/, stats/ and usage/."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from byok.keys import remove_user_api_key, update_user_api_key
from byok.services.registry import registry

from factories import KeyUsageFactory, PlatformUsageFactory, UserAPIKeyFactory

pytestmark = pytest.mark.django_db

BASE = "/api/user/api-keys/"


def test_services_is_the_catalog_with_the_users_keys(api, user):
    UserAPIKeyFactory(user=user, service="openai")
    UserAPIKeyFactory(user=user, service="openai")
    UserAPIKeyFactory(user=user, service="stripe")  # one active key is enough to be connected
    inactive = UserAPIKeyFactory(user=user, service="anthropic")
    update_user_api_key(inactive, is_active=False)
    remove_user_api_key(UserAPIKeyFactory(user=user, service="resend"))
    body = {item["id"]: item for item in api.get(f"{BASE}services/").json()}
    assert list(body) == [service.id for service in registry]
    assert (body["openai"]["connected"], body["openai"]["key_count"]) == (True, 2)
    assert (body["stripe"]["connected"], body["stripe"]["key_count"]) == (True, 1)
    assert (body["anthropic"]["connected"], body["anthropic"]["key_count"]) == (False, 1)
    assert (body["resend"]["connected"], body["resend"]["key_count"]) == (False, 0)
    assert len(body["openai"]["setup_steps"]) == 4
    assert body["openai"]["icon_url"] == "/static/byok/icons/openai.svg"
    assert body["openai"]["default_cost_per_call"] == "0.002000"
    assert body["twilio"]["fields"][1] == {
        "name": "auth_token",
        "label": "Auth token",
        "secret": True,
        "required": True,
        "help_text": body["twilio"]["fields"][1]["help_text"],
    }


def test_stats(api, user):
    openai = UserAPIKeyFactory(user=user, service="openai")
    KeyUsageFactory(key=openai, calls=3, cost="0.25")
    KeyUsageFactory(key__user=user, key__service="anthropic", calls=2, cost="0.5")
    PlatformUsageFactory(user=user, service="resend", calls=4, cost="1")
    last_month = timezone.localdate().replace(day=1) - timedelta(days=1)
    KeyUsageFactory(key=openai, date=last_month, calls=100, cost=9)
    body = api.get(f"{BASE}stats/").json()
    assert body == {
        "connected_services": 2,
        "available_services": 12,
        "estimated_monthly_cost": "0.750000",
        "total_api_calls": 9,
        "month": timezone.localdate().strftime("%Y-%m"),
    }


def test_usage_rows_by_day_service_and_source(api, user):
    key = UserAPIKeyFactory(user=user, service="openai")
    today = timezone.localdate()
    KeyUsageFactory(key=key, date=today, calls=5, units=100, cost=Decimal("0.01"))
    KeyUsageFactory(key=key, date=today - timedelta(days=40), calls=1)
    PlatformUsageFactory(
        user=user, service="openai", date=today - timedelta(days=1), calls=2, units=7, cost=0
    )
    PlatformUsageFactory(user=user, service="resend", date=today, calls=9)
    body = api.get(f"{BASE}usage/").json()
    assert (body["days"], body["end"], body["service"]) == (30, str(today), None)
    assert body["rows"] == [
        {
            "date": str(today - timedelta(days=1)),
            "service": "openai",
            "source": "platform",
            "calls": 2,
            "units": 7,
            "cost": "0.000000",
        },
        {
            "date": str(today),
            "service": "openai",
            "source": "user",
            "calls": 5,
            "units": 100,
            "cost": "0.010000",
        },
        {
            "date": str(today),
            "service": "resend",
            "source": "platform",
            "calls": 9,
            "units": 0,
            "cost": "0.000000",
        },
    ]
    only = api.get(f"{BASE}usage/?days=90&service=openai").json()
    assert [row["calls"] for row in only["rows"]] == [1, 2, 5]


def test_usage_of_an_unknown_service_is_empty_not_an_error(api):
    body = api.get(f"{BASE}usage/?service=nope").json()
    assert (body["service"], body["rows"]) == ("nope", [])


def test_a_blank_usage_service_means_every_service(api):
    response = api.get(f"{BASE}usage/", {"service": ""})
    assert response.status_code == 200
    assert response.json()["service"] in ("", None)


@pytest.mark.parametrize("value", [" ", "\x0b", "open ai", "a\x00b", "x" * 65])
def test_a_service_that_is_not_an_id_is_a_400(api, value):
    assert api.get(f"{BASE}usage/", {"service": value}).status_code == 400
    assert api.get(BASE, {"service": value}).status_code == 400
