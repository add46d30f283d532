"""Per-user budgets of what is costly or sensitive, shared by the REST API and the pages.

``byok_test`` counts calls to providers (each test of a key); ``byok_reveal`` counts
secrets shown again. The rates come from the host's
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` when it names the scope (the REST API's
throttles and the pages spend the same budget), else from :data:`DEFAULT_RATES`.

Counts live in the cache ``BYOK["RATE_LIMIT_CACHE"]`` names and are kept with the
cache's own atomic ``add`` and ``incr`` (Redis' ``SET NX EX`` and ``INCR``), never
read and written back: every web process and machine sharing that cache spends one
budget, and concurrent requests cannot both take the last call. A window opens with
its user's first call and lasts the rate's period.

Why not a rate-limit library: ``limits`` keeps its counters in its own storage (a
Redis or Memcached URL of its own) and cannot use a cache the site already
configured; django-ratelimit reads one global cache setting and counts one call at a
time, where an import spends several at once.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import BaseCache, caches
from django.utils.translation import ngettext

from byok.conf import conf
from byok.exceptions import TooManyTests

DEFAULT_RATES = {"byok_test": "10/minute", "byok_reveal": "5/minute"}
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: Cache keys start with this (the cache adds its own ``KEY_PREFIX`` before it).
KEY_PREFIX = "byok:rate"

logger = logging.getLogger("byok.rate_limits")


def rate_limit_cache() -> BaseCache:
    """The cache ``BYOK["RATE_LIMIT_CACHE"]`` names, where every budget is counted."""
    return caches[conf.RATE_LIMIT_CACHE]


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
        else the seconds until they would.

        Calls that do not fit are given back at once; a request racing that refund
        may be refused too, never let through past the limit.
        """
        limit, duration = self.parsed()
        cache = rate_limit_cache()
        key = f"{KEY_PREFIX}:{self.scope}:{ident}"
        if count > limit:
            return float(duration)
        spent = _increment(cache, key, count, duration)
        if spent is None or spent <= limit:
            return None
        with suppress(ValueError):  # the window closed meanwhile: nothing to give back
            cache.decr(key, count)
        opened = cache.get(f"{key}:opened")
        if not isinstance(opened, int | float):
            return float(duration)
        return max(opened + duration - time.time(), 0.0)


def _increment(cache: BaseCache, key: str, count: int, duration: int) -> int | None:
    """Add ``count`` to the window's counter, opening the window if there is none.

    ``None`` when the cache keeps nothing (``DummyCache``): the call is let through
    and logged rather than refused with a server error; check byok.W004 says so at
    start-up.
    """
    for _attempt in range(3):
        if cache.add(key, 0, duration):
            cache.set(f"{key}:opened", time.time(), duration)
        try:
            spent = cache.incr(key, count)
        except ValueError:  # the window closed between add() and incr(): open a new one
            continue
        if spent == count:
            # The first calls of a window. Redis' INCR makes a key without an expiry if
            # the old one expired just before it: give the window its lifetime again.
            cache.touch(key, duration)
        return int(spent)
    logger.error(
        "The rate-limit cache %r keeps nothing: byok's budgets are not enforced.",
        conf.RATE_LIMIT_CACHE,
    )
    return None


TEST_CALLS = RateLimit("byok_test")
REVEALS = RateLimit("byok_reveal")


def spend_test_budget(user: Any, count: int = 1) -> None:
    """Count ``count`` calls to providers against the user's ``byok_test`` budget, or
    raise :class:`~byok.exceptions.TooManyTests`."""
    wait = TEST_CALLS.spend(user.pk, count)
    if wait is not None:
        raise TooManyTests(wait or 1.0)


#: Whose ``byok_test`` budget the probes sent in this context spend (see :func:`probes_paid_by`).
_PAYER: ContextVar[Any] = ContextVar("byok_probe_payer", default=None)


@contextmanager
def probes_paid_by(user: Any) -> Iterator[None]:
    """Within the block, each probe spends one call of ``user``'s ``byok_test`` budget
    when it is about to send its first request to the provider (:func:`pay_for_probe`).

    A request refused for bad input (a format error, an unknown service, a malformed
    body) never gets that far and spends nothing. The probe raises
    :class:`~byok.exceptions.TooManyTests` when the budget is spent.
    """
    token = _PAYER.set(user)
    try:
        yield
    finally:
        _PAYER.reset(token)


def pay_for_probe() -> None:
    """Called by :class:`~byok.http.ProbeClient` before a probe's first request."""
    user = _PAYER.get()
    if user is not None:
        spend_test_budget(user)


def too_many_tests(wait: float) -> str:
    """What to tell a user whose test budget is spent for ``wait`` more seconds."""
    seconds = max(1, math.ceil(wait))
    return ngettext(
        "Too many keys tested in a short time: try again in %(seconds)d second.",
        "Too many keys tested in a short time: try again in %(seconds)d seconds.",
        seconds,
    ) % {"seconds": seconds}
