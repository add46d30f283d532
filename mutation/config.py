"""The ``[tool.mutate]`` table of pyproject.toml, with defaults."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass(frozen=True)
class Config:
    root: Path
    modules: tuple[str, ...] = ()
    #: Calls whose string arguments are documentation, not behaviour (schema text).
    skip_strings_in: frozenset[str] = frozenset()
    #: Plugins each mutant's pytest loads (autoloading the others costs seconds a run).
    pytest_plugins: tuple[str, ...] = ()
    #: Test paths neither mapped nor run (the browser tests see nothing the others miss).
    skip_tests: tuple[str, ...] = ()
    #: Per module, the test paths its mutants run (those of them that cover the line).
    tests: dict[str, tuple[str, ...]] = field(default_factory=dict)
    workers: int = 2
    timeout: float = 300.0
    work_dir: Path = field(default=Path(".mutation"))

    @property
    def state(self) -> Path:
        return self.root / self.work_dir


def load(root: Path) -> Config:
    with (root / "pyproject.toml").open("rb") as file:
        table: dict[str, Any] = tomllib.load(file).get("tool", {}).get("mutate", {})
    return Config(
        root=root,
        modules=tuple(table.get("modules", ())),
        skip_strings_in=frozenset(table.get("skip_strings_in", ())),
        pytest_plugins=tuple(table.get("pytest_plugins", ())),
        skip_tests=tuple(table.get("skip_tests", ())),
        tests={module: tuple(paths) for module, paths in table.get("tests", {}).items()},
        workers=int(table.get("workers", 2)),
        timeout=float(table.get("timeout", 300)),
    )
