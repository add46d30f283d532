"""``python -m mutation`` (``make mutate``): score each module, list the survivors."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

from mutation import config as configuration
from mutation import coverage_map
from mutation.operators import find_mutants
from mutation.runner import Outcome, Result, Workers, run_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mutation", description=__doc__)
    parser.add_argument(
        "modules", nargs="*", help="paths such as byok/crypto.py (default: [tool.mutate] modules)"
    )
    parser.add_argument("-j", "--workers", type=int, help="mutants run side by side")
    parser.add_argument(
        "--reuse-coverage",
        action="store_true",
        help="keep the coverage map of the last run (the code and tests are unchanged)",
    )
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    parser.add_argument("--line", type=int, action="append", help="only mutants on this line")
    args = parser.parse_args(argv)

    root = Path.cwd()
    config = configuration.load(root)
    if args.modules:
        config = dataclasses.replace(config, modules=tuple(args.modules))
    if args.workers:
        config = dataclasses.replace(config, workers=args.workers)
    if not config.modules:
        parser.error("no module to mutate: name one, or set [tool.mutate] modules")

    mutants = [
        mutant
        for module in config.modules
        for mutant in find_mutants(
            (root / module).read_text(), module, module, config.skip_strings_in
        )
        if not args.line or mutant.lineno in args.line
    ]
    if args.list:
        for mutant in mutants:
            print(mutant.describe())
        print(f"{len(mutants)} mutants")
        return 0

    started = time.monotonic()
    config.state.mkdir(exist_ok=True)
    pytest = Path(sys.executable).parent / "pytest"
    env = coverage_map.reset_environment(os.environ)
    reusable = (config.state / "coverage.json").exists() and args.reuse_coverage
    if reusable:
        covered = coverage_map.load(config)
    else:
        print("Running the suite once under coverage to map lines to tests...", flush=True)
        covered = coverage_map.build(config, pytest, env)
    missing = [module for module in config.modules if module not in covered.lines]
    if missing:
        parser.error(f"the coverage map has no {', '.join(missing)}: drop --reuse-coverage")
    print(f"{len(mutants)} mutants, {config.workers} at a time", flush=True)

    def progress(result: Result, done: int, total: int) -> None:
        if not result.outcome.detected:
            print(
                f"[{done}/{total}] {result.outcome.value}: {result.mutant.describe()}", flush=True
            )
        elif done % 25 == 0:
            print(f"[{done}/{total}]", flush=True)

    workers = Workers(config, env)
    try:
        results = run_all(workers, mutants, covered, progress)
    finally:
        workers.close()
    elapsed = time.monotonic() - started
    print(report(config.modules, results, elapsed))
    (config.state / "report.json").write_text(json.dumps(as_json(results, elapsed), indent=1))
    return 0


def report(modules: tuple[str, ...], results: list[Result], elapsed: float) -> str:
    header = "module                      mutants  killed  timeout  survived  uncovered  score"
    lines = ["", header]
    for module in modules:
        counts = Counter(r.outcome for r in results if r.mutant.module == module)
        total = sum(counts.values())
        lines.append(
            f"{module:<28}{total:>7}{counts[Outcome.KILLED]:>8}{counts[Outcome.TIMEOUT]:>9}"
            f"{counts[Outcome.SURVIVED]:>10}{counts[Outcome.NO_COVERAGE]:>11}  {score(counts)}"
        )
    lines.append(f"\n{len(results)} mutants in {elapsed / 60:.1f} min.")
    survivors = [r for r in results if not r.outcome.detected]
    if survivors:
        lines.append("\nSurvivors (the tests pass with this change):")
        lines.extend(f"  {r.mutant.describe()}  ({r.outcome.value})" for r in survivors)
    return "\n".join(lines)


def score(counts: Counter[Outcome]) -> str:
    total = sum(counts.values())
    if not total:
        return "-"
    detected = counts[Outcome.KILLED] + counts[Outcome.TIMEOUT]
    return f"{100 * detected / total:.0f} %"


def as_json(results: list[Result], elapsed: float) -> dict[str, object]:
    return {
        "seconds": round(elapsed),
        "mutants": [
            {
                "where": f"{r.mutant.path}:{r.mutant.lineno}",
                "operator": r.mutant.operator,
                "original": r.mutant.original,
                "replacement": r.mutant.replacement,
                "outcome": r.outcome.value,
                "tests": r.tests,
                "seconds": round(r.seconds, 1),
            }
            for r in results
        ],
    }


if __name__ == "__main__":
    sys.exit(main())
