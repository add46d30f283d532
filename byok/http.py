"""The HTTP client byok talks to providers with. It knows no service.

It sends a ``User-Agent`` naming django-byok, uses connect and read timeouts, never
follows a redirect, reads at most :data:`MAX_RESPONSE_BYTES`, retries once on a
timeout or a 5xx, refuses a configured base URL that resolves to a private address
unless the host allows it, and logs the method, host, path and status only: never a
header, a query string or a body. A host that configured a service's base URL in
``BYOK["BASE_URLS"]`` gets every request there, whatever host a request names.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from byok import jsonsafe
from byok.conf import conf
from byok.rate_limits import pay_for_probe
from byok.version import __version__

#: Named for what it logs (one line per request to a provider), as documented.
logger = logging.getLogger("byok.probes")

MAX_RESPONSE_BYTES = 256 * 1024
USER_AGENT = f"django-byok/{__version__} (+https://github.com/django-byok/django-byok)"
RETRY_PAUSE = 0.5


class Unreachable(Exception):
    """The provider could not be reached (DNS, connection, TLS, timeout, refused URL)."""


@dataclass(frozen=True)
class ProbeRequest:
    """One request to a provider, relative to a base URL.

    ``base_url`` names a host the service derives itself (a region's, from strictly
    checked input); ``None`` means the service's base URL.
    """

    method: str
    path: str
    # Not in the repr: the headers usually carry the credential (Authorization, x-api-key).
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    auth: tuple[str, str] | None = field(default=None, repr=False)
    data: bytes | None = field(default=None, repr=False)
    base_url: str | None = None


@dataclass(frozen=True)
class ProbeResponse:
    """A provider's answer, read up to :data:`MAX_RESPONSE_BYTES`."""

    status: int
    headers: requests.structures.CaseInsensitiveDict[str]
    body: bytes
    truncated: bool = False

    @property
    def accepted(self) -> bool:
        """A 2xx answer."""
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def is_html(self) -> bool:
        """A web page (a proxy's or firewall's) rather than an API's answer."""
        content_type = self.headers.get("Content-Type", "")
        return "html" in content_type or self.body.lstrip()[:1] == b"<"

    def json(self) -> Any:
        """The parsed body, or ``None`` when it is not (complete) JSON.

        :class:`~byok.jsonsafe.JSONTooDeep` when it nests too deeply: :func:`byok.probes.probe`
        reports a ``provider_error``.
        """
        if self.truncated:
            return None
        try:
            return jsonsafe.loads(self.body)
        except jsonsafe.JSONTooDeep:  # an answer no API gives: the probe says so
            raise
        except ValueError:
            return None

    def json_dict(self) -> dict[str, Any]:
        data = self.json()
        return data if isinstance(data, dict) else {}


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
    if not resolves_to_public_only(parts.hostname or "", parts.port or 443):
        raise Unreachable(
            _(
                "The configured base URL points at a private, loopback or link-local "
                "address; set BYOK['ALLOW_PRIVATE_BASE_URLS'] = True to allow it."
            )
        )


def resolves_to_public_only(host: str, port: int) -> bool:
    """Whether every address ``host`` resolves to is a public one (not private, loopback
    or link-local). Raises :class:`Unreachable` when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise Unreachable(_("The provider's host name could not be resolved.")) from None
    return all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_global for info in infos)


class ProbeClient:
    """Sends requests to one provider, safely. One instance per test.

    ``name`` is what the log lines call the provider. ``overridden`` says that
    ``base_url`` is the host's own setting: then it is checked before the first
    request, and requests naming another host go to it instead.
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        overridden: bool = False,
        session: requests.Session | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.overridden = overridden
        self.session = session or requests.Session()
        self.session.trust_env = False  # no proxy or .netrc credentials from the environment
        self._base_checked = False
        self._paid = False

    @property
    def timeout(self) -> tuple[float, float]:
        value = conf.PROBE_TIMEOUT
        if isinstance(value, int | float):
            return (min(float(value), 5.0), float(value))
        connect, read = value
        return (float(connect), float(read))

    def url(self, path: str, base_url: str | None = None) -> str:
        """Where a request for ``path`` goes (the configured base URL wins over ``base_url``)."""
        base = self.base_url if self.overridden or base_url is None else base_url
        return f"{base.rstrip('/')}/{path.lstrip('/')}"

    @sensitive_variables()
    def send(self, request: ProbeRequest) -> ProbeResponse:
        """Send one request, retried once on a timeout or a 5xx. Raises :class:`Unreachable`.

        The first request of the probe spends the caller's test budget
        (:func:`~byok.rate_limits.probes_paid_by`), or raises
        :class:`~byok.exceptions.TooManyTests`.
        """
        url = self.url(request.path, request.base_url)
        if self.overridden and not self._base_checked:
            refuse_unsafe_base_url(url)
            self._base_checked = True
        if not self._paid:  # one budget call per probe, however many requests it sends
            pay_for_probe()
            self._paid = True
        for attempt in (1, 2):
            try:
                response = self._send(url, request)
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

    @sensitive_variables()
    def _send(self, url: str, request: ProbeRequest) -> ProbeResponse:
        started = time.monotonic()
        parts = urlsplit(url)
        with self.session.request(
            request.method,
            url,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **request.headers},
            auth=request.auth,
            data=request.data,
            timeout=self.timeout,
            allow_redirects=False,
            stream=True,
        ) as raw:
            body = _read_capped(raw)
            status = raw.status_code
            response_headers = raw.headers
        logger.info(
            "probe %s %s %s%s -> %s in %.0f ms",
            self.name,
            request.method,
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
    into the requests errors :meth:`ProbeClient.send` classifies, never a crash.
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
