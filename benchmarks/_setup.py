"""Shared parts of the benchmarks: a throwaway database with byok migrated, timing
against a baseline in the same process, and one process per database."""

import os
import statistics
import subprocess
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

import django
from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]
DATABASE_URLS = {
    "sqlite": "sqlite://:memory:",
    "postgres": os.environ.get("BYOK_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("BYOK_BENCH_MARIADB", "mysql://root@127.0.0.1:3306/test"),
}


def configure(database: str, *, apps: tuple[str, ...] = (), **extra: object) -> None:
    """Configure Django for ``database`` (with ``apps`` besides byok's, and ``extra``
    settings) and create a fresh test database."""
    import dj_database_url

    sys.path.insert(0, str(ROOT / "tests"))
    db = dj_database_url.parse(DATABASE_URLS[database])
    if database != "sqlite":
        db["TEST"] = {"NAME": f"test_byok_bench_{os.getpid()}"}
    settings.configure(
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "rest_framework",
            "byok",
            *apps,
        ],
        DATABASES={"default": db},
        USE_TZ=True,
        SECRET_KEY="benchmark-only-secret-key",
        BYOK={"ENCRYPTION_KEYS": ["YmVuY2htYXJrLW9ubHkta2V5LWZvci1ieW9rLWJlbmNoZXM"]},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        # django-fernet-encrypted-fields' salt, for benchmarks/peers.py.
        SALT_KEY="benchmark-only-salt",
        **extra,
    )
    django.setup()
    from django.test.utils import setup_databases

    setup_databases(verbosity=0, interactive=False)


def teardown() -> None:
    from django.db import connection

    connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


def interleaved(
    ours: Callable[[], object], baseline: Callable[[], object], *, repeat: int, number: int = 1
) -> list[tuple[float, float]]:
    """Seconds per call of each, in ``repeat`` rounds run interleaved so that noise
    from the machine hits both alike."""
    rounds = []
    for _ in range(repeat):
        times = [timeit.timeit(function, number=number) / number for function in (ours, baseline)]
        rounds.append((times[0], times[1]))
    return rounds


def summary(rounds: list[tuple[float, float]], *, throughput: bool = False) -> tuple[float, str]:
    """The median ratio of the rounds (ours over the baseline; for ``throughput``, the
    baseline's time over ours) and its spread, as text."""
    ratios = sorted((b / a) if throughput else (a / b) for a, b in rounds)
    return statistics.median(
        ratios
    ), f"{len(ratios)} rounds, spread {ratios[0]:.2f}-{ratios[-1]:.2f}"


def compare(
    ours: tuple[str, Callable[[], object]],
    baseline: tuple[str, Callable[[], object]],
    *,
    repeat: int,
    number: int,
) -> float:
    """Time both (see :func:`interleaved`), print the medians and a line ending in
    ``ratio X`` (the median ratio of the rounds), return X."""
    rounds = interleaved(ours[1], baseline[1], repeat=repeat, number=number)
    ratio, spread = summary(rounds)
    ours_time = statistics.median(a for a, _ in rounds)
    baseline_time = statistics.median(b for _, b in rounds)
    print(
        f"  {ours[0]} {ours_time * 1e6:7.1f} us   "
        f"{baseline[0]} {baseline_time * 1e6:7.1f} us   ({spread})   ratio {ratio:.2f}"
    )
    return ratio


def main(
    script: str, measure: Callable[[], object], budget: float, *, apps: tuple[str, ...] = ()
) -> int:
    """A benchmark's entry point: ``--child DATABASE`` measures on a throwaway copy of
    that database, else each database given (default SQLite and PostgreSQL) runs as
    a child (:func:`run_per_database`)."""
    if sys.argv[1:2] == ["--child"]:
        configure(sys.argv[2], apps=apps)
        try:
            measure()
        finally:
            teardown()
        return 0
    return run_per_database(script, sys.argv[1:] or ["sqlite", "postgres"], budget)


def verdict(ratio: float, budget: float) -> bool:
    """Print whether ``ratio`` is within ``budget``; ``True`` if it is. A negative
    budget is a floor: ``-0.5`` means "at least 0.5" (for throughput ratios)."""
    within = ratio >= -budget if budget < 0 else ratio <= budget
    print(
        f"  {'within' if within else 'OVER'} budget {'>= ' if budget < 0 else '<= '}{abs(budget)}"
    )
    return within


def run_per_database(script: str, databases: list[str], budget: float) -> int:
    """Run ``script --child DATABASE`` for each database, each in a process of its
    own; the child's output ends with ``ratio X``. The exit status: 1 if any failed
    or went over ``budget``."""
    failed = False
    for database in databases:
        print(f"{database}:", flush=True)
        result = subprocess.run(
            [sys.executable, script, "--child", database],
            capture_output=True,
            text=True,
            check=False,
        )
        sys.stdout.write(result.stdout)
        if result.returncode:
            sys.stdout.write(result.stderr)
            failed = True
            continue
        failed |= not verdict(float(result.stdout.rsplit("ratio", 1)[1]), budget)
    return 1 if failed else 0


def database_and_sizes(default_sizes: list[int]) -> tuple[str, list[int]]:
    """``[sqlite|postgres|mariadb] [sizes...]`` from the command line; prints the
    database's heading."""
    args = sys.argv[1:]
    database = args.pop(0) if args and not args[0].isdigit() else "sqlite"
    print(f"{database}:")
    return database, [int(a) for a in args] or default_sizes
