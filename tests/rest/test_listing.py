"""The list, its filters, and what it costs: constant queries, no decryption."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from byok.fields import SealedCredentials
from byok.keys import update_user_api_key

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
