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

from byok.exceptions import TooManyTests


class ByokThrottle(SimpleRateThrottle):
    """Per-user limit for one scope, with a default rate the host may override."""

    scope: str
    default_rate: str

    def get_rate(self) -> str:
        return str(api_settings.DEFAULT_THROTTLE_RATES.get(self.scope) or self.default_rate)

    def allow_calls(self, request: HttpRequest | Request, count: int) -> bool:
        """Room for ``count`` more calls now? If so they are counted: all or none.

        DRF's ``allow_request`` counts one; an import that tests many keys counts each.
        """
        limit, duration = self.parse_rate(self.rate)
        if limit is None or duration is None:
            return True
        self.key = self.get_cache_key(request, None)  # type: ignore[arg-type]
        self.now = self.timer()
        self.history = [
            when for when in self.cache.get(self.key, []) if when > self.now - duration
        ]
        if len(self.history) + count > limit:
            return False
        self.history[:0] = [self.now] * count
        self.cache.set(self.key, self.history, duration)
        return True

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


def spend_test_budget(request: HttpRequest | Request, count: int = 1) -> None:
    """Count ``count`` provider calls against the user's ``byok_test`` budget, which the
    REST API and the pages share, or raise :class:`~byok.exceptions.TooManyTests`."""
    throttle = TestThrottle()
    if not throttle.allow_calls(request, count):
        raise TooManyTests(throttle.wait() or 1.0)
