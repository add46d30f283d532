"""Rate limits for the endpoints that call providers or show secrets.

The rates come from DRF's ``DEFAULT_THROTTLE_RATES`` when the host sets the
scope there, else from the defaults below.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class ByokThrottle(SimpleRateThrottle):
    """Per-user limit for one scope, with a default rate the host may override."""

    scope: str
    default_rate: str

    def get_rate(self) -> str:
        return str(api_settings.DEFAULT_THROTTLE_RATES.get(self.scope) or self.default_rate)

    def get_cache_key(self, request: Request, view: Any) -> str:
        user = request.user
        ident = user.pk if user and user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class TestThrottle(ByokThrottle):
    """``test/`` and ``{id}/test/``: each one sends a request to a provider."""

    scope = "byok_test"
    default_rate = "10/minute"


class RevealThrottle(ByokThrottle):
    """``{id}/reveal/``: returns a plaintext secret."""

    scope = "byok_reveal"
    default_rate = "5/minute"


def provider_call_wait(request: HttpRequest) -> float | None:
    """Count one provider call made by a page against the user's ``byok_test`` budget,
    which the REST API shares: ``None`` if allowed, else the seconds to wait."""
    throttle = TestThrottle()
    if throttle.allow_request(request, None):  # type: ignore[arg-type]
        return None
    return throttle.wait() or 1.0
