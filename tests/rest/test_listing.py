"""The list, its filters, and what it costs: constant queries, no decryption."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from byok.fields import SealedCredentials
from byok.keys import update_user_api_key
from byok.models import UserAPIKey

from factories import UserAPIKeyFactory
from fakes import FAKES

pytestmark = pytest.mark.django_db

BASE = "/api/user/api-keys/"


def queries_to_list(api):
    with CaptureQueriesContext(connection) as queries:
        response = api.get(BASE)
    assert response.status_code == 200
    return len(queries), response.json()


def test_the_list_runs_the_same_queries_for_1_and_12_keys_and_decrypts_nothing(
    api, user, monkeypatch
):
    services = list(FAKES)
    UserAPIKeyFactory(user=user, service=services[0])
    one, _ = queries_to_list(api)
    for service in services[1:]:
        UserAPIKeyFactory(user=user, service=service)

    def no_decryption(*args, **kwargs):
        raise AssertionError("the list decrypted a key")

    monkeypatch.setattr(SealedCredentials, "open", no_decryption)
    twelve, body = queries_to_list(api)
    assert len(body) == 12
    assert one == twelve


@pytest.fixture
def keys(user):
    openai = UserAPIKeyFactory(user=user, service="openai")
    stripe = UserAPIKeyFactory(user=user, service="stripe", environment="test")
    twilio = UserAPIKeyFactory(user=user, service="twilio")
    update_user_api_key(twilio, is_active=False)
    UserAPIKeyFactory(service="openai")
    return {"openai": openai, "stripe": stripe, "twilio": twilio}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("service=openai", {"openai"}),
        ("category=payment", {"stripe"}),
        ("category=ai", {"openai"}),
        ("environment=test", {"stripe"}),
        ("status=untested", {"openai", "stripe", "twilio"}),
        ("is_active=false", {"twilio"}),
        ("is_active=true", {"openai", "stripe"}),
        ("service=openai&environment=test", set()),
        ("service=nope", set()),
    ],
)
def test_filters(api, keys, query, expected):
    body = api.get(f"{BASE}?{query}").json()
    assert {item["service"] for item in body} == expected


def test_ordering(api, keys):
    by_service = [item["service"] for item in api.get(f"{BASE}?ordering=service").json()]
    assert by_service == sorted(by_service)
    newest_first = [item["service"] for item in api.get(BASE).json()]
    assert newest_first == ["twilio", "stripe", "openai"]


@pytest.fixture
def distinct_keys(user):
    """Three keys that differ in every field the list can be ordered by."""
    now = timezone.now()
    rows = [
        ("openai", "b", "production", "valid", 5, 2, 1, 3),
        ("anthropic", "c", "test", "invalid", 1, 1, 3, 1),
        ("stripe", "a", "development", "untested", 9, 3, 2, 2),
    ]
    keys = []
    for service, nickname, environment, status, used, last_used, tested, updated in rows:
        key = UserAPIKeyFactory(
            user=user, service=service, nickname=nickname, environment=environment
        )
        UserAPIKey.objects.filter(pk=key.pk).update(
            status=status,
            usage_count=used,
            last_used_at=now + timedelta(hours=last_used),
            last_tested_at=now + timedelta(hours=tested),
            updated_at=now + timedelta(hours=updated),
        )
        keys.append(key)
    return UserAPIKey.objects.filter(pk__in=[key.pk for key in keys])


ORDERING_FIELDS = [
    "created_at",
    "updated_at",
    "service",
    "nickname",
    "environment",
    "status",
    "usage_count",
    "last_used_at",
    "last_tested_at",
]


@pytest.mark.parametrize("field", ORDERING_FIELDS)
@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
def test_the_list_orders_by_each_documented_field(api, distinct_keys, field, descending):
    """docs/rest-api.md lists these; an unknown field would be ignored silently."""
    expected = [
        str(pk)
        for pk in distinct_keys.order_by(f"-{field}" if descending else field).values_list(
            "pk", flat=True
        )
    ]
    query = f"-{field}" if descending else field
    assert [item["id"] for item in api.get(f"{BASE}?ordering={query}").json()] == expected
