"""Peak memory of byok_rotate_keys for 1k, 10k and 100k stored keys.

Budget (DESIGN.md): memory flat in the number of rows. Printed: the peak of
Python allocations during the rotation for each size, and its ratio to the
smallest run (budget <= 1.25). Rows are created directly, already encrypted
under the old key, so only the rotation itself is measured.

    python benchmarks/rotation_memory.py [sqlite|postgres|mariadb] [sizes...]
"""

import sys
import time
import tracemalloc

BUDGET = 1.25
OLD = "b2xkLWtleS1mb3ItdGhlLWJ5b2stcm90YXRpb24tYmVuY2htYXJr"
NEW = "bmV3LWtleS1mb3ItdGhlLWJ5b2stcm90YXRpb24tYmVuY2htYXJr"


def main(database: str, sizes: list[int]) -> int:
    from _setup import configure, teardown

    configure(database)
    try:
        return _run(sizes)
    finally:
        teardown()


def _rows(user: object, count: int) -> None:
    from django.test import override_settings

    from byok.crypto import get_keyring
    from byok.fields import SealedCredentials, canonical_bytes
    from byok.models import UserAPIKey

    with override_settings(BYOK={"ENCRYPTION_KEYS": [OLD]}):
        keyring = get_keyring()
        for start in range(0, count, 2000):
            batch = []
            for index in range(start, min(start + 2000, count)):
                credentials = {"api_key": f"sk-proj-benchmark-{index:09d}-{'x' * 60}"}
                batch.append(
                    UserAPIKey(
                        user=user,
                        service="openai",
                        masked_key="sk-proj-…",
                        credentials=SealedCredentials.seal(credentials, keyring),
                        fingerprint=keyring.fingerprint(canonical_bytes(credentials)),
                    )
                )
            UserAPIKey.objects.bulk_create(batch)


def _run(sizes: list[int]) -> int:
    from django.contrib.auth.models import User
    from django.test import override_settings

    from byok import rotation
    from byok.models import UserAPIKey

    peaks = {}
    for size in sizes:
        UserAPIKey.objects.all().delete()
        User.objects.all().delete()
        _rows(User.objects.create_user(f"bench{size}"), size)
        with override_settings(BYOK={"ENCRYPTION_KEYS": [NEW, OLD]}):
            tracemalloc.start()
            started = time.perf_counter()
            report = rotation.rotate(batch_size=500)
            elapsed = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        assert report.reencrypted == size, report
        peaks[size] = peak
        print(f"  {size:>7} rows: peak {peak / 1024:8.0f} KiB   {elapsed:6.1f} s", flush=True)
    smallest = peaks[min(peaks)]
    ratio = max(peaks.values()) / smallest
    print(f"  largest peak / smallest peak: {ratio:.2f} (budget {BUDGET})")
    return 0 if ratio <= BUDGET else 1


if __name__ == "__main__":
    args = sys.argv[1:]
    database = args.pop(0) if args and not args[0].isdigit() else "sqlite"
    sizes = [int(a) for a in args] or [1_000, 10_000, 100_000]
    print(f"{database}:")
    sys.exit(main(database, sizes))
