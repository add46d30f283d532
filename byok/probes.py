"""Testing a credential against its provider with one cheap, read-only request.

The HTTP client here is the only way byok talks to providers. It builds URLs
from the registry (or ``BYOK["BASE_URLS"]``), sends a ``User-Agent`` naming
django-byok, uses connect and read timeouts, never follows a redirect, reads at
most :data:`MAX_RESPONSE_BYTES`, retries once on a timeout or a 5xx, refuses a
base URL that resolves to a private address unless the host allows it, and logs
the method, host, path and status only: never a header, a query string or a body.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import time
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
import urllib3
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from byok import __version__
from byok.conf import conf

if TYPE_CHECKING:
    from byok.services.base import Service
    from byok.validation import ValidationResult

logger = logging.getLogger("byok.probes")

MAX_RESPONSE_BYTES = 256 * 1024
USER_AGENT = f"django-byok/{__version__} (+https://github.com/django-byok/django-byok)"
RETRY_PAUSE = 0.5


class ProbeStatus(str, Enum):
    VALID = "valid"
    RESTRICTED = "restricted"
    INVALID = "invalid"
    RATE_LIMITED = "rate_limited"
    PROVIDER_ERROR = "provider_error"
    UNREACHABLE = "unreachable"
    FORMAT_INVALID = "format_invalid"
    UNVERIFIABLE = "unverifiable"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ProbeResult:
    """What a test found. ``ok`` means the provider accepted the credential."""

    status: ProbeStatus
    message: str
    http_status: int | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in (ProbeStatus.VALID, ProbeStatus.RESTRICTED)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "ok": self.ok,
            "message": self.message,
            "http_status": self.http_status,
            "warnings": list(self.warnings),
        }


class Unreachable(Exception):
    """The provider could not be reached (DNS, connection, TLS, timeout, refused URL)."""


@dataclass(frozen=True)
class ProbeResponse:
    """A provider's answer, read up to :data:`MAX_RESPONSE_BYTES`."""

    status: int
    headers: requests.structures.CaseInsensitiveDict[str]
    body: bytes
    truncated: bool = False

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def is_html(self) -> bool:
        """A web page (a proxy's or firewall's) rather than an API's answer."""
        content_type = self.headers.get("Content-Type", "")
        return "html" in content_type or self.body.lstrip()[:1] == b"<"

    def json(self) -> Any:
        """The parsed body, or ``None`` when it is not (complete) JSON."""
        if self.truncated:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def json_dict(self) -> dict[str, Any]:
        data = self.json()
        return data if isinstance(data, dict) else {}


def base_url_for(service: Service) -> str:
    """The service's API base URL: ``BYOK["BASE_URLS"]`` if set, else the built-in one."""
    return str(conf.BASE_URLS.get(service.id) or service.base_url).rstrip("/")


def refuse_unsafe_base_url(url: str) -> None:
    """Raise :class:`Unreachable` for a configured base URL byok must not call.

    Unless ``BYOK["ALLOW_PRIVATE_BASE_URLS"]`` is on, it must be ``https`` and its
    host must resolve to public addresses only. (The check runs before each test;
    a host that re-resolves between the check and the connection is not caught.)
    """
    if conf.ALLOW_PRIVATE_BASE_URLS:
        return
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise Unreachable(
            _(
                "The configured base URL is not https; set BYOK['ALLOW_PRIVATE_BASE_URLS'] = True "
                "to allow it."
            )
        )
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise Unreachable(_("The provider's host name could not be resolved.")) from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global:
            raise Unreachable(
                _(
                    "The configured base URL points at a private, loopback or link-local "
                    "address; set BYOK['ALLOW_PRIVATE_BASE_URLS'] = True to allow it."
                )
            )


class ProbeClient:
    """Sends a service's probe requests, safely. One instance per test."""

    def __init__(self, service: Service, session: requests.Session | None = None) -> None:
        self.service = service
        self.base_url = base_url_for(service)
        #: Whether the host configured this service's base URL in settings: then
        #: services skip their regional fallbacks, and the URL is checked first.
        self.overridden = service.id in conf.BASE_URLS
        self.session = session or requests.Session()
        self.session.trust_env = False  # no proxy or .netrc credentials from the environment
        self._base_checked = False

    @property
    def timeout(self) -> tuple[float, float]:
        value = conf.PROBE_TIMEOUT
        if isinstance(value, int | float):
            return (min(float(value), 5.0), float(value))
        connect, read = value
        return (float(connect), float(read))

    def url(self, path: str, base_url: str | None = None) -> str:
        return f"{(base_url or self.base_url).rstrip('/')}/{path.lstrip('/')}"

    @sensitive_variables()
    def request(
        self,
        method: str,
        path: str,
        *,
        base_url: str | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        data: bytes | None = None,
    ) -> ProbeResponse:
        """One request, retried once on a timeout or a 5xx. Raises :class:`Unreachable`.

        ``base_url`` is for hosts the service derives itself (a region's host, from
        strictly checked input); by default the service's base URL is used.
        """
        url = self.url(path, base_url)
        if base_url is None and self.overridden and not self._base_checked:
            refuse_unsafe_base_url(url)
            self._base_checked = True
        for attempt in (1, 2):
            try:
                response = self._send(method, url, headers or {}, auth, data)
            except requests.Timeout:
                if attempt == 2:
                    raise Unreachable(_("The provider did not answer in time.")) from None
            except requests.exceptions.SSLError:
                raise Unreachable(_("The TLS connection to the provider failed.")) from None
            except requests.RequestException:
                raise Unreachable(_("The provider could not be reached.")) from None
            else:
                if response.status < 500 or attempt == 2:
                    return response
            time.sleep(RETRY_PAUSE)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        auth: tuple[str, str] | None,
        data: bytes | None,
    ) -> ProbeResponse:
        started = time.monotonic()
        parts = urlsplit(url)
        with self.session.request(
            method,
            url,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **headers},
            auth=auth,
            data=data,
            timeout=self.timeout,
            allow_redirects=False,
            stream=True,
        ) as raw:
            body = _read_capped(raw)
            status = raw.status_code
            response_headers = raw.headers
        logger.info(
            "probe %s %s %s%s -> %s in %.0f ms",
            self.service.id,
            method,
            parts.hostname,
            parts.path,
            status,
            (time.monotonic() - started) * 1000,
        )
        return ProbeResponse(
            status=status,
            headers=response_headers,
            body=body[:MAX_RESPONSE_BYTES],
            truncated=len(body) > MAX_RESPONSE_BYTES,
        )


def _read_capped(raw: requests.Response) -> bytes:
    """At most one byte more than the cap, decompressed.

    ``raw.raw`` is urllib3's response: its errors (an answer cut off, a body that does
    not decompress, a read that times out) are not requests' own, so they are turned
    into the requests errors :meth:`ProbeClient.request` classifies, never a crash.
    """
    try:
        body: bytes = raw.raw.read(MAX_RESPONSE_BYTES + 1, decode_content=True) or b""
    except urllib3.exceptions.ReadTimeoutError as error:
        raise requests.Timeout(error) from None
    except urllib3.exceptions.SSLError as error:
        raise requests.exceptions.SSLError(error) from None
    except urllib3.exceptions.HTTPError as error:
        raise requests.ConnectionError(error) from None
    return body


def never_invalid_when_busy(result: ProbeResult) -> ProbeResult:
    """A 429 or a 5xx says nothing about the key: it is never reported as invalid."""
    if result.status is not ProbeStatus.INVALID or result.http_status is None:
        return result
    if result.http_status == 429:
        return replace(result, status=ProbeStatus.RATE_LIMITED)
    if result.http_status >= 500:
        return replace(result, status=ProbeStatus.PROVIDER_ERROR)
    return result


@sensitive_variables()
def test_credentials(
    service: str, credentials: object, *, environment: str | None = None
) -> ProbeResult:
    """Check the format, then test ``credentials`` against the provider. Stores nothing.

    A malformed credential is never sent (``format_invalid``). Format warnings
    are included in the result's ``warnings``.
    """
    from byok.validation import validate_credentials

    checked = validate_credentials(service, credentials, environment=environment)
    if not checked.ok:
        return ProbeResult(
            ProbeStatus.FORMAT_INVALID, " ".join(checked.errors), warnings=checked.warnings
        )
    return probe(checked)


@sensitive_variables()
def probe(checked: ValidationResult) -> ProbeResult:
    """Test credentials that passed :func:`~byok.validate_credentials`."""
    from byok.services.registry import registry

    spec = registry.get(checked.service)
    try:
        result = spec.probe(checked, ProbeClient(spec))
    except Unreachable as error:
        result = ProbeResult(ProbeStatus.UNREACHABLE, str(error))
    result = never_invalid_when_busy(result)
    return replace(result, warnings=[*checked.warnings, *result.warnings])


test_credentials.__test__ = False  # type: ignore[attr-defined]  # not a pytest test
