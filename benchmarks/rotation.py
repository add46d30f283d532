"""byok_rotate_keys: memory flat in the rows, time linear in the rows it rotates.

Printed, on one database (rows are created already encrypted under the old key,
so only the rotation itself is measured):

1. **memory**: the peak of Python allocations while rotating 1k, 10k and 100k rows,
   and the largest over the smallest (budget <= 1.25);
2. **a part of a large table**: seconds to rotate 10k rows of a 100k-row table
   (90k already on the new key) over seconds to rotate a 10k-row table (budget
   <= 1.2): a batch is an index range, never a scan of the table;
3. **against the keyring alone**: rows per second rotating 100k rows over rows per
   second re-encrypting the same rows in memory, with no database (budget >= 0.4
   on PostgreSQL);
4. with ``--million``: seconds per 1,000 rows at 100k and at 1M rows (linear: the
   ratio stays near 1);
5. with ``--upgrade``: rows per second and peak memory upgrading 100k rows from
   storage format 1 to format 2 on the primary key (figures only, no budget).

Timed parts run interleaved rounds; ratios are medians with their spread.

    python benchmarks/rotation.py [sqlite|postgres|mariadb] [--million] [--upgrade]
"""

import statistics
import sys
import time
import tracemalloc

MEMORY_BUDGET, PART_BUDGET, KEYRING_FLOOR = 1.25, 1.2, 0.4
ROUNDS = 3
OLD = "b2xkLWtleS1mb3ItdGhlLWJ5b2stcm90YXRpb24tYmVuY2htYXJr"
NEW = "bmV3LWtleS1mb3ItdGhlLWJ5b2stcm90YXRpb24tYmVuY2htYXJr"


def main(database: str, million: bool, upgrade: bool = False) -> int:
    from _setup import configure, teardown

    configure(database)
    try:
        return _run(database, million, upgrade)
    finally:
        teardown()


def _rows(user: object, count: int, *, key: str = OLD, v1: bool = False) -> None:
    """``count`` keys of ``user`` encrypted under ``key`` (in storage format 1 with
    ``v1``), inserted in bulk."""
    from django.test import override_settings

    from byok.crypto import get_keyring
    from byok.fields import SealedCredentials, canonical_bytes
    from byok.models import UserAPIKey

    with override_settings(BYOK={"ENCRYPTION_KEYS": [key]}):
        keyring = get_keyring()
        for start in range(0, count, 2000):
            batch = []
            for index in range(start, min(start + 2000, count)):
                credentials = {"api_key": f"sk-proj-benchmark-{key[:4]}{index:09d}-{'x' * 60}"}
                row = UserAPIKey(user=user, service="openai", masked_key="sk-proj-…")
                if v1:
                    row.credentials = SealedCredentials(
                        keyring.primary.encrypt_v1(canonical_bytes(credentials))
                    )
                    row.encryption_key_id = keyring.primary.id
                else:
                    row.seal(credentials, keyring)
                batch.append(row)
            UserAPIKey.objects.bulk_create(batch)


def _table(old: int, new: int = 0) -> None:
    """A fresh table: ``old`` rows on the old key, ``new`` on the new one."""
    from django.contrib.auth.models import User
    from django.db import connection

    from byok.models import UserAPIKey

    UserAPIKey.objects.all().delete()
    User.objects.all().delete()
    user = User.objects.create_user("bench")
    _rows(user, old)
    _rows(user, new, key=NEW)
    if connection.vendor != "sqlite":
        with connection.cursor() as cursor:
            analyze = "ANALYZE TABLE" if connection.vendor == "mysql" else "ANALYZE"
            cursor.execute(f"{analyze} byok_userapikey")


def _rotate(expected: int) -> tuple[float, int]:
    """Seconds to rotate, and the peak of Python allocations meanwhile."""
    from django.test import override_settings

    from byok import rotation

    with override_settings(BYOK={"ENCRYPTION_KEYS": [NEW, OLD]}):
        tracemalloc.start()
        started = time.perf_counter()
        report = rotation.rotate(batch_size=500)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert report.reencrypted == expected, report
    return elapsed, peak


def _in_memory(count: int) -> float:
    """Seconds for the keyring to re-encrypt ``count`` rows read back from the table,
    with no database in the loop: the floor rotation is measured against."""
    from django.test import override_settings

    from byok.crypto import get_keyring
    from byok.models import UserAPIKey

    with override_settings(BYOK={"ENCRYPTION_KEYS": [NEW, OLD]}):
        keyring = get_keyring()
        keys = list(
            UserAPIKey.objects.only("pk", "credentials", "user", "team", "service")[:count]
        )
        started = time.perf_counter()
        for key in keys:
            assert key.credentials is not None
            key.seal(key.credentials.open(keyring, binding=key.binding), keyring)
        return time.perf_counter() - started


def _memory() -> bool:
    peaks = {}
    for size in (1_000, 10_000, 100_000):
        _table(size)
        elapsed, peak = _rotate(size)
        peaks[size] = peak
        print(f"  {size:>7} rows: peak {peak / 1024:8.0f} KiB   {elapsed:6.1f} s", flush=True)
    ratio = max(peaks.values()) / peaks[1_000]
    print(f"  memory: largest peak / smallest peak {ratio:.2f} (budget <= {MEMORY_BUDGET})")
    return ratio <= MEMORY_BUDGET


def _part_of_a_large_table() -> bool:
    ratios = []
    for _ in range(ROUNDS):
        _table(10_000)
        alone, _ = _rotate(10_000)
        _table(10_000, 90_000)
        part, _ = _rotate(10_000)
        ratios.append(part / alone)
        print(f"  10k rows alone {alone:6.1f} s   10k of 100k {part:6.1f} s", flush=True)
    ratio = statistics.median(ratios)
    print(
        f"  part: 10k of 100k / 10k alone ({len(ratios)} rounds, spread "
        f"{min(ratios):.2f}-{max(ratios):.2f})   ratio {ratio:.2f} (budget <= {PART_BUDGET})"
    )
    return ratio <= PART_BUDGET


def _against_the_keyring(database: str) -> bool:
    ratios = []
    for _ in range(ROUNDS):
        _table(100_000)
        memory = _in_memory(100_000)
        rotated, _ = _rotate(100_000)
        ratios.append(memory / rotated)
        print(
            f"  100k rows: rotation {100_000 / rotated:7.0f} rows/s   "
            f"keyring alone {100_000 / memory:7.0f} rows/s",
            flush=True,
        )
    ratio = statistics.median(ratios)
    floor = f"(budget >= {KEYRING_FLOOR})" if database == "postgres" else "(no budget here)"
    print(
        f"  rate: rotation / keyring alone ({len(ratios)} rounds, spread "
        f"{min(ratios):.2f}-{max(ratios):.2f})   ratio {ratio:.2f} {floor}"
    )
    return database != "postgres" or ratio >= KEYRING_FLOOR


def _linear() -> bool:
    per_thousand = {}
    for size in (100_000, 1_000_000):
        _table(size)
        elapsed, peak = _rotate(size)
        per_thousand[size] = elapsed / size * 1000
        print(
            f"  {size:>9} rows: {elapsed:7.1f} s, {per_thousand[size]:.3f} s per 1,000 rows, "
            f"peak {peak / 1024:.0f} KiB",
            flush=True,
        )
    ratio = per_thousand[1_000_000] / per_thousand[100_000]
    print(f"  linear: time per row at 1M / at 100k   ratio {ratio:.2f}")
    return ratio <= PART_BUDGET


def _upgrade() -> bool:
    """Format 1 rows already on the primary key, upgraded to format 2: figures only."""
    from django.contrib.auth.models import User

    from byok.models import UserAPIKey

    UserAPIKey.objects.all().delete()
    User.objects.all().delete()
    _rows(User.objects.create_user("bench"), 100_000, key=NEW, v1=True)
    elapsed, peak = _rotate(100_000)
    formats = {key.credentials.format for key in UserAPIKey.objects.only("credentials")}
    assert formats == {"v2"}, formats
    print(
        f"  upgrade v1 -> v2, 100k rows: {elapsed:6.1f} s   {100_000 / elapsed:7.0f} rows/s   "
        f"peak {peak / 1024:.0f} KiB",
        flush=True,
    )
    return True


def _run(database: str, million: bool, upgrade: bool = False) -> int:
    if upgrade:
        return 0 if _upgrade() else 1
    passed = _memory() and _part_of_a_large_table() and _against_the_keyring(database)
    if million:
        passed = _linear() and passed
    return 0 if passed else 1


if __name__ == "__main__":
    arguments = sys.argv[1:]
    million, upgrade = "--million" in arguments, "--upgrade" in arguments
    databases = [a for a in arguments if not a.startswith("--")] or ["sqlite"]
    print(f"{databases[0]}:", flush=True)
    sys.exit(main(databases[0], million, upgrade))
