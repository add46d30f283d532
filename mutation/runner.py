"""Running mutants: each in a fresh pytest, against the tests that cover its line.

Every worker owns a copy of the ``byok`` package, first on the path of the pytest
its fork server starts (:mod:`mutation.forkserver`), so workers run side by side
and the checkout is never touched. Bytecode is neither written nor read from a
cache, so a mutant the same size as the original, made in the same second, is
never mistaken for it.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from mutation.config import Config
from mutation.coverage_map import CoverageMap
from mutation.operators import Mutant


class Outcome(str, Enum):
    KILLED = "killed"
    SURVIVED = "survived"
    NO_COVERAGE = "no coverage"
    TIMEOUT = "timeout"

    @property
    def detected(self) -> bool:
        """A mutant that hangs the suite is noticed as surely as one that fails it."""
        return self in (Outcome.KILLED, Outcome.TIMEOUT)


@dataclass(frozen=True)
class Result:
    mutant: Mutant
    outcome: Outcome
    tests: int
    seconds: float


def selected_tests(
    mutant: Mutant, coverage_map: CoverageMap, mapping: Mapping[str, tuple[str, ...]]
) -> list[str]:
    """The tests that run the mutated statement (for import-time code, its scope: the
    decorated function's body, the class, the module), of the module's own test paths
    if ``[tool.mutate.tests]`` names them: a survivor then runs seconds, not the suite.

    A statement no test runs itself, in a function only called at import (a
    decorator's ``return wrapper``, a descriptor's ``__init__``), runs the tests of the
    innermost function or class around it that some test runs.

    If none of those covers it, every mapped test that does: code whose result is
    cached (a keyring, an SQL statement) runs in whichever test needs it first.
    """
    first, last = mutant.scope
    covering = coverage_map.tests_for(mutant.module, range(first, last + 1))
    if not covering and mutant.import_time:
        # A class whose body only declares (a dataclass): its users are the module's.
        covering = coverage_map.tests_for(mutant.module, range(1, 100_000))
    for start, end in reversed(mutant.enclosing):
        if covering:
            break
        covering = coverage_map.tests_for(mutant.module, range(start, end + 1))
    paths = mapping.get(mutant.module, ())
    own = [test for test in covering if test.split("::")[0].startswith(paths)]
    return own or covering


class Workers:
    """A pool of package copies, each with its fork server; a mutant borrows one."""

    def __init__(self, config: Config, env: Mapping[str, str]) -> None:
        self.config = config
        self.free: queue.Queue[tuple[Path, subprocess.Popen[str]]] = queue.Queue()
        self.servers: list[subprocess.Popen[str]] = []
        server_env = {**env, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
        for number in range(config.workers):
            place = config.state / f"worker-{number}"
            shutil.rmtree(place, ignore_errors=True)
            shutil.copytree(
                config.root / "byok",
                place / "byok",
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
            server = subprocess.Popen(
                [sys.executable, "-m", "mutation.forkserver"],
                cwd=config.root,
                env=server_env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            self.servers.append(server)
            self.free.put((place, server))

    def close(self) -> None:
        for server in self.servers:
            assert server.stdin is not None
            server.stdin.close()
            server.wait()

    def check(self, tests: list[str]) -> None:
        """The unmutated code must pass ``tests`` in every worker, or no result means
        anything (a broken runner would "kill" every mutant)."""
        for _ in range(self.config.workers):
            place, server = self.free.get()
            try:
                if self._pytest(place, server, tests, self.config.timeout) is not Outcome.SURVIVED:
                    raise SystemExit(f"Without mutants, these tests fail in {place}: {tests}")
            finally:
                self.free.put((place, server))

    def run(self, mutant: Mutant, tests: list[str], usual: float = 0.0) -> Result:
        """``usual``: how long ``tests`` took unmutated. A run longer than three times
        that (and than ``timeout``) is a hang; a slow survivor is not."""
        if not tests:
            return Result(mutant, Outcome.NO_COVERAGE, 0, 0.0)
        place, server = self.free.get()
        target = place / mutant.module
        original = (self.config.root / mutant.module).read_text()
        try:
            target.write_text(mutant.apply(original))
            started = time.monotonic()
            limit = max(self.config.timeout, 30 + 3 * usual)
            outcome = self._pytest(place, server, tests, limit)
            return Result(mutant, outcome, len(tests), time.monotonic() - started)
        finally:
            target.write_text(original)
            self.free.put((place, server))

    def _pytest(
        self, place: Path, server: subprocess.Popen[str], tests: list[str], limit: float
    ) -> Outcome:
        plugins = [arg for plugin in self.config.pytest_plugins for arg in ("-p", plugin)]
        args = ["-x", "-q", "--no-header", "-p", "no:cacheprovider", *plugins, *tests]
        job = {"place": str(place), "args": args, "timeout": limit}
        assert server.stdin is not None
        assert server.stdout is not None
        server.stdin.write(json.dumps(job) + "\n")
        server.stdin.flush()
        answer = json.loads(server.stdout.readline())
        if answer["code"] is None:
            return Outcome.TIMEOUT
        # 0: every test passed. Anything else is the suite noticing: a failure, an
        # import the mutant broke (in a test module, 2, or in a conftest, 4)... except
        # a test that no longer exists, which means the coverage map is stale.
        if answer["code"] in (4, 5) and "not found" in answer["output"]:
            raise SystemExit("A test in the coverage map is gone: run without --reuse-coverage.")
        return Outcome.SURVIVED if answer["code"] == 0 else Outcome.KILLED


def run_all(
    workers: Workers,
    mutants: list[Mutant],
    coverage_map: CoverageMap,
    progress: Callable[[Result, int, int], None],
) -> list[Result]:
    for module in workers.config.modules:
        workers.check(coverage_map.tests_for(module, range(1, 100_000))[:30])
    results: list[Result] = []
    with ThreadPoolExecutor(max_workers=workers.config.workers) as pool:
        futures = []
        for mutant in mutants:
            tests = selected_tests(mutant, coverage_map, workers.config.tests)
            usual = sum(coverage_map.seconds.get(test, 0.0) for test in tests)
            futures.append(pool.submit(workers.run, mutant, tests, usual))
        for done, future in enumerate(futures, start=1):
            result = future.result()
            results.append(result)
            progress(result, done, len(mutants))
    return results
