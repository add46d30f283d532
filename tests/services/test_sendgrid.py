import json

import pytest
import requests
from django.conf import settings
from django.test import override_settings

import byok

from fakes import URLSAFE, rand
from probe_contract import Answer, ProbeContract

PROBE = "https://api.sendgrid.com/v3/scopes"
EU_PROBE = "https://api.eu.sendgrid.com/v3/scopes"
FULL = {"scopes": ["mail.send", "scopes.read", "templates.read"]}
NO_MAIL = {"scopes": ["stats.read", "suppression.read"]}
UNAUTHORIZED = {"errors": [{"field": None, "message": "authorization required"}]}


def fake():
    return f"SG.{rand(22, URLSAFE)}.{rand(43, URLSAFE)}"


class TestProbe(ProbeContract):
    service = "sendgrid"
    url = PROBE
    answers = [
        Answer("full-access", 200, FULL, "valid"),
        Answer("no-mail-send", 200, NO_MAIL, "restricted", message="Mail Send"),
        Answer("unreadable-scopes", 200, {"result": "?"}, "valid", message="could not be read"),
        Answer("bad-key", 401, UNAUTHORIZED, "invalid"),
        Answer("proxy-401", 401, "<html>Unauthorized</html>", "provider_error"),
        Answer(
            "wrong-scope",
            403,
            {"errors": [{"field": None, "message": "access forbidden"}]},
            "restricted",
        ),
        Answer("proxy-403", 403, "<html>Forbidden</html>", "provider_error"),
        Answer(
            "rate-limit",
            429,
            {"errors": [{"field": None, "message": "too many requests"}]},
            "rate_limited",
        ),
        Answer("server-error", 500, "", "provider_error"),
    ]

    def assert_authenticated(self, request, credentials):
        assert request.headers["Authorization"] == f"Bearer {credentials}"


def add(mocked, url, status, body):
    mocked.add("GET", url, status=status, body=json.dumps(body), content_type="application/json")


@pytest.mark.parametrize(("eu_body", "expected"), [(FULL, "valid"), (NO_MAIL, "restricted")])
def test_a_401_is_retried_on_the_eu_host(mocked, eu_body, expected):
    add(mocked, PROBE, 401, UNAUTHORIZED)
    add(mocked, EU_PROBE, 200, eu_body)
    key = fake()
    result = byok.test_credentials("sendgrid", key)
    assert result.status == expected
    assert [call.request.url for call in mocked.calls] == [PROBE, EU_PROBE]
    assert mocked.calls[1].request.headers["Authorization"] == f"Bearer {key}"
    assert len(result.warnings) == 1
    assert "EU subuser" in result.warnings[0]
    assert 'BYOK["BASE_URLS"]["sendgrid"] = "https://api.eu.sendgrid.com"' in result.warnings[0]
    assert key not in json.dumps(result.as_dict())


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, UNAUTHORIZED),
        (403, {"errors": [{"message": "access forbidden"}]}),
        (500, {"errors": []}),
    ],
)
def test_a_key_the_eu_host_does_not_accept_either_is_invalid(mocked, status, body):
    add(mocked, PROBE, 401, UNAUTHORIZED)
    add(mocked, EU_PROBE, status, body)
    result = byok.test_credentials("sendgrid", fake())
    assert result.status == "invalid"
    assert result.http_status == 401
    assert result.warnings == []
    assert mocked.calls[-1].request.url == EU_PROBE


def test_an_unreachable_eu_host_leaves_the_global_answer(mocked):
    add(mocked, PROBE, 401, UNAUTHORIZED)
    mocked.add("GET", EU_PROBE, body=requests.ConnectionError("refused"))
    result = byok.test_credentials("sendgrid", fake())
    assert result.status == "invalid"


@pytest.mark.parametrize(("status", "body"), [(200, FULL), (403, {"errors": []}), (429, {})])
def test_only_a_401_is_retried_on_the_eu_host(mocked, status, body):
    add(mocked, PROBE, status, body)
    byok.test_credentials("sendgrid", fake())
    assert [call.request.url for call in mocked.calls] == [PROBE]


def test_no_eu_retry_when_the_host_sets_the_base_url(mocked):
    gateway = "https://sendgrid.gateway.example"
    add(mocked, f"{gateway}/v3/scopes", 401, UNAUTHORIZED)
    add(mocked, EU_PROBE, 200, FULL)
    byok_settings = {
        **settings.BYOK,
        "BASE_URLS": {"sendgrid": gateway},
        "ALLOW_PRIVATE_BASE_URLS": True,  # the gateway's name does not resolve here
    }
    with override_settings(BYOK=byok_settings):
        result = byok.test_credentials("sendgrid", fake())
    assert result.status == "invalid"
    assert [call.request.url for call in mocked.calls] == [f"{gateway}/v3/scopes"]


def test_the_eu_host_setting_is_used_directly(mocked):
    add(mocked, EU_PROBE, 200, FULL)
    byok_settings = {**settings.BYOK, "BASE_URLS": {"sendgrid": "https://api.eu.sendgrid.com"}}
    with override_settings(BYOK={**byok_settings, "ALLOW_PRIVATE_BASE_URLS": True}):
        result = byok.test_credentials("sendgrid", fake())
    assert (result.status, result.warnings) == ("valid", [])
    assert [call.request.url for call in mocked.calls] == [EU_PROBE]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("SG." + "x" * 22 + "." + rand(43, URLSAFE), "placeholder"),
        ("SG.***." + rand(43, URLSAFE), "masked"),
        ("SG.<your key>", "placeholder"),
        ("sg." + rand(22, URLSAFE) + "." + rand(43, URLSAFE), "must be SG."),
        ("SG." + rand(66, URLSAFE), "must be SG."),
        ("SG." + rand(22) + "." + rand(10), "must be SG."),
        ("SG." + rand(22) + "." + rand(42) + "=", "must be SG."),
    ],
)
def test_format_errors(value, problem):
    result = byok.validate_credentials("sendgrid", value)
    assert not result.ok
    assert problem in " ".join(result.errors)
    assert value not in " ".join(result.errors)


def test_a_69_character_key_passes_without_warning():
    value = fake()
    assert len(value) == 69
    result = byok.validate_credentials("sendgrid", value)
    assert (result.ok, result.warnings) == (True, [])


def test_another_length_is_only_a_warning():
    value = f"SG.{rand(20, URLSAFE)}.{rand(50, URLSAFE)}"
    result = byok.validate_credentials("sendgrid", value)
    assert result.ok
    assert len(result.warnings) == 1
    assert "69 characters" in result.warnings[0]
    assert value not in result.warnings[0]
