"""The declarations every service is made of, read the same way for each: answer rows,
regional hosts, refusals, cautions, swaps, fields that go together, the final setup
step and the "cannot be verified" reason. Tested on a service declared here."""

import pytest
import requests
from django.conf import settings
from django.test import override_settings

import byok
from byok import http
from byok.services import (
    ACCEPTED,
    Answer,
    Caution,
    CredentialField,
    Format,
    ProbeRequest,
    ProbeStatus,
    Refusal,
    Region,
    Service,
    registry,
)

MAIN = "https://api.example.test/v1/me"
EU = "https://eu.example.test/v1/me"
ASIA = "https://asia.example.test/v1/me"
KEY = "ex_" + "A1b2" * 8
LETTERS = "abcdefghijklmnopqrstuvwxy"


class Example(Service):
    id = "example"
    name = "Example"
    category = "ai"
    setup_steps = ("Sign in.", "Copy the key.")
    fields = (
        CredentialField("api_key", "API key"),
        CredentialField("account", "Account", secret=False, required=False),
        CredentialField("account_secret", "Account secret", required=False),
    )
    formats = {
        "api_key": Format(loose=r"ex_[A-Za-z0-9]{16,64}", shape="ex_ and 16 to 64 letters"),
        "account": Format(loose=r"\d{6,12}", shape="6 to 12 digits"),
        "account_secret": Format(loose=r"[a-z]{20,40}", shape="20 to 40 small letters"),
    }
    refusals = (Refusal("api_key", r"pub_.*", "%(label)s is the public key.", code="public"),)
    cautions = (Caution("api_key", r"ex_0.*", "An old key: replace it."),)
    swaps = (("account", "account_secret"),)
    together = (("account", "account_secret"),)
    base_url = "https://api.example.test/v1"
    error_code_at = "error.code"
    error_message_at = "error.message"
    regions = (
        Region("https://eu.example.test/v1", "EU"),
        Region("https://asia.example.test/v1", "Asia"),
    )
    rejected_everywhere = "Rejected in every region."
    answers = (
        Answer(403, ProbeStatus.RESTRICTED, "No scope.", code="no_scope"),
        Answer(403, ProbeStatus.PROVIDER_ERROR, "A firewall.", code="", html=True),
        Answer((409, 410), ProbeStatus.INVALID, "Gone.", says="REVOKED"),
        Answer(ACCEPTED, ProbeStatus.VALID, "Accepted here."),
    )
    unverifiable_reason = "No account, no test."

    def probe_request(self, checked):
        if checked.credentials["api_key"].endswith("none"):
            return None
        return ProbeRequest("GET", "/me", headers={"X-Key": checked.credentials["api_key"]})


@pytest.fixture(autouse=True)
def example(monkeypatch):
    monkeypatch.setattr(registry, "_registered", [*registry.registered, Example])
    registry.reset()
    yield
    registry.reset()


def errors(credentials):
    return byok.validate_credentials("example", credentials).problems


def codes(credentials):
    return {name: [p.code for p in found] for name, found in errors(credentials).items()}


def test_a_refusal_comes_before_the_format_with_its_own_message():
    problems = errors({"api_key": "pub_a1B2c3D4e5F6g7H8i9"})
    assert [(p.code, p.message) for p in problems["api_key"]] == [
        ("public", "API key is the public key.")
    ]


def test_a_caution_warns_about_a_value_that_passed_its_format():
    checked = byok.validate_credentials("example", {"api_key": "ex_0aB1cD2eF3gH4iJ5kL6"})
    assert (checked.ok, checked.warnings) == (True, ["An old key: replace it."])
    assert (
        byok.validate_credentials("example", {"api_key": "ex_0"}).warnings == []
    )  # failed its format


def test_two_fields_that_fit_each_other_and_not_themselves_look_swapped():
    found = codes({"api_key": KEY, "account": LETTERS, "account_secret": "1234567"})
    assert found == {"account": ["swapped"], "account_secret": ["format"]}
    assert "Account and the Account secret look swapped" in str(
        errors({"api_key": KEY, "account": LETTERS, "account_secret": "1234567"})
    )


def test_fields_that_go_together_are_given_together():
    assert codes({"api_key": KEY, "account": "123456"}) == {"account_secret": ["required"]}
    assert codes({"api_key": KEY, "account_secret": LETTERS}) == {"account": ["required"]}
    assert codes({"api_key": KEY, "account": "123456", "account_secret": LETTERS}) == {}


def test_the_final_setup_step_is_added_once():
    steps = registry.get("example").catalog()["setup_steps"]
    assert steps == ["Sign in.", "Copy the key.", "Paste it here and choose “Add & test key”."]

    class Declared(Example):
        setup_steps = ("Sign in.", "Paste it here and choose “Add & test key”.")

    assert Declared().catalog()["setup_steps"] == list(Declared.setup_steps)


def test_no_request_means_unverifiable_with_the_declared_reason(mocked):
    result = byok.test_credentials("example", {"api_key": KEY[:-4] + "none"})
    assert (result.status, result.message, len(mocked.calls)) == (
        "unverifiable",
        "No account, no test.",
        0,
    )


@pytest.mark.parametrize(
    ("status", "body", "expected", "message"),
    [
        (200, {}, "valid", "Accepted here."),
        (204, b"", "valid", "Accepted here."),
        (403, {"error": {"code": "no_scope"}}, "restricted", "No scope."),
        (403, {"error": {"message": "no code"}}, "provider_error", "A firewall."),
        (403, "<html>blocked</html>", "provider_error", "A firewall."),
        (403, {"error": {"code": "other"}}, "invalid", "Example rejected the key (HTTP 403)."),
        (410, {"error": {"message": "Key Revoked by owner"}}, "invalid", "Gone."),
        (409, {"error": {"message": "conflict"}}, "provider_error", "Example answered"),
        (410, "<html>revoked</html>", "provider_error", "Example answered"),
    ],
)
def test_the_first_matching_answer_row_decides(mocked, status, body, expected, message):
    kwargs = {"json": body} if isinstance(body, dict) else {"body": body}
    if isinstance(body, str):
        kwargs["content_type"] = "text/html"
    mocked.get(MAIN, status=status, **kwargs)
    result = byok.test_credentials("example", {"api_key": KEY})
    assert (result.status, result.http_status) == (expected, status)
    assert result.message.startswith(message)


def test_a_key_of_another_region_is_found_there_with_a_warning(mocked):
    mocked.get(MAIN, status=401, json={})
    mocked.get(EU, status=401, json={})
    mocked.get(ASIA, json={})
    result = byok.test_credentials("example", {"api_key": KEY})
    assert (result.status, result.message) == ("valid", "Accepted here.")
    assert result.warnings == [
        "The key belongs to Example's Asia region: set "
        'BYOK["BASE_URLS"]["example"] = "https://asia.example.test/v1" so that byok tests it '
        "there directly."
    ]


def test_a_busy_region_ends_the_search_as_rate_limited(mocked):
    mocked.get(MAIN, status=401, json={})
    mocked.get(EU, status=429, json={})
    assert byok.test_credentials("example", {"api_key": KEY}).status == "rate_limited"
    assert [call.request.url for call in mocked.calls] == [MAIN, EU]


def test_rejected_in_every_region_says_so(mocked):
    for url in (MAIN, EU, ASIA):
        mocked.get(url, status=401, json={})
    result = byok.test_credentials("example", {"api_key": KEY})
    assert (result.status, result.message, result.http_status) == (
        "invalid",
        "Rejected in every region.",
        401,
    )


def test_a_region_that_did_not_reject_leaves_the_main_answer(mocked):
    mocked.get(MAIN, status=401, json={})
    mocked.get(EU, body=requests.ConnectionError("refused"))
    mocked.get(ASIA, status=500, json={})
    result = byok.test_credentials("example", {"api_key": KEY})
    assert (result.status, result.message) == ("invalid", "Example rejected the key (HTTP 401).")


def test_a_configured_base_url_takes_every_request_and_no_region(mocked, monkeypatch):
    monkeypatch.setattr(
        http.socket, "getaddrinfo", lambda *args, **kwargs: [(2, 1, 6, "", ("8.8.8.8", 443))]
    )
    mocked.get("https://gateway.example.test/v1/me", status=401, json={})
    base_urls = {"example": "https://gateway.example.test/v1"}
    with override_settings(BYOK={**settings.BYOK, "BASE_URLS": base_urls}):
        assert byok.test_credentials("example", {"api_key": KEY}).status == "invalid"

        class Regional(Example):
            def probe_request(self, checked):
                return ProbeRequest("GET", "/me", base_url="https://eu.example.test/v1")

        monkeypatch.setattr(registry, "_registered", [*registry.registered, Regional])
        registry.reset()
        assert byok.test_credentials("example", {"api_key": KEY}).status == "invalid"
    assert [call.request.url for call in mocked.calls] == [
        "https://gateway.example.test/v1/me"
    ] * 2
