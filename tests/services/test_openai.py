import pytest

import byok

from fakes import URLSAFE, rand
from probe_contract import Answer, ProbeContract

PROBE = "https://api.openai.com/v1/models"


def error(message, code=None):
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}


class TestProbe(ProbeContract):
    service = "openai"
    url = PROBE
    answers = [
        Answer("models", 200, {"object": "list", "data": [{"id": "gpt-4o"}]}, "valid"),
        Answer(
            "bad-key",
            401,
            error("Incorrect API key provided: sk-****.", "invalid_api_key"),
            "invalid",
        ),
        Answer(
            "missing-scope",
            401,
            error(
                "You have insufficient permissions for this operation. "
                "Missing scopes: api.model.read."
            ),
            "restricted",
            message="Models: Read",
        ),
        Answer("ip-allowlist", 401, error("IP not authorized"), "restricted", message="allowlist"),
        Answer(
            "no-credit",
            429,
            error("You exceeded your current quota", "insufficient_quota"),
            "restricted",
            message="no credit",
        ),
        Answer(
            "rate-limit", 429, error("Rate limit reached", "rate_limit_exceeded"), "rate_limited"
        ),
        Answer(
            "country", 403, error("Country, region, or territory not supported"), "provider_error"
        ),
        Answer("proxy-page", 403, "<html>Forbidden</html>", "provider_error"),
        Answer("overloaded", 503, error("The server is overloaded"), "provider_error"),
    ]

    def assert_authenticated(self, request, credentials):
        assert request.headers["Authorization"] == f"Bearer {credentials}"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (f"sk-admin-{rand(58, URLSAFE)}T3BlbkFJ{rand(58, URLSAFE)}", "admin key"),
        ("sk-" + "x" * 48, "placeholder"),
        ("pk-" + rand(48), "must be sk-"),
        ("sk-short", "must be sk-"),
        ("sk-" + rand(40) + "!", "must be sk-"),
    ],
)
def test_format_errors(value, problem):
    result = byok.validate_credentials("openai", value)
    assert not result.ok
    assert problem in " ".join(result.errors)
    assert value not in " ".join(result.errors)


def test_legacy_and_project_keys_pass_without_warning():
    for value in (
        f"sk-{rand(20)}T3BlbkFJ{rand(20)}",
        f"sk-proj-{rand(74, URLSAFE)}T3BlbkFJ{rand(74, URLSAFE)}",
    ):
        result = byok.validate_credentials("openai", value)
        assert (result.ok, result.warnings) == (True, [])


def test_an_unusual_shape_is_only_a_warning():
    result = byok.validate_credentials("openai", "sk-" + rand(60))
    assert result.ok
    assert "usual shape" in result.warnings[0]
