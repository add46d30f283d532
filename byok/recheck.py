"""Re-testing stored keys in bulk (``manage.py byok_check_keys``).

In one process (:func:`check_keys`), or as a :class:`~byok.models.RecheckRun` split
into batches that task workers share (:func:`plan_run`, :func:`run_batch`): each
batch is claimed by one worker once, so no key is tested twice in a run, and a
service that answers 429 is written down for the run, so that no worker tests its
keys any more.

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
from datetime import datetime, timedelta
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from byok.exceptions import DecryptionError
from byok.keys import record_test_result
from byok.models import (
    RecheckBackoff,
    RecheckBatch,
    RecheckRun,
    UserAPIKey,
    UserAPIKeyQuerySet,
)
from byok.probes import test_credentials
from byok.results import ProbeResult, ProbeStatus
from byok.services.registry import registry

#: Outcomes of keys that were not probed (the others end with a ``ProbeStatus`` value).
SKIPPED_RATE_LIMITED = "skipped_rate_limited"
UNDECRYPTABLE = "undecryptable"
UNKNOWN_SERVICE = "unknown_service"

#: Keys read per query; each batch is a fresh keyset query, never a held cursor.
BATCH_SIZE = 200
#: Batches of a run written (and their ids read to enqueue their tasks) at a time: all
#: byok holds of a run while planning it, whatever its size.
WRITE_BATCHES = 100


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

    def sync(self) -> None:
        """Share what this process learnt and learn what others did. Called on the
        thread that owns the database connection, before each key."""

    @property
    def services(self) -> set[str]:
        with self._lock:
            return set(self._services)


class SharedBackoff(RateLimitedServices):
    """The run's rate-limited services, kept in the database for every worker."""

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id
        self._saved: set[str] = set()

    def sync(self) -> None:
        new = self.services - self._saved
        if new:
            RecheckBackoff.objects.bulk_create(
                [RecheckBackoff(run_id=self.run_id, service=service) for service in new],
                ignore_conflicts=True,
            )
        known = set(
            RecheckBackoff.objects.filter(run_id=self.run_id).values_list("service", flat=True)
        )
        self._saved = known
        with self._lock:
            self._services |= known


def select_keys(
    *,
    user: Any = None,
    team: Any = None,
    services: Iterable[str] = (),
    stale_days: int | None = None,
    include_inactive: bool = False,
) -> UserAPIKeyQuerySet:
    """The keys to re-test: active ones (switched-off too with ``include_inactive``).

    ``stale_days`` keeps keys never tested or last tested more than that many days ago;
    ``user`` or ``team``, the keys that user or team owns.
    """
    return keys_for(
        run_options(
            user=user,
            team=team,
            services=services,
            stale_days=stale_days,
            include_inactive=include_inactive,
        )
    )


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
    limited: RateLimitedServices | None = None,
) -> CheckReport:
    """Probe each key and record the result as :func:`~byok.test_user_api_key` does.

    ``on_check`` is called on this thread for each key as soon as it is done.
    Undecryptable keys and keys of unregistered services are counted, not probed.
    ``limited`` holds the services to leave alone (default: those that answer 429
    during this call).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1.")
    report = CheckReport()
    limited = RateLimitedServices() if limited is None else limited

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
            limited.sync()
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
    limited.sync()
    report.rate_limited_services |= limited.services
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


def plan_run(
    options: dict[str, Any], *, batch_size: int = BATCH_SIZE, concurrency: int = 4
) -> RecheckRun:
    """Write down a run over the keys ``options`` select (:func:`run_options`) and its
    batches, for workers to claim.

    Each batch is found with one keyset query that reads a single primary key, and
    batches are written :data:`WRITE_BATCHES` at a time: byok never holds the run's
    keys, and decrypts none.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1.")
    ordered = keys_for(options).order_by("pk").values_list("pk", flat=True)
    with transaction.atomic(using=router.db_for_write(RecheckRun)):
        run = RecheckRun.objects.create(options=options, concurrency=concurrency)
        pending: list[RecheckBatch] = []
        after, number, total = None, 0, 0
        while True:
            rest = ordered if after is None else ordered.filter(pk__gt=after)
            last = rest[batch_size - 1 : batch_size].first()
            size = batch_size
            if last is None:  # the last, shorter batch
                size = rest.count()
                last = rest.order_by("-pk").first() if size else None
            if last is None:
                break
            pending.append(RecheckBatch(run=run, number=number, after_key=after, last_key=last))
            number, total, after = number + 1, total + size, last
            if len(pending) >= WRITE_BATCHES:
                RecheckBatch.objects.bulk_create(pending)
                pending = []
            if size < batch_size:
                break
        RecheckBatch.objects.bulk_create(pending)
        RecheckRun.objects.filter(pk=run.pk).update(key_count=total, batch_count=number)
    run.key_count, run.batch_count = total, number
    return run


def keys_for(options: dict[str, Any]) -> UserAPIKeyQuerySet:
    """The keys a selection (as :func:`run_options` wrote it) takes in: what a run
    plans from and what each of its batches tests, whichever process reads it."""
    if options.get("include_inactive"):
        keys = UserAPIKey.objects.alive()
    else:
        keys = UserAPIKey.objects.active()
    if options.get("user") is not None:
        keys = keys.filter(user_id=options["user"])
    if options.get("team") is not None:
        keys = keys.filter(team_id=options["team"])
    if options.get("services"):
        keys = keys.filter(service__in=options["services"])
    if options.get("tested_before"):
        cutoff = datetime.fromisoformat(options["tested_before"])
        keys = keys.filter(Q(last_tested_at__isnull=True) | Q(last_tested_at__lt=cutoff))
    return keys


def run_options(
    *,
    user: Any = None,
    team: Any = None,
    services: Iterable[str] = (),
    stale_days: int | None = None,
    include_inactive: bool = False,
) -> dict[str, Any]:
    """What a run keeps of :func:`select_keys`'s arguments: plain JSON, the stale
    cut-off fixed when the run starts."""
    cutoff = None if stale_days is None else timezone.now() - timedelta(days=stale_days)
    return {
        "user": None if user is None else str(user.pk),
        "team": None if team is None else str(team.pk),
        "services": sorted(services),
        "tested_before": None if cutoff is None else cutoff.isoformat(),
        "include_inactive": include_inactive,
    }


def run_batch(
    batch_id: int, *, on_check: Callable[[KeyCheck], None] | None = None
) -> CheckReport | None:
    """Claim a batch and test its keys; ``None`` if another worker claimed it first
    (a task delivered twice tests nothing the second time)."""
    claimed = RecheckBatch.objects.filter(pk=batch_id, claimed_at__isnull=True).update(
        claimed_at=timezone.now()
    )
    if not claimed:
        return None
    batch = RecheckBatch.objects.select_related("run").get(pk=batch_id)
    keys = keys_for(batch.run.options).filter(pk__lte=batch.last_key)
    if batch.after_key is not None:
        keys = keys.filter(pk__gt=batch.after_key)
    report = check_keys(
        keys,
        concurrency=batch.run.concurrency,
        on_check=on_check,
        limited=SharedBackoff(batch.run_id),
    )
    now = timezone.now()
    RecheckBatch.objects.filter(pk=batch_id).update(counts=dict(report.counts), finished_at=now)
    # The worker that finishes the last batch closes the run.
    unfinished = RecheckBatch.objects.filter(run_id=batch.run_id, finished_at__isnull=True)
    if not unfinished.exists():
        RecheckRun.objects.filter(pk=batch.run_id, finished_at__isnull=True).update(
            finished_at=now
        )
    return report


@dataclass(frozen=True)
class RunProgress:
    """How far a run got: what ``byok_check_keys --status`` and the admin show."""

    run: RecheckRun
    batches_done: int
    batches_claimed: int
    counts: Counter[str]
    rate_limited_services: list[str]

    @property
    def keys_done(self) -> int:
        return sum(self.counts.values())

    @property
    def finished(self) -> bool:
        return self.run.finished_at is not None


def progress_of(run: RecheckRun) -> RunProgress:
    """A run's progress in two queries (one row per batch, not per key)."""
    counts: Counter[str] = Counter()
    done = claimed = 0
    rows = RecheckBatch.objects.filter(run=run).values_list("claimed_at", "finished_at", "counts")
    for claimed_at, finished_at, batch_counts in rows.iterator():
        claimed += claimed_at is not None
        if finished_at is not None:
            done += 1
            counts.update(batch_counts or {})
    services = RecheckBackoff.objects.filter(run=run).values_list("service", flat=True)
    return RunProgress(
        run=run,
        batches_done=done,
        batches_claimed=claimed,
        counts=counts,
        rate_limited_services=sorted(services),
    )
