import pytest
from django.test import override_settings

import byok

from fakes import ALNUM, HEX, github_checksum, github_token, rand
from probe_contract import Answer, ProbeContract

PROBE = "https://api.github.com/user"
USER = {"login": "octocat", "id": 1, "type": "User"}


def message(text):
    return {"message": text, "documentation_url": "https://docs.github.com/rest"}


def token(prefix="ghp_"):
    body = rand(30)
    return f"{prefix}{body}{github_checksum(body)}"


def fine_grained():
    return f"github_pat_{rand(22)}_{rand(59)}"


def mistyped(value):
    """``value`` with one character of its body replaced."""
    index = 4 + len(value[4:-6]) // 2
    replacement = next(c for c in ALNUM if c != value[index])
    return value[:index] + replacement + value[index + 1 :]


class TestProbe(ProbeContract):
    service = "github"
    url = PROBE
    answers = [
        Answer("user", 200, USER, "valid"),
        Answer(
            "expiring",
            200,
            USER,
            "valid",
            headers={"github-authentication-token-expiration": "2031-02-03 04:05:06 UTC"},
        ),
        Answer("bad-credentials", 401, message("Bad credentials"), "invalid", message="revoked"),
        Answer(
            "rate-limit",
            403,
            message("API rate limit exceeded for user ID 1."),
            "rate_limited",
            headers={"x-ratelimit-remaining": "0", "x-ratelimit-limit": "5000"},
        ),
        Answer(
            "secondary-rate-limit",
            403,
            message("You have exceeded a secondary rate limit. Please wait a few minutes."),
            "rate_limited",
        ),
        Answer("retry-after", 403, message("Slow down."), "rate_limited", {"retry-after": "60"}),
        Answer(
            "secondary-429",
            429,
            message("You have exceeded a secondary rate limit."),
            "rate_limited",
            headers={"retry-after": "60"},
        ),
        Answer(
            "failed-login-lockout",
            403,
            message("Maximum number of login attempts exceeded. Please try again later."),
            "provider_error",
            message="try again later",
        ),
        Answer("proxy-page", 403, "<html>Forbidden</html>", "provider_error"),
        Answer("not-found", 404, message("Not Found"), "provider_error"),
        Answer("server-error", 502, "<html>Unicorn!</html>", "provider_error"),
    ]

    def assert_authenticated(self, request, credentials):
        assert request.headers["Authorization"] == f"Bearer {credentials}"
        assert request.headers["Accept"] == "application/vnd.github+json"
        assert request.headers["X-GitHub-Api-Version"] == "2022-11-28"


def test_the_expiry_date_is_a_warning(mocked):
    mocked.add(
        "GET",
        PROBE,
        json=USER,
        headers={"github-authentication-token-expiration": "2031-02-03 04:05:06 UTC"},
    )
    result = byok.test_credentials("github", github_token())
    assert result.status == "valid"
    assert result.warnings == ["This GitHub token expires on 2031-02-03: replace it before then."]


def test_an_odd_expiry_header_is_not_repeated(mocked):
    mocked.add(
        "GET", PROBE, json=USER, headers={"github-authentication-token-expiration": "<b>soon"}
    )
    result = byok.test_credentials("github", github_token())
    assert result.status == "valid"
    assert "has an expiry date" in result.warnings[0]
    assert "<b>" not in result.warnings[0]


def test_no_expiry_header_no_warning(mocked):
    mocked.add("GET", PROBE, json=USER)
    assert byok.test_credentials("github", github_token()).warnings == []


@override_settings(
    BYOK={
        "BASE_URLS": {"github": "https://ghe.example.com/api/v3"},
        "ALLOW_PRIVATE_BASE_URLS": True,
    }
)
def test_github_enterprise_server(mocked):
    mocked.add("GET", "https://ghe.example.com/api/v3/user", json=USER)
    assert byok.test_credentials("github", github_token()).status == "valid"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("ghx_" + rand(36), "must be"),
        ("ghp_" + rand(20), "must be"),
        ("ghp_" + rand(35) + "!", "must be"),
        ("ghp_" + rand(35) + "-", "must be"),
        ("github_pat_" + rand(20), "must be"),
        ("ghp_" + "x" * 36, "placeholder"),
        (rand(40, HEX.upper()), "must be"),
        (rand(39, HEX), "must be"),
        ("ghp_<your-token>", "placeholder"),
    ],
)
def test_format_errors(value, problem):
    result = byok.validate_credentials("github", value)
    assert not result.ok
    assert problem in " ".join(result.errors)
    assert value not in " ".join(result.errors)
    assert result.warnings == []


@pytest.mark.parametrize(
    ("value", "warning"),
    [
        (mistyped(github_token()), "checksum"),
        (token("gho_"), "an OAuth app token"),
        (token("ghu_"), "a GitHub App user token"),
        (token("ghs_"), "a GitHub App installation token"),
        (token("ghr_"), "a GitHub App refresh token"),
        (rand(40, HEX), "old-format"),
        ("ghp_" + rand(60), "usual length"),
        (fine_grained() + rand(3), "usual length"),
    ],
)
def test_format_warnings(value, warning):
    result = byok.validate_credentials("github", value)
    assert result.ok, result.errors
    assert len(result.warnings) == 1, result.warnings
    assert warning in result.warnings[0]
    assert value not in result.warnings[0]


def test_a_wrong_checksum_is_only_a_warning():
    good = github_token()
    for bad in (mistyped(good), good[:-1] + next(c for c in ALNUM if c != good[-1])):
        result = byok.validate_credentials("github", bad)
        assert result.ok
        assert "checksum" in " ".join(result.warnings)


def test_a_correct_checksum_passes_silently():
    for _ in range(20):
        result = byok.validate_credentials("github", github_token())
        assert (result.ok, result.warnings) == (True, [])


def test_an_installation_jwt_is_accepted_with_a_warning():
    value = f"ghs_{rand(120)}.{rand(200)}.{rand(86)}"
    result = byok.validate_credentials("github", value)
    assert result.ok
    assert any("installation token" in warning for warning in result.warnings)


@pytest.mark.parametrize("value", [github_token(), fine_grained()])
def test_valid_fakes_pass_without_warning(value):
    result = byok.validate_credentials("github", value)
    assert (result.ok, result.warnings) == (True, [])


def test_the_expiry_is_read_into_the_result(mocked):
    mocked.add(
        "GET",
        PROBE,
        json=USER,
        headers={"github-authentication-token-expiration": "2031-02-03 04:05:06 -0700"},
    )
    result = byok.test_credentials("github", github_token())
    assert result.expires_at.isoformat() == "2031-02-03T11:05:06+00:00"
    assert result.as_dict()["expires_at"] == "2031-02-03T11:05:06+00:00"


@pytest.mark.parametrize("header", ["<b>soon", "2031-02-30", ""])
def test_an_unreadable_expiry_is_none(mocked, header):
    mocked.add("GET", PROBE, json=USER, headers={"github-authentication-token-expiration": header})
    assert byok.test_credentials("github", github_token()).expires_at is None


def test_a_rejected_token_has_no_expiry(mocked):
    mocked.add(
        "GET",
        PROBE,
        status=401,
        json=message("Bad credentials"),
        headers={"github-authentication-token-expiration": "2031-02-03 04:05:06 UTC"},
    )
    assert byok.test_credentials("github", github_token()).expires_at is None
