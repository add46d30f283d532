import base64
import json

import pytest
from django.test import override_settings

import byok

from fakes import ALNUM, HEX, fake_credentials, rand
from probe_contract import Answer, ProbeContract

PROBE = "https://sentry.io/api/0/"
ROOT = {"version": "0", "auth": {"scopes": ["org:read", "project:read"]}, "user": {"id": "1"}}
BASE64 = ALNUM + "+/"


def org_token(**claims):
    """An organization token: base64 JSON, ``_`` and 43 base64 characters."""
    payload = {
        "iat": 1700000000.123456,
        "url": "https://sentry.io",
        "region_url": "https://de.sentry.io",
        "org": "acme",
        **claims,
    }
    encoded = base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()
    return f"sntrys_{encoded}_{rand(43, BASE64)}"


class TestProbe(ProbeContract):
    service = "sentry"
    url = PROBE
    answers = [
        Answer("authenticated", 200, ROOT, "valid"),
        Answer(
            "anonymous",
            200,
            {"version": "0", "auth": None, "user": None},
            "invalid",
            message="did not recognize",
        ),
        Answer("not-the-api", 200, "<html>Sentry</html>", "provider_error"),
        Answer("bad-token", 401, {"detail": "Invalid token"}, "invalid"),
        Answer(
            "missing-scope",
            403,
            {"detail": "You do not have permission to perform this action."},
            "restricted",
            message="scope",
        ),
        Answer("proxy-page", 403, "<html>Forbidden</html>", "provider_error"),
        Answer("rate-limit", 429, {"detail": "Request was throttled."}, "rate_limited"),
        Answer("server-error", 500, {"detail": "Internal Error"}, "provider_error"),
    ]

    def assert_authenticated(self, request, credentials):
        assert request.headers["Authorization"] == f"Bearer {credentials}"


def test_an_eu_org_token_is_probed_at_its_region(mocked):
    mocked.add("GET", "https://de.sentry.io/api/0/", json=ROOT)
    value = org_token()
    result = byok.test_credentials("sentry", value)
    assert result.status == "valid"
    assert mocked.calls[0].request.headers["Authorization"] == f"Bearer {value}"


def test_the_org_and_region_are_read_from_the_token():
    result = byok.validate_credentials("sentry", org_token())
    assert (result.ok, result.warnings) == (True, [])
    assert result.details["org"] == "acme"
    assert result.details["region_url"] == "https://de.sentry.io"


@pytest.mark.parametrize(
    "region_url",
    [
        "https://evil.example",
        "https://de.sentry.io.evil.example",
        "https://evil.example/.sentry.io",
        "http://de.sentry.io",
        "https://de.sentry.io/",
        "https://de.sentry.io@evil.example",
        42,
    ],
)
def test_any_other_region_url_is_ignored(mocked, region_url):
    mocked.add("GET", PROBE, json=ROOT)
    result = byok.test_credentials("sentry", org_token(region_url=region_url))
    assert result.status == "valid"
    assert mocked.calls[0].request.url == PROBE


def test_a_self_hosted_org_token_is_not_sent_to_sentry_io(mocked):
    result = byok.test_credentials("sentry", org_token(url="https://sentry.example.com"))
    assert result.status == "unverifiable"
    assert "self-hosted" in result.message
    assert len(mocked.calls) == 0


@override_settings(
    BYOK={
        "BASE_URLS": {"sentry": "https://sentry.example.com/api/0"},
        "ALLOW_PRIVATE_BASE_URLS": True,
    }
)
def test_a_configured_base_url_wins_over_the_token(mocked):
    mocked.add("GET", "https://sentry.example.com/api/0/", json=ROOT)
    for value in (org_token(), org_token(url="https://sentry.example.com")):
        assert byok.test_credentials("sentry", value).status == "valid"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("sntryx_" + rand(64, HEX), "must be"),
        ("sntryu_" + rand(20, HEX), "must be"),
        ("sntryu_" + rand(63, HEX) + "!", "must be"),
        ("sntrys_" + rand(20), "must be"),
        (rand(63, HEX), "must be"),
        (rand(64, "ghijklmnop"), "must be"),
        ("sntryu_" + "0" * 64, "placeholder"),
        ("sntryu_…" + rand(4, HEX), "masked"),
    ],
)
def test_format_errors(value, problem):
    result = byok.validate_credentials("sentry", value)
    assert not result.ok
    assert problem in " ".join(result.errors)
    assert value not in " ".join(result.errors)


@pytest.mark.parametrize(
    ("value", "warning"),
    [
        (rand(64, HEX), "old-format"),
        (f"sntrys_eyJ{rand(57)}_{rand(43, BASE64)}", "could not be read"),
        (f"sntrys_eyJ{rand(57)}-_{rand(43, BASE64)}", "could not be read"),
        ("sntryu_" + rand(64, "0123456789ABCDEF"), "usual shape"),
        ("sntryu_" + rand(70, HEX), "usual shape"),
    ],
)
def test_format_warnings(value, warning):
    result = byok.validate_credentials("sentry", value)
    assert result.ok, result.errors
    assert any(warning in text for text in result.warnings), result.warnings
    assert all(value not in text for text in result.warnings)


def test_a_token_that_is_not_json_has_no_details():
    result = byok.validate_credentials(
        "sentry", "sntrys_" + base64.b64encode(b"[1, 2]").decode() + "_" + rand(43)
    )
    assert result.ok
    assert result.details == {}
    assert any("could not be read" in text for text in result.warnings)


@pytest.mark.parametrize("value", [fake_credentials("sentry"), org_token()])
def test_valid_fakes_pass_without_warning(value):
    result = byok.validate_credentials("sentry", value)
    assert (result.ok, result.warnings) == (True, [])
