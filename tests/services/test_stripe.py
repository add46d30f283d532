import pytest

import byok

from fakes import rand
from probe_contract import Answer, ProbeContract

PROBE = "https://api.stripe.com/v1/balance"


def balance(livemode):
    return {
        "object": "balance",
        "available": [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}],
        "pending": [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}],
        "livemode": livemode,
    }


def error(kind, message):
    return {"error": {"type": kind, "message": message}}


NO_BALANCE_READ = error(
    "permission_error",
    "The provided key 'rk_test_***************************cdEf' does not have the required "
    "permissions for this endpoint on account 'acct_1AbCdEfGhIjKlMnO'. Having the "
    "'rak_balance_read' permission would allow this request to continue.",
)


class TestProbe(ProbeContract):
    service = "stripe"
    url = PROBE
    answers = [
        Answer("balance", 200, balance(False), "valid"),
        Answer(
            "bad-key",
            401,
            error("invalid_request_error", "Invalid API Key provided: sk_test_****AbCd"),
            "invalid",
        ),
        Answer(
            "missing-permission",
            403,
            NO_BALANCE_READ,
            "restricted",
            message="“rak_balance_read” permission",
        ),
        Answer(
            "unnamed-permission",
            403,
            error("permission_error", "The provided key does not have the permissions."),
            "restricted",
            message="may not read the balance",
        ),
        Answer("other-403", 403, error("invalid_request_error", "Forbidden"), "provider_error"),
        Answer("proxy-page", 403, "<html>Forbidden</html>", "provider_error"),
        Answer(
            "rate-limit",
            429,
            error("rate_limit_error", "Too many requests hit the API too quickly."),
            "rate_limited",
        ),
        Answer("server-error", 500, error("api_error", "Something went wrong."), "provider_error"),
    ]

    def assert_authenticated(self, request, credentials):
        assert request.headers["Authorization"] == f"Bearer {credentials}"


def test_the_restricted_message_names_the_permission_but_nothing_else(mocked):
    mocked.add("GET", PROBE, status=403, json=NO_BALANCE_READ)
    key = f"rk_test_{rand(99)}"
    result = byok.test_credentials("stripe", key)
    assert result.status == "restricted"
    assert "rak_balance_read" in result.message
    for fragment in ("acct_", "rk_test_", "cdEf", key):
        assert fragment not in result.message


# The key's mode (test or live) against the environment it is stored for.
MISMATCH = [
    ("sk_test_", "production", "test key"),
    ("rk_test_", "production", "test key"),
    ("sk_live_", "test", "live key"),
    ("rk_live_", "development", "live key"),
]
MATCH = [
    ("sk_test_", "test"),
    ("sk_test_", "development"),
    ("rk_live_", "production"),
    ("sk_live_", None),
    ("sk_test_", None),
    ("sk_live_", "staging"),
]


@pytest.mark.parametrize(("prefix", "environment", "warning"), MISMATCH)
def test_a_key_for_the_wrong_environment_is_a_warning(prefix, environment, warning):
    value = prefix + rand(99)
    result = byok.validate_credentials("stripe", value, environment=environment)
    assert result.ok
    assert len(result.warnings) == 1
    assert warning in result.warnings[0]
    assert value not in result.warnings[0]


@pytest.mark.parametrize(("prefix", "environment"), MATCH)
def test_a_key_for_its_own_environment_passes_without_warning(prefix, environment):
    result = byok.validate_credentials("stripe", prefix + rand(99), environment=environment)
    assert (result.ok, result.warnings) == (True, [])


@pytest.mark.parametrize(("prefix", "environment", "warning"), MISMATCH)
def test_the_probe_repeats_no_warning_the_format_gave(mocked, prefix, environment, warning):
    mocked.add("GET", PROBE, json=balance("live" in prefix))
    result = byok.test_credentials("stripe", prefix + rand(99), environment=environment)
    assert result.status == "valid"
    assert len(result.warnings) == 1
    assert warning in result.warnings[0]


@pytest.mark.parametrize(
    ("prefix", "livemode", "environment", "warning"),
    [
        ("sk_test_", True, "test", "live key"),
        ("sk_live_", False, "production", "test key"),
    ],
)
def test_livemode_is_compared_with_the_environment(mocked, prefix, livemode, environment, warning):
    mocked.add("GET", PROBE, json=balance(livemode))
    result = byok.test_credentials("stripe", prefix + rand(99), environment=environment)
    assert result.status == "valid"
    assert len(result.warnings) == 1
    assert warning in result.warnings[0]


@pytest.mark.parametrize(("prefix", "environment"), MATCH)
def test_livemode_matching_the_environment_gives_no_warning(mocked, prefix, environment):
    mocked.add("GET", PROBE, json=balance("live" in prefix))
    result = byok.test_credentials("stripe", prefix + rand(99), environment=environment)
    assert (result.status, result.warnings) == ("valid", [])


def test_a_balance_without_livemode_is_still_valid(mocked):
    mocked.add("GET", PROBE, json={"object": "balance"})
    result = byok.test_credentials("stripe", f"sk_live_{rand(99)}", environment="test")
    assert result.status == "valid"
    assert len(result.warnings) == 1  # from the key's prefix


@pytest.mark.parametrize(
    ("value", "problem", "code"),
    [
        (f"pk_live_{rand(99)}", "publishable key", "wrong_kind"),
        (f"pk_test_{rand(99)}", "publishable key", "wrong_kind"),
        (f"whsec_{rand(32)}", "webhook signing secret", "wrong_kind"),
        ("sk_test_" + "x" * 24, "placeholder", "placeholder"),
        ("sk_live_...AbCd", "masked", "masked"),
        (f"sk_prod_{rand(99)}", "must be sk_ or rk_", "format"),
        (f"task_test_{rand(30)}", "must be sk_ or rk_", "format"),
        (f"sk_test_{rand(6)}", "must be sk_ or rk_", "format"),
        (f"sk_test_{rand(248)}", "must be sk_ or rk_", "format"),
        (f"sk_test_{rand(40)}-{rand(40)}", "must be sk_ or rk_", "format"),
    ],
)
def test_format_errors(value, problem, code):
    result = byok.validate_credentials("stripe", value, environment="production")
    assert not result.ok
    assert problem in " ".join(result.errors)
    assert value not in " ".join(result.errors)
    assert [p.code for p in result.problems["api_key"]] == [code]


@pytest.mark.parametrize("value", [f"sk_test_{rand(24)}", f"rk_live_{rand(99)}"])
def test_old_and_current_keys_pass_without_warning(value):
    result = byok.validate_credentials("stripe", value)
    assert (result.ok, result.warnings) == (True, [])


def test_a_short_key_is_only_a_warning():
    value = f"sk_test_{rand(12)}"
    result = byok.validate_credentials("stripe", value)
    assert result.ok
    assert "shorter" in result.warnings[0]
    assert value not in result.warnings[0]
