"""AWS Signature Version 4, for the AWS probe: small, and checked against AWS's test suite.

byok needs two signed requests (STS GetCallerIdentity and S3 HeadBucket), not an
SDK, so it signs them itself rather than depend on boto3.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def _canonical_query(query: str) -> str:
    pairs = []
    for part in filter(None, query.split("&")):
        name, _, value = part.partition("=")
        pairs.append((quote(name, safe="-_.~"), quote(value, safe="-_.~")))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    folded = {name.lower().strip(): " ".join(value.split()) for name, value in headers.items()}
    names = sorted(folded)
    return "".join(f"{name}:{folded[name]}\n" for name in names), ";".join(names)


def sign(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    access_key_id: str,
    secret_access_key: str,
    region: str,
    service: str,
    session_token: str | None = None,
    now: datetime | None = None,
    payload_hash: str | None = None,
) -> dict[str, str]:
    """The headers to add to a request: ``Authorization``, ``X-Amz-Date`` and, for
    temporary credentials, ``X-Amz-Security-Token``. Every header passed in, plus
    ``host``, is signed. ``payload_hash`` replaces the body's SHA-256 (S3 takes
    ``UNSIGNED-PAYLOAD`` for a body that is not hashed)."""
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    parts = urlsplit(url)
    added = {"X-Amz-Date": amz_date}
    if session_token:
        added["X-Amz-Security-Token"] = session_token
    signed = {"host": parts.netloc, **headers, **added}
    canonical_headers, signed_names = _canonical_headers(signed)
    canonical_request = "\n".join(
        [
            method.upper(),
            quote(parts.path or "/", safe="/-_.~"),
            _canonical_query(parts.query),
            canonical_headers,
            signed_names,
            payload_hash or hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _hmac(f"AWS4{secret_access_key}".encode(), day)
    for step in (region, service, "aws4_request"):
        key = _hmac(key, step)
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    added["Authorization"] = (
        f"{ALGORITHM} Credential={access_key_id}/{scope}, "
        f"SignedHeaders={signed_names}, Signature={signature}"
    )
    return added
