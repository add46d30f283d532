"""Fake credentials in each built-in service's own format (its declaration in
byok/services/, summed up in docs/services.md): random, never real."""

import secrets
import string
import zlib

ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "_-"
HEX = "0123456789abcdef"
BASE32 = string.ascii_uppercase + "234567"
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def rand(length, alphabet=ALNUM):
    return "".join(secrets.choice(alphabet) for _ in range(length))


def github_checksum(body):
    crc = zlib.crc32(body.encode())
    digits = ""
    while crc:
        crc, digit = divmod(crc, 62)
        digits = BASE62[digit] + digits
    return digits.rjust(6, "0")


def github_token():
    body = rand(30)
    return f"ghp_{body}{github_checksum(body)}"


FAKES = {
    "openai": lambda: f"sk-proj-{rand(74, URLSAFE)}T3BlbkFJ{rand(74, URLSAFE)}",
    "anthropic": lambda: f"sk-ant-api03-{rand(93, URLSAFE)}AA",
    "resend": lambda: f"re_{rand(8)}_{rand(24)}",
    "sendgrid": lambda: f"SG.{rand(22, URLSAFE)}.{rand(43, URLSAFE)}",
    "twilio": lambda: {"account_sid": f"AC{rand(32, HEX)}", "auth_token": rand(32, HEX)},
    "stripe": lambda: f"sk_test_{rand(99)}",
    "google_analytics": lambda: {
        "measurement_id": f"G-{rand(10, string.ascii_uppercase + string.digits)}",
        "api_secret": rand(22, URLSAFE),
    },
    "mixpanel": lambda: {
        "project_token": rand(32, HEX),
        "service_account_username": f"ci.{rand(6, HEX)}.mp-service-account",
        "service_account_secret": rand(32),
    },
    "aws_s3": lambda: {
        "access_key_id": f"AKIA{rand(16, BASE32)}",
        "secret_access_key": rand(40, ALNUM + "/+"),
        "region": "eu-west-1",
        "bucket": "byok-test-bucket",
    },
    "cloudinary": lambda: {
        "cloud_name": f"cloud-{rand(8, string.ascii_lowercase)}",
        "api_key": rand(15, string.digits),
        "api_secret": rand(27, URLSAFE),
    },
    "github": github_token,
    "sentry": lambda: f"sntryu_{rand(64, HEX)}",
}


def fake_credentials(service):
    """A fresh random credential for ``service`` (a string or a field mapping)."""
    return FAKES[service]()


def secret_values(credentials):
    """Every value of a credential, as a list of strings."""
    if isinstance(credentials, str):
        return [credentials]
    return list(credentials.values())
