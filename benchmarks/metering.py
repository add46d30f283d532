"""track_api_usage under 16 threads on one key, against a bare counter update.

Budget: throughput >= 0.5x that of ``UserAPIKey.objects.filter(pk=…).update(n=F("n") + 1)``,
the one-statement baseline, with 16 threads making 200 calls each on the same key.
Each round runs both, interleaved; the printed ratio is the median of the rounds'
throughput ratios (baseline time / ours), with their spread. Counts are checked
exact after every round.

    python benchmarks/metering.py                    # PostgreSQL and MariaDB
    python benchmarks/metering.py sqlite postgres    # any of sqlite, postgres, mariadb
"""

import sys
import threading
import time

from _setup import main, summary

BUDGET = -0.5  # a floor: at least half the baseline's throughput
THREADS, CALLS, ROUNDS = 16, 200, 7


def hammer(work: object) -> float:
    """Seconds for THREADS threads to run ``work`` CALLS times each, started together."""
    from django.db import connections

    start = threading.Barrier(THREADS + 1)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            for _ in range(CALLS):
                work()  # type: ignore[operator]
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    return elapsed


def measure() -> float:
    from django.contrib.auth.models import User
    from django.db.models import F

    import byok
    from byok.models import KeyUsage, UserAPIKey

    user = User.objects.create_user("bench")
    byok.add_user_api_key(user, "openai", "sk-proj-" + "a1B2" * 12 + "T3BlbkFJ" + "c3D4" * 12)
    resolved = byok.resolve_api_key(user, "openai")
    key_id = resolved.key_id

    def ours() -> None:
        byok.track_api_usage(user, "openai", units=10, cost="0.001", key=resolved)

    def baseline() -> None:
        UserAPIKey.objects.filter(pk=key_id).update(usage_count=F("usage_count") + 1)

    rounds = []
    for number in range(1, ROUNDS + 1):
        ours_time, baseline_time = hammer(ours), hammer(baseline)
        rounds.append((ours_time, baseline_time))
        key = UserAPIKey.objects.get(pk=key_id)
        expected = 2 * number * THREADS * CALLS
        day = KeyUsage.objects.get(key_id=key_id)
        assert key.usage_count == expected, (key.usage_count, expected)
        assert day.calls == number * THREADS * CALLS, day.calls
        assert day.units == 10 * number * THREADS * CALLS, day.units
    ratio, spread = summary(rounds, throughput=True)
    calls = THREADS * CALLS
    ours_rate = calls / sorted(a for a, _ in rounds)[len(rounds) // 2]
    baseline_rate = calls / sorted(b for _, b in rounds)[len(rounds) // 2]
    print(
        f"  track_api_usage {ours_rate:8.0f} calls/s   bare update {baseline_rate:8.0f} calls/s"
        f"   ({spread}; counts exact)   ratio {ratio:.2f}"
    )
    return ratio


if __name__ == "__main__":
    if len(sys.argv) == 1:
        sys.argv += ["postgres", "mariadb"]
    sys.exit(main(__file__, measure, BUDGET))
