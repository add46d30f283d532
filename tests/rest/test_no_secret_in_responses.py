"""No response but reveal/ ever carries a stored secret, whatever the endpoint."""

import json

import pytest
import requests

from factories import UserAPIKeyFactory
from fakes import FAKES, fake_credentials, secret_values

pytestmark = pytest.mark.django_db

BASE = "/api/user/api-keys/"


def everything_in(response):
    return response.content.decode() + json.dumps(dict(response.items()))


def test_no_endpoint_but_reveal_returns_a_secret(api, user, provider):
    provider.add(provider.GET, "https://api.anthropic.com/v1/models", body=requests.Timeout())
    stored = {}
    for service in FAKES:
        credentials = fake_credentials(service)
        response = api.post(
            BASE,
            {
                "service": service,
                "credentials": credentials
                if isinstance(credentials, dict)
                else {"api_key": credentials},
                "test": False,
            },
        )
        assert response.status_code == 201, (service, response.content)
        stored[response.json()["id"]] = credentials
        everything = everything_in(response)
        assert not [v for v in secret_values(credentials) if len(v) > 12 and v in everything]
    some_id = next(iter(stored))
    candidate = fake_credentials("openai")
    responses = [
        api.get(BASE),
        api.get(f"{BASE}?service=openai&ordering=-created_at"),
        *[api.get(f"{BASE}{key_id}/") for key_id in stored],
        api.patch(f"{BASE}{some_id}/", {"nickname": "renamed"}),
        api.put(f"{BASE}{some_id}/", {**api.get(f"{BASE}{some_id}/").json(), "nickname": "again"}),
        *[api.post(f"{BASE}{key_id}/test/") for key_id in list(stored)[:3]],
        api.post(f"{BASE}test/", {"service": "openai", "key": candidate}),
        api.post(f"{BASE}test/", {"service": "openai", "key": candidate[:-3] + "!!!"}),
        api.get(f"{BASE}services/"),
        api.get(f"{BASE}stats/"),
        api.get(f"{BASE}usage/?days=7"),
        api.get(f"{BASE}schema/"),
        api.post(BASE, {"service": "openai", "key": openai_secret(stored), "test": False}),
    ]
    every_secret = [
        v for c in [*stored.values(), candidate] for v in secret_values(c) if len(v) > 12
    ]
    for response in responses:
        assert response.status_code < 500
        everything = everything_in(response)
        leaked = [value for value in every_secret if value in everything]
        assert not leaked, response.wsgi_request.path
    revealed = api.post(f"{BASE}{some_id}/reveal/")
    assert set(secret_values(stored[some_id])) <= set(revealed.json()["credentials"].values())


def openai_secret(stored):
    return next(c for c in stored.values() if isinstance(c, str) and c.startswith("sk-proj-"))


def test_deleting_erases_and_never_returns_the_secret(api, user):
    secret = fake_credentials("openai")
    key = UserAPIKeyFactory(user=user, credentials=secret)
    response = api.delete(f"{BASE}{key.pk}/")
    assert response.status_code == 204
    assert secret not in everything_in(response)
    assert api.post(f"{BASE}{key.pk}/reveal/").status_code == 404
