import string

import pytest

import byok

from fakes import URLSAFE, fake_credentials, rand
from probe_contract import Answer, ProbeContract, basic_auth

BASE = "https://api.cloudinary.com/v1_1"
HTML = {"Content-Type": "text/html; charset=utf-8"}


def fake():
    return fake_credentials("cloudinary")


def url_of(credentials):
    return "cloudinary://{api_key}:{api_secret}@{cloud_name}".format(**credentials)


def error(message):
    return {"error": {"message": message}}


class TestProbe(ProbeContract):
    service = "cloudinary"
    fixed = fake()
    url = f"{BASE}/{fixed['cloud_name']}/ping"
    answers = [
        Answer("pong", 200, {"status": "ok"}, "valid"),
        Answer("odd-200", 200, {"status": "maybe"}, "provider_error", message="usual"),
        Answer("html-200", 200, "<html>Welcome</html>", "provider_error", HTML),
        Answer(
            "unknown-key",
            401,
            error(f"Invalid api_key {rand(15, string.digits)}"),
            "invalid",
            message="API key",
        ),
        Answer(
            "unknown-cloud",
            401,
            error(f"Invalid cloud_name {rand(8, string.ascii_lowercase)}"),
            "invalid",
            message="cloud name",
        ),
        Answer(
            "bad-secret",
            401,
            error(f"api_secret mismatch for {rand(15, string.digits)}"),
            "invalid",
            message="API secret",
        ),
        Answer("unexplained-401", 401, {}, "invalid", message="HTTP 401"),
        Answer("html-401", 401, "<html>Unauthorized</html>", "invalid", HTML),
        Answer("not-allowed", 403, error("Not allowed"), "restricted", message="Admin API"),
        Answer("proxy-403", 403, "<html>Forbidden</html>", "provider_error", HTML),
        Answer("no-such-cloud", 404, error("Not found"), "invalid", message="cloud name"),
        Answer("rate-limited-420", 420, error("Rate Limit Exceeded"), "rate_limited"),
        Answer("rate-limited-429", 429, error("Rate Limit Exceeded"), "rate_limited"),
        Answer("bad-request", 400, error("Bad request"), "provider_error"),
        Answer("outage", 500, error("General error"), "provider_error"),
    ]

    def credentials(self):
        return dict(self.fixed)

    def assert_authenticated(self, request, credentials):
        assert basic_auth(request) == (credentials["api_key"], credentials["api_secret"])


def pasted(form, credentials):
    url = url_of(credentials)
    return {
        "whole": url,
        "env-line": f"CLOUDINARY_URL={url}",
        "quoted-env-line": f'CLOUDINARY_URL="{url}"',
        "with-options": f"{url}?secure=true",
        "in-the-secret-field": {"cloud_name": "", "api_key": "", "api_secret": url},
        "in-the-cloud-name-field": {"cloud_name": f"CLOUDINARY_URL={url}"},
        "with-matching-fields": {**credentials, "api_secret": url},
    }[form]


FORMS = [
    "whole",
    "env-line",
    "quoted-env-line",
    "with-options",
    "in-the-secret-field",
    "in-the-cloud-name-field",
    "with-matching-fields",
]


@pytest.mark.parametrize("form", FORMS)
def test_a_pasted_cloudinary_url_is_split_into_the_fields(form):
    credentials = fake()
    result = byok.validate_credentials("cloudinary", pasted(form, credentials))
    assert (result.ok, result.warnings) == (True, [])
    assert result.credentials == credentials


def test_a_pasted_url_is_tested_with_its_parts(mocked):
    credentials = fake()
    mocked.get(f"{BASE}/{credentials['cloud_name']}/ping", json={"status": "ok"})
    assert byok.test_credentials("cloudinary", f"CLOUDINARY_URL={url_of(credentials)}").ok
    assert basic_auth(mocked.calls[0].request) == (
        credentials["api_key"],
        credentials["api_secret"],
    )


def test_a_url_that_disagrees_with_the_other_fields_is_refused():
    credentials = fake()
    value = {**credentials, "cloud_name": "other-cloud", "api_secret": url_of(credentials)}
    result = byok.validate_credentials("cloudinary", value)
    assert [p.code for p in result.problems["api_secret"]] == ["conflict"]
    assert credentials["api_secret"] not in " ".join(result.errors)


@pytest.mark.parametrize(
    "value",
    [
        "https://{api_key}:{api_secret}@{cloud_name}",
        "CLOUDINARY_URL=https://{api_key}:{api_secret}@{cloud_name}",
        "cloudinary://{api_key}@{cloud_name}",
        "cloudinary://{api_key}:{api_secret}",
        "{api_key}:{api_secret}@{cloud_name}",
        "{api_secret}",
    ],
)
def test_a_string_that_is_not_a_cloudinary_url_is_refused_clearly(value):
    value = value.format(**fake())
    result = byok.validate_credentials("cloudinary", value)
    assert not result.ok
    assert "cloudinary://" in " ".join(result.errors)
    assert value not in " ".join(result.errors)


@pytest.mark.parametrize("field", ["cloud_name", "api_key", "api_secret"])
@pytest.mark.parametrize(
    "url", ["https://{api_key}:{api_secret}@{cloud_name}", "cloudinary://{api_key}@{cloud_name}"]
)
def test_another_url_in_a_field_is_refused_clearly(field, url):
    credentials = fake()
    value = url.format(**credentials)
    result = byok.validate_credentials("cloudinary", {**credentials, field: value})
    assert "cloudinary://" in " ".join(result.field_errors[field])
    assert value not in " ".join(result.errors)


def replace(field, value):
    return {**fake(), field: value}


@pytest.mark.parametrize(
    ("credentials", "field", "problem"),
    [
        (replace("cloud_name", "my.cloud"), "cloud_name", "must be 2 to 64"),
        (replace("cloud_name", "a/../b"), "cloud_name", "must be 2 to 64"),
        (replace("cloud_name", "cloud?x=1"), "cloud_name", "must be 2 to 64"),
        (replace("cloud_name", "-cloud"), "cloud_name", "must be 2 to 64"),
        (replace("cloud_name", "c" + rand(64, string.ascii_lowercase)), "cloud_name", "2 to 64"),
        (replace("api_key", rand(9, string.digits)), "api_key", "must be 10 to 20 digits"),
        (replace("api_key", rand(14, string.digits) + "a"), "api_key", "must be 10 to 20"),
        (replace("api_secret", rand(19, URLSAFE)), "api_secret", "must be 20 to 64"),
        (replace("api_secret", rand(26) + "+"), "api_secret", "must be 20 to 64"),
        (replace("api_secret", "x" * 27), "api_secret", "placeholder"),
        (
            {"cloud_name": "demo-cloud", "api_key": rand(27), "api_secret": rand(15, "123456789")},
            "api_key",
            "swapped",
        ),
    ],
)
def test_format_errors(credentials, field, problem):
    result = byok.validate_credentials("cloudinary", credentials)
    assert not result.ok
    assert problem in " ".join(result.field_errors[field])
    for value in credentials.values():
        assert value not in " ".join(result.errors)


def test_a_cloud_name_that_would_change_the_url_is_never_sent(mocked):
    result = byok.test_credentials("cloudinary", replace("cloud_name", "a/../../b"))
    assert result.status == "format_invalid"
    assert len(mocked.calls) == 0


@pytest.mark.parametrize(
    ("credentials", "warning"),
    [
        (replace("cloud_name", "my_cloud"), "cloud name"),
        (replace("api_key", rand(12, string.digits)), "usually 15 digits"),
        (replace("api_secret", rand(32, URLSAFE)), "usually 27 characters"),
    ],
)
def test_unusual_shapes_are_only_warnings(credentials, warning):
    result = byok.validate_credentials("cloudinary", credentials)
    assert result.ok
    assert warning in result.warnings[0]


def test_the_fakes_pass_without_warning():
    result = byok.validate_credentials("cloudinary", fake())
    assert (result.ok, result.warnings) == (True, [])
