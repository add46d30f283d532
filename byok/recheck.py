"""Re-testing stored keys in bulk (``manage.py byok_check_keys``).

Only the provider requests run on worker threads. Keys are read, decrypted and
their results recorded on the calling thread, so the database is used from one
thread only (an in-memory SQLite database works, and no worker holds a
connection), and at most ``concurrency`` decrypted credentials exist at a time.

A service that answers 429 is left alone for the rest of the run: probes
already sent may finish, but no new one starts for it.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextvars import copy_context
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import connections
from django.db.models import Count, Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from byok.exceptions import DecryptionError
from byok.keys import record_test_result
from byok.models import UserAPIKey, UserAPIKeyQuerySet
from byok.probes import test_credentials
from byok.results import ProbeResult, ProbeStatus
from byok.services.registry import registry

#: Outcomes of keys that were not probed (the others end with a ``ProbeStatus`` value).
SKIPPED_RATE_LIMITED = "skipped_rate_limited"
UNDECRYPTABLE = "undecryptable"
UNKNOWN_SERVICE = "unknown_service"

#: Keys read per query; each batch is a fresh keyset query, never a held cursor.
BATCH_SIZE = 200


@dataclass(frozen=True)
class KeyCheck:
    """What happened to one key. Carries ids and names only, never a secret."""

    key_id: uuid.UUID
    #: The owning user's id, or ``team:<id>`` for a team's key.
    owner_id: Any
    service: str
    nickname: str
    old_status: str
    outcome: str
    message: str = ""


@dataclass
class CheckReport:
    """Counts per outcome, and what an operator has to act on."""

    counts: Counter[str] = field(default_factory=Counter)
    invalid: list[KeyCheck] = field(default_factory=list)
    rate_limited_services: set[str] = field(default_factory=set)

    def add(self, check: KeyCheck) -> None:
        self.counts[check.outcome] += 1
        if check.outcome == ProbeStatus.INVALID:
            self.invalid.append(check)
        if check.outcome == ProbeStatus.RATE_LIMITED:
            self.rate_limited_services.add(check.service)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class RateLimitedServices:
    """The services that answered 429 in this run, shared by the worker threads."""

    def __init__(self) -> None:
        self._services: set[str] = set()
        self._lock = threading.Lock()

    def add(self, service: str) -> None:
        with self._lock:
            self._services.add(service)

    def __contains__(self, service: object) -> bool:
        with self._lock:
            return service in self._services


def select_keys(
    *,
    user: Any = None,
    services: Iterable[str] = (),
    stale_days: int | None = None,
    include_inactive: bool = False,
) -> UserAPIKeyQuerySet:
    """The keys to re-test: active ones (switched-off too with ``include_inactive``).

    ``stale_days`` keeps keys never tested or last tested more than that many days ago.
    """
    keys = UserAPIKey.objects.alive() if include_inactive else UserAPIKey.objects.active()
    if user is not None:
        keys = keys.filter(user=user)
    services = list(services)
    if services:
        keys = keys.filter(service__in=services)
    if stale_days is not None:
        cutoff = timezone.now() - timedelta(days=stale_days)
        keys = keys.filter(Q(last_tested_at__isnull=True) | Q(last_tested_at__lt=cutoff))
    return keys


def count_by_service(keys: UserAPIKeyQuerySet) -> dict[str, int]:
    """How many of ``keys`` each service has, for a dry run. Decrypts nothing."""
    rows = keys.order_by("service").values("service").annotate(keys=Count("pk"))
    return {row["service"]: row["keys"] for row in rows}


@sensitive_variables()
def check_keys(
    keys: UserAPIKeyQuerySet,
    *,
    concurrency: int = 4,
    on_check: Callable[[KeyCheck], None] | None = None,
) -> CheckReport:
    """Probe each key and record the result as :func:`~byok.test_user_api_key` does.

    ``on_check`` is called on this thread for each key as soon as it is done.
    Undecryptable keys and keys of unregistered services are counted, not probed.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1.")
    report = CheckReport()
    limited = RateLimitedServices()

    def finish(check: KeyCheck) -> None:
        report.add(check)
        if on_check is not None:
            on_check(check)

    in_flight: dict[Future[ProbeResult | None], UserAPIKey] = {}

    def collect() -> None:
        done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
        for future in done:
            finish(_record(in_flight.pop(future), future.result()))

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="byok-check") as pool:
        for key in _in_batches(keys):
            credentials = _open(key, limited)
            if isinstance(credentials, str):
                finish(_check(key, credentials))
                continue
            if len(in_flight) >= concurrency:
                collect()
            future = pool.submit(
                copy_context().run, _probe, key.service, credentials, key.environment, limited
            )
            in_flight[future] = key
        while in_flight:
            collect()
    return report


def _in_batches(keys: UserAPIKeyQuerySet) -> Iterator[UserAPIKey]:
    """``keys`` in primary-key order, one query per batch: flat memory, no open cursor
    while results are written (which SQLite does not isolate)."""
    last_pk = None
    while True:
        page = keys.order_by("pk")
        if last_pk is not None:
            page = page.filter(pk__gt=last_pk)
        batch = list(page[:BATCH_SIZE])
        if not batch:
            return
        yield from batch
        last_pk = batch[-1].pk


def _open(key: UserAPIKey, limited: RateLimitedServices) -> dict[str, str] | str:
    """The key's credentials to probe, or the outcome that says why it is not probed."""
    if key.service not in registry:
        return UNKNOWN_SERVICE
    if key.service in limited:
        return SKIPPED_RATE_LIMITED
    try:
        return key.get_credentials()
    except DecryptionError:
        return UNDECRYPTABLE


@sensitive_variables()
def _probe(
    service: str, credentials: dict[str, str], environment: str, limited: RateLimitedServices
) -> ProbeResult | None:
    """Runs on a worker thread: one provider request, or ``None`` if the service is
    now rate limited. Touches no model; closes any connection a custom probe opened."""
    try:
        if service in limited:
            return None
        result = test_credentials(service, credentials, environment=environment)
        if result.status is ProbeStatus.RATE_LIMITED:
            limited.add(service)
        return result
    finally:
        connections.close_all()


def _record(key: UserAPIKey, result: ProbeResult | None) -> KeyCheck:
    if result is None:
        return _check(key, SKIPPED_RATE_LIMITED)
    old_status = key.status
    record_test_result(key, result)
    return _check(key, result.status.value, result.message, old_status=old_status)


def _check(
    key: UserAPIKey, outcome: str, message: str = "", *, old_status: str | None = None
) -> KeyCheck:
    return KeyCheck(
        key_id=key.pk,
        owner_id=key.user_id if key.user_id is not None else key.owner.label,
        service=key.service,
        nickname=key.nickname,
        old_status=key.status if old_status is None else old_status,
        outcome=outcome,
        message=message,
    )
