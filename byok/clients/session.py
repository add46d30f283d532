"""A ``requests`` session for any service's API, with its credential applied and every
request metered: for the services no SDK client of byok's covers.

The credential goes to the service's base URL and nowhere else: a request for
another host is refused before anything is sent, and a redirect to another host
is returned to the caller, not followed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from django.views.decorators.debug import sensitive_variables
from requests import PreparedRequest, Response

from byok import jsonsafe
from byok.clients.hooks import Outcome, outcome_of
from byok.clients.meter import Meter
from byok.services.auth import CredentialAuth

#: The largest JSON body parsed for the hooks (they see an empty body past it).
MAX_HOOK_BODY = 1 << 20


DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port: where a URL sends what it carries."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(scheme)


class MeteredSession(requests.Session):
    """A session bound to one service's base URL and one user's key.

    Paths are relative to :attr:`base_url` (``session.get("/models")``); an absolute
    URL must lie under it. Each request sent is recorded as one call, priced at
    the service's estimate per call, and runs ``BYOK["CLIENT_HOOKS"]``.
    """

    def __init__(self, meter: Meter, base_url: str, auth: CredentialAuth) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.meter = meter
        self._origin = _origin(self.base_url)

    def __repr__(self) -> str:
        return f"<MeteredSession {self.meter.service} {self.base_url}>"

    def url_for(self, url: str | bytes) -> str:
        """The URL a request for ``url`` goes to. Raises ``ValueError`` for a URL
        outside the base URL."""
        text = url.decode() if isinstance(url, bytes) else str(url)
        if "://" not in text:
            return f"{self.base_url}/{text.lstrip('/')}"
        parts = urlsplit(text)
        base_path = urlsplit(self.base_url).path.rstrip("/")
        inside = parts.path == base_path or parts.path.startswith(f"{base_path}/")
        if _origin(text) != self._origin or not inside:
            raise ValueError(
                f"This session sends the {self.meter.service} credential only under "
                f"{self.base_url}; refused a request for {parts.scheme}://{parts.hostname}."
            )
        return text

    @sensitive_variables()
    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> Response:
        return super().request(method, self.url_for(url), *args, **kwargs)

    @sensitive_variables()
    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:
        """Send ``request`` (only to the base URL's host) and record it as one call."""
        url = request.url or ""
        if _origin(url) != self._origin:
            raise ValueError(
                f"This session sends the {self.meter.service} credential only to "
                f"{self.base_url}; refused a request for another host."
            )
        call = self.meter.call(request.method or "GET", urlsplit(url).path, self._body(request))
        self.meter.before(call)
        started = time.perf_counter()
        try:
            response = super().send(request, **kwargs)
        except requests.RequestException as error:
            timeout = isinstance(error, requests.Timeout)
            outcome = Outcome.TIMEOUT if timeout else Outcome.ERROR
            self.meter.finish(call, started, None, outcome, None)
            # Without its chain: the frames below (urllib3's) hold the request's
            # headers, and the message a URL that may carry the credential.
            raise self._without_credential(error) from None
        except Exception:
            self.meter.finish(call, started, None, Outcome.ERROR, None)
            raise
        self.meter.finish(
            call, started, response.status_code, outcome_of(response.status_code), None
        )
        return response

    @sensitive_variables()
    def _without_credential(self, error: requests.RequestException) -> requests.RequestException:
        """The same error, its message with the credential's values blanked out."""
        message = str(error)
        for value in self.auth.values() if isinstance(self.auth, CredentialAuth) else ():
            message = message.replace(value, "[redacted]")
        try:
            return type(error)(message, response=error.response)
        except TypeError:  # an error class whose constructor takes other arguments
            return requests.RequestException(message, response=error.response)

    def get_redirect_target(self, response: Response) -> str | None:
        """Follow a redirect only on the base URL's host: the credential goes nowhere else."""
        target = super().get_redirect_target(response)
        if target is None:
            return None
        absolute = urljoin(response.url, target)
        return target if _origin(absolute) == self._origin else None

    def _body(self, request: PreparedRequest) -> Mapping[str, Any]:
        """The JSON body, parsed for the hooks (none are configured: not parsed)."""
        body = request.body
        kind = request.headers.get("Content-Type", "")
        if not self.meter.hooks or not isinstance(body, bytes | str) or "json" not in kind:
            return {}
        if len(body) > MAX_HOOK_BODY:
            return {}
        try:
            data = jsonsafe.loads(body)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
