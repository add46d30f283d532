"""Per-user budgets of what is costly or sensitive, shared by the REST API and the pages.

``byok_test`` counts calls to providers (each test of a key); ``byok_reveal`` counts
secrets shown again. The rates come from the host's
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` when it names the scope (the REST API's
throttles and the pages spend the same budget), else from :data:`DEFAULT_RATES`.
Counts live in the default cache.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache

from byok.exceptions import TooManyTests

DEFAULT_RATES = {"byok_test": "10/minute", "byok_reveal": "5/minute"}
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class RateLimit:
    """One scope's budget per user (or, for anonymous callers, per address)."""

    scope: str

    @property
    def rate(self) -> str:
        rates = getattr(settings, "REST_FRAMEWORK", {}).get("DEFAULT_THROTTLE_RATES") or {}
        return str(rates.get(self.scope) or DEFAULT_RATES[self.scope])

    def parsed(self) -> tuple[int, int]:
        """(calls, seconds): ``"10/minute"`` is (10, 60)."""
        calls, period = self.rate.split("/")
        return int(calls), _PERIODS[period[0]]

    def spend(self, ident: Any, count: int = 1) -> float | None:
        """Count ``count`` more calls for ``ident``, all or none: ``None`` if they fit,
        else the seconds until they would."""
        limit, duration = self.parsed()
        key = f"throttle_{self.scope}_{ident}"
        now = time.time()
        history = [when for when in cache.get(key, []) if when > now - duration]
        if len(history) + count > limit:
            oldest = history[-1] if history else now
            return max(duration - (now - oldest), 0.0)
        history[:0] = [now] * count
        cache.set(key, history, duration)
        return None


TEST_CALLS = RateLimit("byok_test")
REVEALS = RateLimit("byok_reveal")


def spend_test_budget(user: Any, count: int = 1) -> None:
    """Count ``count`` calls to providers against the user's ``byok_test`` budget, or
    raise :class:`~byok.exceptions.TooManyTests`."""
    wait = TEST_CALLS.spend(user.pk, count)
    if wait is not None:
        raise TooManyTests(wait or 1.0)
