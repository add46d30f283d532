"""AWS S3: an access key pair, optionally a session token, region and bucket.

The key pair is tested with STS ``GetCallerIdentity``, which every live key may
call whatever its policies; when a bucket and its region are given, an S3
``HeadBucket`` then tells whether the key can reach that bucket. Both requests
are signed here with Signature V4 (:mod:`byok.services.sigv4`), without boto3.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from email.utils import parsedate_to_datetime

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from byok import http
from byok.conf import conf
from byok.http import ProbeClient, ProbeRequest, ProbeResponse, Unreachable
from byok.results import ProbeResult, ProbeStatus
from byok.services.answers import ACCEPTED, Answer
from byok.services.auth import SigV4
from byok.services.base import CredentialField, Service
from byok.services.formats import Format, FormatReport, ValidationResult
from byok.services.sigv4 import EMPTY_SHA256, sign

#: An AWS region name, such as ``eu-west-1`` or ``us-gov-west-1``. It becomes part of a
#: host name, so nothing else gets through.
REGION = r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}"
_REGION = re.compile(REGION)

STS_BODY = b"Action=GetCallerIdentity&Version=2011-06-15"
STS_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
GLOBAL_STS = "https://sts.amazonaws.com"
GLOBAL_STS_REGION = "us-east-1"

# AWS error codes (AWS "Common Errors"; STS API reference) the probe reads.
UNKNOWN_KEY = "InvalidClientTokenId"
WRONG_SIGNATURE = "SignatureDoesNotMatch"
EXPIRED_TOKEN = ("ExpiredToken", "ExpiredTokenException")
CLOCK_OFF = ("RequestExpired", "RequestTimeTooSkewed")
THROTTLED = ("Throttling", "ThrottlingException")

#: How far AWS's clock (its answer's ``Date``) may be from ours: beyond this AWS refuses
#: every signature, so a refusal says nothing about the key.
CLOCK_TOLERANCE = timedelta(minutes=15)

_XML_CODE = re.compile(rb"<Code>\s*([A-Za-z0-9.]{1,100})\s*</Code>")


def domain_for(region: str) -> str:
    """AWS's domain in ``region``'s partition: China regions live under amazonaws.com.cn."""
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def clock_is_off(response: ProbeResponse) -> bool:
    """Whether the answer's ``Date`` shows this server's clock is too far from AWS's."""
    try:
        stamp = parsedate_to_datetime(response.headers.get("Date", ""))
    except (TypeError, ValueError, IndexError):
        return False
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return abs(datetime.now(timezone.utc) - stamp) > CLOCK_TOLERANCE


class AWSS3(Service):
    id = "aws_s3"
    name = "AWS S3"
    category = "storage"
    description = _("Object storage for files, backups and static assets, in your own buckets.")
    icon = "byok/icons/aws_s3.svg"
    docs_url = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/Welcome.html"
    create_key_url = "https://console.aws.amazon.com/iam/home#/users"
    pricing = _(
        "Pay as you go, per gigabyte stored, per request and per gigabyte sent out; "
        "prices depend on the region and the storage class."
    )
    free_tier = _(
        "New AWS accounts get a limited free tier; its terms change, so check AWS's current offer."
    )
    setup_minutes = 15
    difficulty = "advanced"
    benefits = (
        _("Files stay in a bucket you own"),
        _("Storage billed straight to your AWS account"),
        _("Your own IAM policy decides what the key may do"),
        _("You choose the region your data lives in"),
    )
    setup_steps = (
        _("Sign in to the AWS console and open IAM."),
        _("Create a user whose policy allows only the bucket it needs."),
        _(
            "Under “Security credentials”, create an access key and copy both parts: "
            "the secret is shown once."
        ),
        _("Paste it here and choose “Add & test key”."),
    )
    fields = (
        CredentialField(
            "access_key_id",
            _("Access key ID"),
            env=("AWS_ACCESS_KEY_ID",),
            secret=False,
            help_text=_("20 characters starting with AKIA (or ASIA for a temporary key)."),
        ),
        CredentialField(
            "secret_access_key",
            _("Secret access key"),
            env=("AWS_SECRET_ACCESS_KEY",),
            help_text=_("40 characters, shown once when the access key is created."),
        ),
        CredentialField(
            "region",
            _("Region"),
            env=("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_S3_REGION_NAME"),
            secret=False,
            required=False,
            help_text=_("The bucket's region, such as eu-west-1."),
        ),
        CredentialField(
            "bucket",
            _("Bucket"),
            env=("AWS_S3_BUCKET", "AWS_STORAGE_BUCKET_NAME"),
            secret=False,
            required=False,
            help_text=_("With the region, byok checks that the key can reach this bucket."),
        ),
        CredentialField(
            "session_token",
            _("Session token"),
            env=("AWS_SESSION_TOKEN",),
            required=False,
            help_text=_("Only for a temporary key (one starting with ASIA)."),
        ),
    )
    formats = {
        "access_key_id": Format(
            # AWS reserves IDs of 16 to 128 word characters (botocore's STS model).
            loose=r"[A-Z0-9]{16,128}",
            strict=r"(?:AKIA|ASIA)[A-Z2-7]{16}",
            shape=_("16 to 128 capital letters and digits"),
            strict_note=_(
                "The AWS access key ID does not have the usual shape (AKIA or ASIA and 16 "
                "more letters and digits): check that it was copied whole."
            ),
        ),
        "secret_access_key": Format(
            loose=r"[A-Za-z0-9/+]{20,128}",
            strict=r"[A-Za-z0-9/+]{40}",
            shape=_("20 to 128 letters, digits, / or +"),
            strict_note=_(
                "An AWS secret access key is usually 40 characters long: check that it was "
                "copied whole."
            ),
        ),
        # The region and the bucket become part of the probe's host name: exact patterns.
        "region": Format(
            loose=REGION,
            shape=_("an AWS region name such as eu-west-1"),
        ),
        "bucket": Format(
            # AWS's naming rules: 3 to 63 lowercase letters, digits, hyphens and single
            # dots, a letter or digit at each end, not an IP address.
            loose=r"(?!\d+(?:\.\d+){3}$)[a-z0-9](?:[a-z0-9-]|\.(?!\.)){1,61}[a-z0-9]",
            shape=_(
                "a bucket name: 3 to 63 lowercase letters, digits, hyphens and dots, "
                "starting and ending with a letter or digit"
            ),
        ),
        "session_token": Format(
            # AWS sets no maximum size; base64 text.
            loose=r"[A-Za-z0-9/+=]{20,}",
            strict=r"[A-Za-z0-9/+=]{100,}",
            shape=_("base64 text (letters, digits, /, + and =)"),
            strict_note=_(
                "AWS session tokens are usually several hundred characters long: check that "
                "it was copied whole."
            ),
        ),
    }
    default_cost_per_call = Decimal("0.000005")
    # The probe's host (STS); calls go to S3 (:meth:`api_url`).
    base_url = GLOBAL_STS
    authentication = SigV4("s3", default_region=GLOBAL_STS_REGION)
    key_prefixes = ("AKIA", "ASIA")
    # The access key id is what the AWS console shows to tell keys apart.
    hint_field = "access_key_id"

    answers = (
        Answer(
            ACCEPTED,
            ProbeStatus.VALID,
            _(
                "AWS accepted the key pair; access to S3 was not checked (give a bucket "
                "and its region to check it)."
            ),
            html=True,
        ),
        Answer(
            (400, 403),
            ProbeStatus.PROVIDER_ERROR,
            _(
                "AWS refused the request because this server's clock is off by more than "
                "a few minutes; the key was not judged. The site's administrators need "
                "to fix the clock (NTP)."
            ),
            code=CLOCK_OFF,
            html=True,
        ),
        Answer(
            403,
            ProbeStatus.INVALID,
            _(
                "AWS does not know this access key ID, or it was deactivated or deleted "
                "(for a temporary key: the session token does not match)."
            ),
            code=UNKNOWN_KEY,
            html=True,
        ),
        Answer(
            403,
            ProbeStatus.INVALID,
            _("AWS rejected the secret access key: it does not belong to this access key ID."),
            code=WRONG_SIGNATURE,
            html=True,
        ),
        Answer(
            403,
            ProbeStatus.INVALID,
            _(
                "These temporary credentials have expired: get a new access key, secret "
                "and session token."
            ),
            code=EXPIRED_TOKEN,
            html=True,
        ),
        Answer(400, ProbeStatus.RATE_LIMITED, code=THROTTLED, html=True),
        # Not an answer about the key that byok knows how to read: don't judge it.
        Answer((400, 403), ProbeStatus.PROVIDER_ERROR, html=True),
    )

    def check(
        self, credentials: dict[str, str], report: FormatReport, environment: str | None
    ) -> None:
        key_id = credentials.get("access_key_id", "")
        token = credentials.get("session_token")
        if key_id.startswith("ASIA") and not token:
            report.error(
                "session_token",
                _(
                    "This is a temporary access key (it starts with ASIA): it works only "
                    "together with its session token, so paste that too."
                ),
                code="required",
            )
        elif key_id.startswith("AKIA") and token:
            report.warn(
                _(
                    "A session token goes with a temporary key (ASIA…); this long-term key "
                    "(AKIA…) needs none, and AWS refuses the pair with one: leave it empty."
                )
            )
        if credentials.get("bucket") and not credentials.get("region"):
            report.warn(
                _("Give the bucket's region too, so that byok can check the key can reach it.")
            )

    def api_url(self, credentials: Mapping[str, str] | None = None) -> str:
        """S3 in the credential's region (``us-east-1`` without one), addressed by path
        (``/bucket/key``); ``BYOK["BASE_URLS"]`` replaces it (an S3-compatible store)."""
        configured = conf.BASE_URLS.get(self.id)
        if configured:
            return str(configured).rstrip("/")
        region = (credentials or {}).get("region") or GLOBAL_STS_REGION
        if not _REGION.fullmatch(region):
            raise ValueError("The AWS region is not a region name such as eu-west-1.")
        return f"https://s3.{region}.{domain_for(region)}"

    def error_code(self, response: ProbeResponse) -> str:
        """The AWS error code, from the XML (or JSON) answer; a clock that is off reads as
        ``RequestTimeTooSkewed`` whatever the code: AWS then refuses every signature."""
        if response.status in (400, 403) and clock_is_off(response):
            return "RequestTimeTooSkewed"
        error = response.json_dict().get("Error")
        if isinstance(error, dict) and isinstance(error.get("Code"), str):
            return str(error["Code"])
        match = _XML_CODE.search(response.body)
        return match.group(1).decode() if match else ""

    @sensitive_variables()
    def probe(self, checked: ValidationResult, http_client: ProbeClient) -> ProbeResult:
        """STS ``GetCallerIdentity`` (twice if the signature looks wrong), then, for a
        bucket and its region, S3 ``HeadBucket``."""
        credentials = checked.credentials
        region = credentials.get("region")
        response = self.call_sts(credentials, region, http_client)
        if response.status == 403 and self.error_code(response) == WRONG_SIGNATURE:
            # STS refuses a signature for ~5 s after one made with another secret for the
            # same key ID (a user fixing a typo, say): a second try tells the cases apart.
            time.sleep(http.RETRY_PAUSE)
            response = self.call_sts(credentials, region, http_client)
        result = self.read_answer(response, checked)
        bucket = credentials.get("bucket")
        if result.status is not ProbeStatus.VALID or not (bucket and region):
            return result
        if http_client.overridden:
            # The bucket's host is AWS's own; a configured endpoint may stand in for it.
            return self.result(
                ProbeStatus.VALID,
                response,
                gettext(
                    "AWS accepted the key pair; access to the bucket was not checked, as this "
                    "site uses its own AWS endpoint."
                ),
            )
        return self.head_bucket(bucket, region, credentials, http_client)

    @sensitive_variables()
    def call_sts(
        self, credentials: dict[str, str], region: str | None, http_client: ProbeClient
    ) -> ProbeResponse:
        """``GetCallerIdentity``, at the region's STS host when a region is given."""
        base_url = f"https://sts.{region}.{domain_for(region)}" if region else GLOBAL_STS
        headers = {"Content-Type": STS_CONTENT_TYPE}
        headers |= signature(
            "POST",
            http_client.url("/", base_url),
            headers,
            STS_BODY,
            credentials,
            region=region or GLOBAL_STS_REGION,
            service="sts",
        )
        request = ProbeRequest("POST", "/", headers=headers, data=STS_BODY, base_url=base_url)
        return http_client.send(request)

    @sensitive_variables()
    def head_bucket(
        self, bucket: str, region: str, credentials: dict[str, str], http_client: ProbeClient
    ) -> ProbeResult:
        """Whether the key, which STS just accepted, can reach the bucket."""
        if "." in bucket:
            # A dotted name breaks TLS on the bucket's own host name: address it by path.
            base_url, path = f"https://s3.{region}.{domain_for(region)}", f"/{bucket}"
        else:
            base_url, path = f"https://{bucket}.s3.{region}.{domain_for(region)}", "/"
        headers = {"x-amz-content-sha256": EMPTY_SHA256}
        headers |= signature(
            "HEAD",
            http_client.url(path, base_url),
            headers,
            b"",
            credentials,
            region=region,
            service="s3",
        )
        try:
            response = http_client.send(
                ProbeRequest("HEAD", path, headers=headers, base_url=base_url)
            )
        except Unreachable:
            return self.result(
                ProbeStatus.VALID,
                None,
                gettext("AWS accepted the key pair."),
                warnings=[gettext("S3 could not be reached, so access to the bucket is unknown.")],
            )
        return self.read_bucket_answer(response)

    def read_bucket_answer(self, response: ProbeResponse) -> ProbeResult:
        """Read S3's answer to ``HeadBucket``: the key pair itself is already known good."""
        status = response.status
        if response.accepted:
            return self.result(
                ProbeStatus.VALID,
                response,
                gettext("AWS accepted the key pair, and it can reach the bucket."),
            )
        if status == 403:
            return self.result(
                ProbeStatus.RESTRICTED,
                response,
                gettext(
                    "AWS accepted the key pair, but it may not access the bucket (its policy "
                    "needs s3:ListBucket on it)."
                ),
            )
        if status == 404:
            return self.result(
                ProbeStatus.RESTRICTED,
                response,
                gettext(
                    "AWS accepted the key pair, but the bucket was not found: check its name."
                ),
            )
        if status == 301:
            return self.result(ProbeStatus.RESTRICTED, response, moved_message(response))
        return self.result(
            ProbeStatus.VALID,
            response,
            gettext("AWS accepted the key pair."),
            warnings=[
                gettext(
                    "S3 answered the bucket check with HTTP %(code)s, so access to the bucket "
                    "is unknown."
                )
                % {"code": status}
            ],
        )


def moved_message(response: ProbeResponse) -> str:
    """A bucket in another region: which one, when S3 says so."""
    actual = response.headers.get("x-amz-bucket-region", "")
    if _REGION.fullmatch(actual):
        return gettext(
            "AWS accepted the key pair, but the bucket is in another region "
            "(%(region)s): set that region."
        ) % {"region": actual}
    return gettext(
        "AWS accepted the key pair, but the bucket is in another region: check the region."
    )


@sensitive_variables()
def signature(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    credentials: dict[str, str],
    *,
    region: str,
    service: str,
) -> dict[str, str]:
    """The SigV4 headers for a request with ``credentials``."""
    return sign(
        method,
        url,
        headers,
        body,
        access_key_id=credentials["access_key_id"],
        secret_access_key=credentials["secret_access_key"],
        region=region,
        service=service,
        session_token=credentials.get("session_token"),
    )
