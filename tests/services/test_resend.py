import pytest

import byok

from fakes import rand
from probe_contract import Answer, ProbeContract

PROBE = "https://api.resend.com/domains"


def error(status, name, message):
    return {"statusCode": status, "name": name, "message": message}


class TestProbe(ProbeContract):
    service = "resend"
    url = PROBE
    answers = [
        Answer(
            "domains",
            200,
            {"object": "list", "data": [{"id": "d91cd9bd", "name": "example.com"}]},
            "valid",
        ),
        Answer(
            "sending-only",
            401,
            error(401, "restricted_api_key", "This API key is restricted to only send emails"),
            "restricted",
            message="sending-only",
        ),
        Answer(
            "no-key-sent",
            401,
            error(401, "missing_api_key", "Missing API key in the authorization header."),
            "provider_error",
            message="without the key",
        ),
        Answer("other-401", 401, error(401, "something_new", "Unexpected"), "provider_error"),
        Answer("bad-key", 403, error(403, "invalid_api_key", "API key is invalid"), "invalid"),
        Answer(
            "cloudflare-1010-page",
            403,
            "<!DOCTYPE html><html><title>Access denied | Error 1010</title></html>",
            "provider_error",
            headers={"Content-Type": "text/html"},
            message="firewall",
        ),
        Answer(
            "cloudflare-1010-text", 403, "error code: 1010", "provider_error", message="firewall"
        ),
        Answer("other-403", 403, error(403, "something_new", "Unexpected"), "provider_error"),
        Answer(
            "rate-limit",
            429,
            error(429, "rate_limit_exceeded", "Too many requests."),
            "rate_limited",
            headers={"retry-after": "1"},
        ),
        Answer(
            "server-error",
            500,
            error(500, "internal_server_error", "An unexpected error occurred."),
            "provider_error",
        ),
    ]

    def assert_authenticated(self, request, credentials):
        assert request.headers["Authorization"] == f"Bearer {credentials}"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("re_123", "example key"),
        ("re_123456789", "example key"),
        ("re_xxxxxxxxx", "placeholder"),
        ("re_your_api_key", "placeholder"),
        ("re_..." + rand(4), "masked"),
        ("sk_" + rand(8) + "_" + rand(24), "must be re_"),
        ("re_" + rand(10), "must be re_"),
        ("re_" + rand(8) + "-" + rand(24), "must be re_"),
    ],
)
def test_format_errors(value, problem):
    result = byok.validate_credentials("resend", value)
    assert not result.ok
    assert problem in " ".join(result.errors)
    assert value not in " ".join(result.errors)


def test_the_documentation_example_has_the_placeholder_code():
    result = byok.validate_credentials("resend", "re_123456789")
    assert [p.code for p in result.problems["api_key"]] == ["placeholder"]


def test_a_key_of_the_usual_shape_passes_without_warning():
    result = byok.validate_credentials("resend", f"re_{rand(8)}_{rand(24)}")
    assert (result.ok, result.warnings) == (True, [])


def test_an_unusual_shape_is_only_a_warning():
    value = f"re_{rand(40)}"
    result = byok.validate_credentials("resend", value)
    assert result.ok
    assert len(result.warnings) == 1
    assert "usual shape" in result.warnings[0]
    assert value not in result.warnings[0]
