"""The REST API's throttles: DRF's face of :mod:`byok.rate_limits`, whose budgets the
pages spend too.

``byok_test`` is not a throttle: a probe spends it when it is about to call a
provider (:func:`byok.rate_limits.probes_paid_by`), so bad input spends nothing."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from byok.rate_limits import REVEALS, RateLimit


class ByokThrottle(BaseThrottle):
    """Per-user limit for one of byok's scopes (``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``)."""

    limit: RateLimit

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        user = request.user
        ident = user.pk if user and user.is_authenticated else self.get_ident(request)
        self._wait = self.limit.spend(ident)
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait


class RevealThrottle(ByokThrottle):
    """``{id}/reveal/``: returns a plaintext secret."""

    limit = REVEALS
