from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import requests
from django.test import override_settings

import byok
from byok.services.sigv4 import EMPTY_SHA256

from fakes import BASE32, HEX, fake_credentials, rand, secret_values
from probe_contract import Answer, ProbeContract

STS = "https://sts.amazonaws.com/"
SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+"


def identity():
    account = rand(12, "0123456789")
    return (
        '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        "<GetCallerIdentityResult>"
        f"<Arn>arn:aws:iam::{account}:user/byok</Arn><UserId>AIDA{rand(17, BASE32)}</UserId>"
        f"<Account>{account}</Account>"
        "</GetCallerIdentityResult>"
        f"<ResponseMetadata><RequestId>{rand(8, HEX)}</RequestId></ResponseMetadata>"
        "</GetCallerIdentityResponse>"
    )


def error(code, kind="Sender"):
    return (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        f"<Error><Type>{kind}</Type><Code>{code}</Code><Message>Refused.</Message></Error>"
        f"<RequestId>{rand(8, HEX)}</RequestId></ErrorResponse>"
    )


def key_pair(**extra):
    return {
        "access_key_id": f"AKIA{rand(16, BASE32)}",
        "secret_access_key": rand(40, SECRET_ALPHABET),
        **extra,
    }


def temporary(**extra):
    return key_pair(
        **{
            "access_key_id": f"ASIA{rand(16, BASE32)}",
            "session_token": rand(356, SECRET_ALPHABET) + "==",
            **extra,
        }
    )


class TestProbe(ProbeContract):
    service = "aws_s3"
    method = "POST"
    url = STS
    answers = [
        Answer("identity", 200, identity(), "valid", message="S3 was not checked"),
        Answer(
            "unknown-key-id", 403, error("InvalidClientTokenId"), "invalid", message="access key"
        ),
        Answer(
            "json-error",
            403,
            {"Error": {"Code": "InvalidClientTokenId", "Type": "Sender"}},
            "invalid",
            message="access key",
        ),
        Answer("wrong-secret", 403, error("SignatureDoesNotMatch"), "invalid", message="secret"),
        Answer("expired-token", 403, error("ExpiredToken"), "invalid", message="expired"),
        Answer(
            "expired-token-exception",
            403,
            error("ExpiredTokenException"),
            "invalid",
            message="expired",
        ),
        Answer("clock", 400, error("RequestExpired"), "provider_error", message="clock"),
        Answer("throttling", 400, error("Throttling"), "rate_limited"),
        Answer("throttling-exception", 400, error("ThrottlingException"), "rate_limited"),
        Answer("unknown-refusal", 403, error("AccessDenied"), "provider_error"),
        Answer("other-400", 400, error("InvalidAction"), "provider_error"),
        Answer("proxy-page", 403, "<html>Forbidden</html>", "provider_error"),
        Answer("internal", 500, error("InternalFailure", "Receiver"), "provider_error"),
        Answer("unavailable", 503, error("ServiceUnavailable", "Receiver"), "provider_error"),
    ]

    def credentials(self):
        # Without a bucket and region, so that only STS is called.
        return key_pair()

    def assert_authenticated(self, request, credentials):
        authorization = request.headers["Authorization"]
        assert authorization.startswith(
            f"AWS4-HMAC-SHA256 Credential={credentials['access_key_id']}/"
        )
        assert "/us-east-1/sts/aws4_request" in authorization
        assert request.body == b"Action=GetCallerIdentity&Version=2011-06-15"
        assert request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
        assert "X-Amz-Date" in request.headers
        secret = credentials["secret_access_key"]
        assert all(secret not in value for value in request.headers.values())
        assert secret.encode() not in request.body


class TestSignatureRetry:
    """STS refuses a valid signature shortly after one made with another secret."""

    def test_a_second_try_can_succeed(self, mocked):
        mocked.add("POST", STS, status=403, body=error("SignatureDoesNotMatch"))
        mocked.add("POST", STS, status=200, body=identity())
        result = byok.test_credentials("aws_s3", key_pair())
        assert result.status == "valid"
        assert len(mocked.calls) == 2

    def test_two_refusals_are_invalid(self, mocked):
        mocked.add("POST", STS, status=403, body=error("SignatureDoesNotMatch"))
        result = byok.test_credentials("aws_s3", key_pair())
        assert result.status == "invalid"
        assert len(mocked.calls) == 2

    @pytest.mark.parametrize(
        "date",
        [
            format_datetime(datetime.now(timezone.utc) - timedelta(hours=1), usegmt=True),
            format_datetime(datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(hours=1)),
        ],
        ids=["an-hour-behind", "an-hour-ahead-no-zone"],
    )
    def test_a_refusal_from_a_clock_far_off_is_not_retried_nor_invalid(self, mocked, date):
        mocked.add(
            "POST", STS, status=403, body=error("SignatureDoesNotMatch"), headers={"Date": date}
        )
        result = byok.test_credentials("aws_s3", key_pair())
        assert result.status == "provider_error"
        assert "clock" in result.message
        assert len(mocked.calls) == 1

    def test_a_recent_date_does_not_blame_the_clock(self, mocked):
        mocked.add(
            "POST",
            STS,
            status=403,
            body=error("InvalidClientTokenId"),
            headers={"Date": format_datetime(datetime.now(timezone.utc), usegmt=True)},
        )
        assert byok.test_credentials("aws_s3", key_pair()).status == "invalid"


@pytest.mark.parametrize(
    ("region", "url"),
    [
        ("eu-west-1", "https://sts.eu-west-1.amazonaws.com/"),
        ("us-gov-west-1", "https://sts.us-gov-west-1.amazonaws.com/"),
        ("cn-north-1", "https://sts.cn-north-1.amazonaws.com.cn/"),
    ],
)
def test_a_region_uses_its_own_sts_host_and_signing_region(mocked, region, url):
    mocked.add("POST", url, status=200, body=identity())
    result = byok.test_credentials("aws_s3", key_pair(region=region))
    assert result.status == "valid"
    assert f"/{region}/sts/aws4_request" in mocked.calls[0].request.headers["Authorization"]


def test_a_session_token_is_sent_and_signed(mocked):
    mocked.add("POST", STS, status=200, body=identity())
    credentials = temporary()
    assert byok.test_credentials("aws_s3", credentials).status == "valid"
    request = mocked.calls[0].request
    assert request.headers["X-Amz-Security-Token"] == credentials["session_token"]
    assert "x-amz-security-token" in request.headers["Authorization"]
    assert credentials["secret_access_key"] not in str(request.headers)


@override_settings(
    BYOK={"BASE_URLS": {"aws_s3": "https://sts.internal.example"}, "ALLOW_PRIVATE_BASE_URLS": True}
)
def test_a_configured_base_url_is_used_and_the_bucket_is_not_checked(mocked):
    mocked.add("POST", "https://sts.internal.example/", status=200, body=identity())
    credentials = key_pair(region="eu-west-1", bucket="byok-test-bucket")
    result = byok.test_credentials("aws_s3", credentials)
    assert result.status == "valid"
    assert "bucket was not checked" in result.message
    assert len(mocked.calls) == 1
    assert "/eu-west-1/sts/aws4_request" in mocked.calls[0].request.headers["Authorization"]


class TestHeadBucket:
    STS = "https://sts.eu-west-1.amazonaws.com/"
    BUCKET = "https://byok-test-bucket.s3.eu-west-1.amazonaws.com/"

    def probe(self, mocked, status=None, headers=None, body=None, credentials=None):
        mocked.add("POST", self.STS, status=200, body=identity())
        if body is None:
            mocked.add("HEAD", self.BUCKET, status=status, headers=headers or {})
        else:
            mocked.add("HEAD", self.BUCKET, body=body)
        credentials = credentials or fake_credentials("aws_s3")
        result = byok.test_credentials("aws_s3", credentials)
        for value in secret_values(credentials):
            assert value not in str(result.as_dict())
        return result

    def test_a_reachable_bucket_is_valid(self, mocked):
        result = self.probe(mocked, 200)
        assert (result.status, result.warnings) == ("valid", [])
        assert "can reach the bucket" in result.message
        request = mocked.calls[1].request
        assert request.method == "HEAD"
        assert request.headers["x-amz-content-sha256"] == EMPTY_SHA256
        authorization = request.headers["Authorization"]
        assert "/eu-west-1/s3/aws4_request" in authorization
        assert "x-amz-content-sha256" in authorization

    def test_a_forbidden_bucket_is_restricted(self, mocked):
        result = self.probe(mocked, 403)
        assert result.status == "restricted"
        assert "s3:ListBucket" in result.message

    def test_a_missing_bucket_is_restricted(self, mocked):
        result = self.probe(mocked, 404)
        assert result.status == "restricted"
        assert "bucket was not found" in result.message

    def test_a_bucket_in_another_region_is_named(self, mocked):
        result = self.probe(mocked, 301, {"x-amz-bucket-region": "ap-southeast-2"})
        assert result.status == "restricted"
        assert "another region (ap-southeast-2)" in result.message

    def test_a_strange_region_header_is_not_repeated(self, mocked):
        result = self.probe(mocked, 301, {"x-amz-bucket-region": "<script>"})
        assert result.status == "restricted"
        assert "another region:" in result.message
        assert "<script>" not in result.message

    @pytest.mark.parametrize("status", [400, 429, 500])
    def test_another_answer_keeps_the_key_valid_with_a_warning(self, mocked, status):
        result = self.probe(mocked, status)
        assert result.status == "valid"
        assert f"HTTP {status}" in result.warnings[0]

    def test_unreachable_s3_keeps_the_key_valid_with_a_warning(self, mocked):
        result = self.probe(mocked, body=requests.ConnectionError("refused"))
        assert result.status == "valid"
        assert "could not be reached" in result.warnings[0]

    def test_an_invalid_key_is_not_sent_to_s3(self, mocked):
        mocked.add("POST", self.STS, status=403, body=error("InvalidClientTokenId"))
        result = byok.test_credentials("aws_s3", fake_credentials("aws_s3"))
        assert result.status == "invalid"
        assert len(mocked.calls) == 1

    def test_a_dotted_bucket_is_addressed_by_path(self, mocked):
        mocked.add("POST", self.STS, status=200, body=identity())
        mocked.add("HEAD", "https://s3.eu-west-1.amazonaws.com/files.example.com", status=200)
        credentials = key_pair(region="eu-west-1", bucket="files.example.com")
        assert byok.test_credentials("aws_s3", credentials).status == "valid"
        assert len(mocked.calls) == 2

    def test_temporary_credentials_sign_the_bucket_check_too(self, mocked):
        credentials = temporary(region="eu-west-1", bucket="byok-test-bucket")
        result = self.probe(mocked, 200, credentials=credentials)
        assert result.status == "valid"
        request = mocked.calls[1].request
        assert request.headers["X-Amz-Security-Token"] == credentials["session_token"]


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"access_key_id": f"akia{rand(16, BASE32)}"}, "access_key_id", "must be"),
        ({"access_key_id": "AKIA" + rand(8, BASE32)}, "access_key_id", "must be"),
        ({"access_key_id": f"AKIA{rand(9, BASE32)}EXAMPLE"}, "access_key_id", "placeholder"),
        ({"secret_access_key": rand(39, SECRET_ALPHABET) + "!"}, "secret_access_key", "must be"),
        ({"secret_access_key": rand(12)}, "secret_access_key", "must be"),
        ({"region": "EU-WEST-1"}, "region", "must be"),
        ({"region": "eu-west-1.evil.example"}, "region", "must be"),
        ({"region": "eu-west-1/"}, "region", "must be"),
        ({"region": "evil.example#"}, "region", "must be"),
        ({"bucket": "My_Bucket"}, "bucket", "must be"),
        ({"bucket": "ab"}, "bucket", "must be"),
        ({"bucket": "-bucket"}, "bucket", "must be"),
        ({"bucket": "files..example"}, "bucket", "must be"),
        ({"bucket": "192.168.10.20"}, "bucket", "must be"),
        ({"bucket": "evil.example/x"}, "bucket", "must be"),
        ({"bucket": "evil.example#"}, "bucket", "must be"),
        ({"bucket": rand(64, "abcdefghijklmnopqrstuvwxyz")}, "bucket", "must be"),
        ({"session_token": "not a token!"}, "session_token", "must be"),
    ],
)
def test_format_errors(changes, field, problem):
    credentials = {**fake_credentials("aws_s3"), **changes}
    result = byok.validate_credentials("aws_s3", credentials)
    assert not result.ok
    assert problem in " ".join(result.field_errors[field])
    assert changes[field] not in " ".join(result.errors)


def test_a_temporary_key_needs_its_session_token():
    credentials = temporary()
    del credentials["session_token"]
    result = byok.validate_credentials("aws_s3", credentials)
    assert "session token" in " ".join(result.field_errors["session_token"])
    assert result.problems["session_token"][0].code == "required"


@pytest.mark.parametrize(
    ("changes", "warning"),
    [
        ({"access_key_id": f"AKIA{rand(15, BASE32)}0"}, "usual shape"),
        ({"access_key_id": f"AKIA{rand(20, BASE32)}"}, "usual shape"),
        ({"secret_access_key": rand(41, SECRET_ALPHABET)}, "usually 40"),
        (temporary(session_token=rand(40, SECRET_ALPHABET)), "several hundred"),
        ({"region": None}, "region too"),
        ({"session_token": rand(400, SECRET_ALPHABET)}, "leave it empty"),
    ],
)
def test_format_warnings(changes, warning):
    credentials = {**fake_credentials("aws_s3"), **changes}
    credentials = {name: value for name, value in credentials.items() if value is not None}
    result = byok.validate_credentials("aws_s3", credentials)
    assert result.ok, result.errors
    assert len(result.warnings) == 1
    assert warning in result.warnings[0]
    for value in secret_values(credentials):
        assert value not in result.warnings[0]


@pytest.mark.parametrize(
    "credentials",
    [
        fake_credentials("aws_s3"),
        key_pair(),
        key_pair(region="us-east-1"),
        key_pair(region="eu-central-2", bucket="files.example.com"),
        temporary(),
    ],
)
def test_valid_fakes_pass_without_warning(credentials):
    result = byok.validate_credentials("aws_s3", credentials)
    assert (result.ok, result.warnings) == (True, [])
