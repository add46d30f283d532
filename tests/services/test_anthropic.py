import pytest

import byok

from fakes import URLSAFE, rand
from probe_contract import Answer, ProbeContract

PROBE = "https://api.anthropic.com/v1/models"


def error(kind, message):
    return {"type": "error", "error": {"type": kind, "message": message}}


class TestProbe(ProbeContract):
    service = "anthropic"
    url = PROBE
    answers = [
        Answer(
            "models",
            200,
            {"data": [{"type": "model", "id": "claude-sonnet-4-5"}], "has_more": False},
            "valid",
        ),
        Answer("bad-key", 401, error("authentication_error", "invalid x-api-key"), "invalid"),
        Answer(
            "no-permission",
            403,
            error(
                "permission_error",
                "Your API key does not have permission to use the specified resource.",
            ),
            "restricted",
            message="no permission",
        ),
        Answer("other-403", 403, error("forbidden", "Request not allowed"), "provider_error"),
        Answer("proxy-page", 403, "<html>Forbidden</html>", "provider_error", message="web page"),
        Answer(
            "disabled-key",
            404,
            error("not_found_error", "Not found"),
            "invalid",
            message="disabled",
        ),
        Answer(
            "bad-request",
            400,
            error("invalid_request_error", "anthropic-version: header is required"),
            "provider_error",
            message="not with the key",
        ),
        Answer(
            "rate-limit",
            429,
            error("rate_limit_error", "Number of requests has exceeded your rate limit"),
            "rate_limited",
        ),
        Answer("api-error", 500, error("api_error", "Internal server error"), "provider_error"),
        Answer(
            "overloaded",
            529,
            error("overloaded_error", "Overloaded"),
            "provider_error",
            message="overloaded",
        ),
    ]

    def assert_authenticated(self, request, credentials):
        assert request.headers["x-api-key"] == credentials
        assert request.headers["anthropic-version"] == "2023-06-01"
        assert "Authorization" not in request.headers


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (f"sk-ant-admin01-{rand(93, URLSAFE)}AA", "Admin API key"),
        ("sk-ant-api03-" + "x" * 95, "placeholder"),
        ("sk-ant-api03-...AbCd", "masked"),
        ("sk-" + rand(95), "must be sk-ant-api"),
        ("sk-ant-api03-" + rand(40), "must be sk-ant-api"),
        ("sk-ant-api03-" + rand(94) + "!", "must be sk-ant-api"),
        ("sk-ant-apiXY-" + rand(95), "must be sk-ant-api"),
    ],
)
def test_format_errors(value, problem):
    result = byok.validate_credentials("anthropic", value)
    assert not result.ok
    assert problem in " ".join(result.errors)
    assert value not in " ".join(result.errors)


def test_an_admin_key_has_its_own_code():
    result = byok.validate_credentials("anthropic", f"sk-ant-admin01-{rand(93, URLSAFE)}AA")
    assert [p.code for p in result.problems["api_key"]] == ["wrong_kind"]


def test_a_current_key_passes_without_warning():
    result = byok.validate_credentials("anthropic", f"sk-ant-api03-{rand(93, URLSAFE)}AA")
    assert (result.ok, result.warnings) == (True, [])


@pytest.mark.parametrize(
    "value",
    [
        f"sk-ant-api03-{rand(94, URLSAFE)}Z",  # not ending in AA
        f"sk-ant-api04-{rand(93, URLSAFE)}AA",  # a future version
        f"sk-ant-api03-{rand(110, URLSAFE)}AA",  # longer
    ],
)
def test_an_unusual_shape_is_only_a_warning(value):
    result = byok.validate_credentials("anthropic", value)
    assert result.ok
    assert result.warnings == [result.warnings[0]]
    assert "usual shape" in result.warnings[0]
    assert value not in result.warnings[0]
