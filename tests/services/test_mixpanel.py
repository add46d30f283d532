import pytest
from django.conf import settings
from django.test import override_settings

import byok
from byok import http

from fakes import ALNUM, HEX, URLSAFE, rand
from probe_contract import Answer, ProbeContract, basic_auth

US = "https://mixpanel.com/api/app/me"
EU = "https://eu.mixpanel.com/api/app/me"
IN = "https://in.mixpanel.com/api/app/me"


def service_account():
    return {
        "project_token": rand(32, HEX),
        "service_account_username": f"ci.{rand(6, HEX)}.mp-service-account",
        "service_account_secret": rand(32),
    }


def me():
    return {"status": "ok", "results": {"user_id": 4321, "user_email": "ci@example.com"}}


REJECTED = {"status": "error", "error": "Invalid credentials"}


class TestProbe(ProbeContract):
    service = "mixpanel"
    fixed = service_account()
    url = US
    answers = [
        Answer("me", 200, me(), "valid", message="accepted the service account"),
        Answer("bad-secret", 401, REJECTED, "invalid", message="US, EU and India"),
        Answer("proxy-page", 401, "<html>Unauthorized</html>", "provider_error"),
        Answer("rate-limit", 429, {"error": "Rate limit exceeded"}, "rate_limited"),
        Answer("outage", 502, {"error": "Bad gateway"}, "provider_error"),
    ]

    def credentials(self):
        return dict(self.fixed)

    def add(self, mocked, answer, url=None):
        super().add(mocked, answer, url)
        if url is None and answer.status == 401:  # the same answer from every region
            super().add(mocked, answer, EU)
            super().add(mocked, answer, IN)

    def assert_authenticated(self, request, credentials):
        assert basic_auth(request) == (
            credentials["service_account_username"],
            credentials["service_account_secret"],
        )


def test_a_project_token_alone_is_unverifiable_without_any_request(mocked):
    result = byok.test_credentials("mixpanel", {"project_token": rand(32, HEX)})
    assert result.status == "unverifiable"
    assert "public" in result.message
    assert len(mocked.calls) == 0


@pytest.mark.parametrize(("regional_url", "region"), [(EU, "EU"), (IN, "India")], ids=["eu", "in"])
def test_a_401_from_the_us_host_is_retried_in_the_other_regions(mocked, regional_url, region):
    credentials = service_account()
    mocked.get(US, status=401, json=REJECTED)
    if regional_url == IN:
        mocked.get(EU, status=401, json=REJECTED)
    mocked.get(regional_url, json=me())
    result = byok.test_credentials("mixpanel", credentials)
    assert result.status == "valid"
    assert [call.request.url for call in mocked.calls][-1] == regional_url
    (warning,) = result.warnings
    assert region in warning
    assert 'BYOK["BASE_URLS"]["mixpanel"]' in warning
    assert regional_url.removesuffix("/api/app/me") in warning
    for call in mocked.calls:
        assert basic_auth(call.request) == (
            credentials["service_account_username"],
            credentials["service_account_secret"],
        )


def test_rejected_everywhere_is_invalid(mocked):
    for url in (US, EU, IN):
        mocked.get(url, status=401, json=REJECTED)
    result = byok.test_credentials("mixpanel", service_account())
    assert result.status == "invalid"
    assert result.http_status == 401
    assert [call.request.url for call in mocked.calls] == [US, EU, IN]


def test_a_busy_region_is_not_read_as_invalid(mocked):
    mocked.get(US, status=401, json=REJECTED)
    mocked.get(EU, status=429, json={"error": "Rate limit exceeded"})
    result = byok.test_credentials("mixpanel", service_account())
    assert result.status == "rate_limited"
    assert len(mocked.calls) == 2


@pytest.fixture
def eu_base_url(monkeypatch):
    """The host configured the EU host; its address resolves to a public one."""
    monkeypatch.setattr(
        http.socket, "getaddrinfo", lambda *args, **kwargs: [(2, 1, 6, "", ("8.8.8.8", 443))]
    )
    with override_settings(
        BYOK={**settings.BYOK, "BASE_URLS": {"mixpanel": "https://eu.mixpanel.com"}}
    ):
        yield


@pytest.mark.usefixtures("eu_base_url")
def test_no_fallback_when_the_host_configured_the_base_url(mocked):
    mocked.get(EU, status=401, json=REJECTED)
    result = byok.test_credentials("mixpanel", service_account())
    assert result.status == "invalid"
    assert [call.request.url for call in mocked.calls] == [EU]


@pytest.mark.usefixtures("eu_base_url")
def test_a_configured_base_url_is_used_without_a_region_warning(mocked):
    mocked.get(EU, json=me())
    result = byok.test_credentials("mixpanel", service_account())
    assert (result.status, result.warnings) == ("valid", [])


@pytest.mark.parametrize(
    ("missing", "present"),
    [
        ("service_account_secret", "service_account_username"),
        ("service_account_username", "service_account_secret"),
    ],
)
def test_half_a_service_account_is_refused_on_the_missing_field(mocked, missing, present):
    credentials = service_account()
    del credentials[missing]
    result = byok.validate_credentials("mixpanel", credentials)
    assert list(result.problems) == [missing]
    assert [p.code for p in result.problems[missing]] == ["required"]
    assert credentials[present] not in " ".join(result.errors)
    assert byok.test_credentials("mixpanel", credentials).status == "format_invalid"
    assert len(mocked.calls) == 0


def replace(field, value):
    return {**service_account(), field: value}


@pytest.mark.parametrize(
    ("credentials", "field", "problem"),
    [
        (replace("project_token", "2195193"), "project_token", "project ID"),
        # A letter at the end: all digits would be the project ID's refusal instead.
        (replace("project_token", rand(11, HEX) + "a"), "project_token", "must be 16 to 64"),
        (replace("project_token", rand(31, HEX) + "-"), "project_token", "must be 16 to 64"),
        (replace("project_token", "a" * 32), "project_token", "placeholder"),
        (
            replace("service_account_username", f"ci.{rand(6, HEX)}"),
            "service_account_username",
            "ending in .mp-service-account",
        ),
        (
            replace("service_account_username", f"ci:{rand(6, HEX)}.mp-service-account"),
            "service_account_username",
            "ending in .mp-service-account",
        ),
        (
            replace("service_account_secret", rand(10)),
            "service_account_secret",
            "must be 16 to 128",
        ),
        (
            replace("service_account_secret", f"{rand(16)} {rand(16)}"),
            "service_account_secret",
            "must be 16 to 128",
        ),
    ],
)
def test_format_errors(credentials, field, problem):
    result = byok.validate_credentials("mixpanel", credentials)
    assert not result.ok
    assert problem in " ".join(result.field_errors[field])
    for value in credentials.values():
        assert value not in " ".join(result.errors)


@pytest.mark.parametrize(
    ("credentials", "warning"),
    [
        (replace("project_token", rand(31, ALNUM) + "Z"), "project tokens are usually"),
        (replace("service_account_secret", rand(39, URLSAFE) + "_"), "secrets are usually"),
    ],
)
def test_unusual_shapes_are_only_warnings(credentials, warning):
    result = byok.validate_credentials("mixpanel", credentials)
    assert result.ok
    assert warning in result.warnings[0]


@pytest.mark.parametrize(
    "credentials",
    [service_account(), {"project_token": rand(32, HEX)}],
    ids=["service-account", "token-only"],
)
def test_the_fakes_pass_without_warning(credentials):
    result = byok.validate_credentials("mixpanel", credentials)
    assert (result.ok, result.warnings) == (True, [])
