"""Enqueueing a re-check run (byok_check_keys --enqueue) of 1k, 10k and 100k keys.

Budget: memory flat in the number of keys (the largest run's peak of Python
allocations at most 1.25 times the smallest's), time linear. Printed for each size:
the time to plan the run and enqueue its batches, keys per second, the batches, and
the peak memory. The tasks go to django-tasks-db's database backend when it is
installed (an INSERT per batch, as on a real site), else to the dummy backend.
Nothing is decrypted or sent: the keys' rows are made directly.

    python benchmarks/recheck_enqueue.py [sqlite|postgres|mariadb] [sizes...]
"""

import importlib.util
import sys
import time
import tracemalloc
import uuid

BUDGET = 1.25
BATCH_SIZE = 200


def main(database: str, sizes: list[int]) -> int:
    from _setup import configure, teardown

    database_backend = bool(importlib.util.find_spec("django_tasks_db"))
    backend = (
        "django_tasks_db.DatabaseBackend"
        if database_backend
        else "django_tasks.backends.dummy.DummyBackend"
    )
    apps = ("django_tasks", "django_tasks_db") if database_backend else ("django_tasks",)
    configure(database, apps=apps, TASKS={"default": {"BACKEND": backend}})
    print(f"  tasks backend: {backend}")
    try:
        return _run(sizes)
    finally:
        teardown()


def _rows(user: object, count: int) -> None:
    from django.db import connection

    from byok.models import UserAPIKey

    for start in range(0, count, 5000):
        UserAPIKey.objects.bulk_create(
            UserAPIKey(id=uuid.uuid4(), user=user, service="openai", masked_key="sk-…")
            for _ in range(start, min(start + 5000, count))
        )
    # Fresh statistics, as a live site's autovacuum keeps them: without them PostgreSQL
    # plans each batch's query as a scan of the whole table.
    if connection.vendor in ("postgresql", "mysql"):
        table = connection.ops.quote_name(UserAPIKey._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {'TABLE ' if connection.vendor == 'mysql' else ''}{table}")


def _run(sizes: list[int]) -> int:
    from django.contrib.auth.models import User

    from byok.models import RecheckRun, UserAPIKey
    from byok.recheck import run_options
    from byok.tasks import start_recheck

    peaks = {}
    for size in sizes:
        # Straight SQL: the rows have no related rows that a cascade would need to find.
        UserAPIKey.objects.all()._raw_delete(UserAPIKey.objects.db)
        RecheckRun.objects.all().delete()
        User.objects.all().delete()
        _rows(User.objects.create_user(f"bench{size}"), size)
        tracemalloc.start()
        started = time.perf_counter()
        run = start_recheck(run_options(), batch_size=BATCH_SIZE)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert run.key_count == size, run.key_count
        peaks[size] = peak
        print(
            f"  {size:>7} keys: {run.batch_count:>5} batches enqueued in {elapsed:6.2f} s "
            f"({size / elapsed:8.0f} keys/s), peak {peak / 1024:7.0f} KiB",
            flush=True,
        )
    ratio = max(peaks.values()) / peaks[min(peaks)]
    print(f"  largest peak / smallest peak: {ratio:.2f} (budget {BUDGET})")
    return 0 if ratio <= BUDGET else 1


if __name__ == "__main__":
    from _setup import database_and_sizes

    sys.exit(main(*database_and_sizes([1_000, 10_000, 100_000])))
