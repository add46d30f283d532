import pytest

import byok

from fakes import ALNUM, HEX, rand
from probe_contract import Answer, ProbeContract, basic_auth

BASE = "https://api.twilio.com/2010-04-01"


def fake():
    return {"account_sid": f"AC{rand(32, HEX)}", "auth_token": rand(32, HEX)}


def account(sid, status="active", kind="Full"):
    return {"sid": sid, "friendly_name": "My first account", "status": status, "type": kind}


def error(code, status, message="Authenticate"):
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class TestProbe(ProbeContract):
    service = "twilio"
    fixed = fake()
    url = f"{BASE}/Accounts/{fixed['account_sid']}.json"
    answers = [
        Answer("active", 200, account(fixed["account_sid"]), "valid"),
        Answer("trial", 200, account(fixed["account_sid"], kind="Trial"), "valid"),
        Answer("suspended-but-readable", 200, account(fixed["account_sid"], "suspended"), "valid"),
        Answer("bad-pair", 401, error(20003, 401), "invalid", message="HTTP 401"),
        Answer(
            "test-credentials",
            403,
            error(20008, 403, "Resource not accessible with Test Account Credentials"),
            "unverifiable",
            message="test credentials",
        ),
        Answer(
            "suspended",
            403,
            error(20403, 403, "Forbidden"),
            "restricted",
            message="suspended or closed",
        ),
        Answer("other-403", 403, error(20005, 403, "Forbidden"), "restricted", message="HTTP 403"),
        Answer("proxy-page", 403, "<html>Forbidden</html>", "provider_error"),
        Answer("rate-limit", 429, error(20429, 429, "Too Many Requests"), "rate_limited"),
        Answer("not-found", 404, error(20404, 404, "Not found"), "provider_error"),
        Answer("outage", 503, error(20500, 503, "Service unavailable"), "provider_error"),
    ]

    def credentials(self):
        return dict(self.fixed)

    def assert_authenticated(self, request, credentials):
        assert basic_auth(request) == (credentials["account_sid"], credentials["auth_token"])


@pytest.mark.parametrize(
    ("status", "kind", "warning"),
    [
        ("suspended", "Full", "suspended"),
        ("closed", "Full", "closed"),
        ("paused", "Full", "not active"),
        ("active", "Trial", "trial account"),
    ],
)
def test_an_account_that_cannot_send_freely_is_valid_with_a_warning(mocked, status, kind, warning):
    credentials = fake()
    url = f"{BASE}/Accounts/{credentials['account_sid']}.json"
    mocked.get(url, json=account(credentials["account_sid"], status, kind))
    result = byok.test_credentials("twilio", credentials)
    assert result.status == "valid"
    assert len(result.warnings) == 1
    assert warning in result.warnings[0]


def test_an_active_full_account_has_no_warning(mocked):
    credentials = fake()
    url = f"{BASE}/Accounts/{credentials['account_sid']}.json"
    mocked.get(url, json=account(credentials["account_sid"]))
    assert byok.test_credentials("twilio", credentials).warnings == []


@pytest.mark.parametrize(
    ("credentials", "field", "problem"),
    [
        (
            {"account_sid": f"SK{rand(32, HEX)}", "auth_token": rand(32, HEX)},
            "account_sid",
            "API key SID",
        ),
        (
            {"account_sid": f"AC{rand(32, HEX)}", "auth_token": f"AC{rand(32, HEX)}"},
            "auth_token",
            "not the auth token",
        ),
        (
            {"account_sid": f"AC{rand(32, HEX)}", "auth_token": f"SK{rand(32, HEX)}"},
            "auth_token",
            "not the auth token",
        ),
        (
            {"account_sid": f"AC{rand(31, HEX)}", "auth_token": rand(32, HEX)},
            "account_sid",
            "must be AC followed by 32 hex",
        ),
        (
            {"account_sid": f"AC{rand(31, HEX)}g", "auth_token": rand(32, HEX)},
            "account_sid",
            "must be AC followed by 32 hex",
        ),
        (
            {"account_sid": f"AC{rand(14, HEX)}/../{rand(14, HEX)}", "auth_token": rand(32, HEX)},
            "account_sid",
            "must be AC followed by 32 hex",
        ),
        (
            {"account_sid": f"AC{'0' * 32}", "auth_token": rand(32, HEX)},
            "account_sid",
            "placeholder",
        ),
        (
            {"account_sid": f"AC{rand(32, HEX)}", "auth_token": rand(20, HEX)},
            "auth_token",
            "must be 32 to 64 letters or digits",
        ),
        (
            {"account_sid": f"AC{rand(32, HEX)}", "auth_token": rand(31, HEX) + "-"},
            "auth_token",
            "must be 32 to 64 letters or digits",
        ),
    ],
)
def test_format_errors(credentials, field, problem):
    result = byok.validate_credentials("twilio", credentials)
    assert not result.ok
    assert problem in " ".join(result.field_errors[field])
    for value in credentials.values():
        assert value not in " ".join(result.errors)


def test_an_api_key_sid_has_its_own_error_code():
    result = byok.validate_credentials(
        "twilio", {"account_sid": f"SK{rand(32, HEX)}", "auth_token": rand(32, HEX)}
    )
    assert [p.code for p in result.problems["account_sid"]] == ["wrong_kind"]


@pytest.mark.parametrize(
    ("credentials", "warning"),
    [
        ({"account_sid": f"AC{rand(31, HEX).upper()}F", "auth_token": rand(32, HEX)}, "lowercase"),
        ({"account_sid": f"AC{rand(32, HEX)}", "auth_token": rand(31, ALNUM) + "Z"}, "auth token"),
    ],
)
def test_unusual_shapes_are_only_warnings(credentials, warning):
    result = byok.validate_credentials("twilio", credentials)
    assert result.ok
    assert warning in result.warnings[0]


def test_a_malformed_sid_is_never_sent(mocked):
    credentials = {"account_sid": f"AC{rand(14, HEX)}/../{rand(14, HEX)}", "auth_token": "x"}
    assert byok.test_credentials("twilio", credentials).status == "format_invalid"
    assert len(mocked.calls) == 0


def test_the_fakes_pass_without_warning():
    result = byok.validate_credentials("twilio", fake())
    assert (result.ok, result.warnings) == (True, [])
