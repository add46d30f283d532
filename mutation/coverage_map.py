"""Which tests run which line: the suite once under coverage, one context per test.

pytest-cov names each context after the test's node id (``…::test_x|run``), so
the map gives, for every line of a mutated module, the tests to run against a
mutant of it. The same run's JUnit report gives each test's time: mutants run
the quick tests first, since most of them fail at once.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from coverage import CoverageData

from mutation.config import Config

#: The context of code run outside any test: imports, module and class bodies.
IMPORT_TIME = ""


@dataclass(frozen=True)
class CoverageMap:
    #: ``{module path: {line: node ids}}``.
    lines: dict[str, dict[int, list[str]]]
    #: ``{node id: seconds}``.
    seconds: dict[str, float]

    def tests_for(self, module: str, wanted: Iterable[int]) -> list[str]:
        """The tests that run any of ``wanted`` lines of ``module``, quickest first."""
        by_line = self.lines.get(module, {})
        found = {test for line in wanted for test in by_line.get(line, ())}
        found.discard(IMPORT_TIME)
        return sorted(found, key=lambda test: (self.seconds.get(test, 0.0), test))


def build(config: Config, pytest: Path, env: Mapping[str, str]) -> CoverageMap:
    """Run the suite with per-test contexts; stop if it does not pass."""
    data_file = config.state / "coverage.sqlite"
    data_file.unlink(missing_ok=True)
    timings = config.state / "timings.xml"
    command = [
        str(pytest),
        "-q",
        "-p",
        "no:cacheprovider",
        "--cov=byok",
        "--cov-context=test",
        "--cov-report=",
        "--cov-fail-under=0",  # a part of the suite covers a part of byok
        f"--junitxml={timings}",
        *(f"--ignore={path}" for path in config.skip_tests),
        *_test_paths(config),
    ]
    # This checkout's byok, whatever the virtualenv has installed.
    environment = {**env, "COVERAGE_FILE": str(data_file), "PYTHONPATH": str(config.root)}
    result = subprocess.run(command, cwd=config.root, env=environment, check=False)
    if result.returncode != 0:
        raise SystemExit("The suite does not pass without mutants; fix that first.")
    data = CoverageData(basename=str(data_file))
    data.read()
    lines = {
        module: {
            line: sorted({_node_id(context) for context in contexts})
            for line, contexts in data.contexts_by_lineno(str(config.root / module)).items()
        }
        for module in config.modules
    }
    coverage_map = CoverageMap(lines, _durations(timings, config.root))
    (config.state / "coverage.json").write_text(
        json.dumps({"lines": coverage_map.lines, "seconds": coverage_map.seconds})
    )
    return coverage_map


def load(config: Config) -> CoverageMap:
    raw = json.loads((config.state / "coverage.json").read_text())
    lines = {
        module: {int(line): tests for line, tests in by_line.items()}
        for module, by_line in raw["lines"].items()
    }
    return CoverageMap(lines, raw["seconds"])


def reset_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The environment mutants run in: SQLite in memory, no coverage of their own."""
    dropped = ("DATABASE_URL", "COVERAGE_PROCESS_START", "COVERAGE_FILE", "PYTHONPATH")
    clean = {name: value for name, value in env.items() if name not in dropped}
    clean["PYTHONDONTWRITEBYTECODE"] = "1"
    return clean


def _test_paths(config: Config) -> list[str]:
    """Only the modules' own tests, when each module names them: the map is then
    made in a fraction of the suite's time."""
    if not all(module in config.tests for module in config.modules):
        return []
    paths = {path for module in config.modules for path in config.tests[module]}
    return sorted(path for path in paths if (config.root / path).exists())


def _node_id(context: str) -> str:
    return context.rpartition("|")[0] if "|" in context else context


def _durations(junit_xml: Path, root: Path) -> dict[str, float]:
    tree = ElementTree.parse(junit_xml)  # noqa: S314 - the report our own pytest just wrote
    return {
        _node_id_of(root, case.get("classname", ""), case.get("name", "")): float(
            case.get("time", 0)
        )
        for case in tree.iter("testcase")
    }


def _node_id_of(root: Path, classname: str, name: str) -> str:
    """JUnit's ``tests.rest.test_x.TestY`` and ``test_z[a]`` as a pytest node id."""
    parts = classname.split(".")
    for end in range(len(parts), 0, -1):
        if root.joinpath(*parts[:end]).with_suffix(".py").exists():
            return "::".join(["/".join(parts[:end]) + ".py", *parts[end:], name])
    return name
