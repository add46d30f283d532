"""The signer against vectors of AWS's Signature Version 4 test suite (2015-08-30 set).

Inputs and expected ``Authorization`` values are those of the suite's
``get-vanilla``, ``get-vanilla-query-order-key-case``, ``get-header-value-trim`` and
``post-x-www-form-urlencoded`` cases (docs.aws.amazon.com/general/latest/gr/
signature-v4-test-suite.html). The credentials are AWS's documented example pair.
"""

from datetime import datetime, timezone

import pytest

from byok.services.sigv4 import EMPTY_SHA256, sign

SUITE = {
    "access_key_id": "AKIDEXAMPLE",
    "secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "region": "us-east-1",
    "service": "service",
    "now": datetime(2015, 8, 30, 12, 36, tzinfo=timezone.utc),
}
SCOPE = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"


@pytest.mark.parametrize(
    ("method", "url", "headers", "body", "signed", "signature"),
    [
        (
            "GET",
            "https://example.amazonaws.com/",
            {},
            b"",
            "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        (
            "GET",
            "https://example.amazonaws.com/?Param2=value2&Param1=value1",
            {},
            b"",
            "host;x-amz-date",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
        (
            "GET",
            "https://example.amazonaws.com/",
            {"My-Header1": " value1 ", "My-Header2": ' "a   b   c" '},
            b"",
            "host;my-header1;my-header2;x-amz-date",
            "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
        ),
        (
            "POST",
            "https://example.amazonaws.com/",
            {"Content-Type": "application/x-www-form-urlencoded"},
            b"Param1=value1",
            "content-type;host;x-amz-date",
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        ),
    ],
    ids=[
        "get-vanilla",
        "get-vanilla-query-order-key-case",
        "get-header-value-trim",
        "post-x-www-form-urlencoded",
    ],
)
def test_aws_test_suite(method, url, headers, body, signed, signature):
    added = sign(method, url, headers, body, **SUITE)
    assert added["X-Amz-Date"] == "20150830T123600Z"
    assert added["Authorization"] == (
        f"AWS4-HMAC-SHA256 Credential={SCOPE}, SignedHeaders={signed}, Signature={signature}"
    )


def test_a_session_token_is_sent_and_signed():
    added = sign("GET", "https://example.amazonaws.com/", {}, b"", session_token="token", **SUITE)
    assert added["X-Amz-Security-Token"] == "token"
    assert "SignedHeaders=host;x-amz-date;x-amz-security-token," in added["Authorization"]


def test_any_change_changes_the_signature():
    base = sign("POST", "https://sts.amazonaws.com/", {}, b"Action=GetCallerIdentity", **SUITE)
    other_body = sign("POST", "https://sts.amazonaws.com/", {}, b"Action=Other", **SUITE)
    other_key = sign(
        "POST",
        "https://sts.amazonaws.com/",
        {},
        b"Action=GetCallerIdentity",
        **{**SUITE, "secret_access_key": "another"},
    )
    assert (
        len({base["Authorization"], other_body["Authorization"], other_key["Authorization"]}) == 3
    )


def test_empty_body_hash():
    assert EMPTY_SHA256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
