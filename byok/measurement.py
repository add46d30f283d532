"""How calls went: outcome and latency, kept as counters on the day's usage rows.

Each measured call adds 1 to one outcome column and to one latency bucket of the
row :func:`byok.track_api_usage` already adds its usage to, in the same statement:
measuring costs no write of its own and the storage is bounded (a fixed set of
columns per key, model and day, never a row per call). Percentiles are read back
from the buckets, so they are as precise as the buckets are wide.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Outcome (as :class:`byok.clients.Outcome` names it) → the day row's counter.
OUTCOME_COLUMNS: dict[str, str] = {
    "ok": "ok_calls",
    "4xx": "client_errors",
    "429": "rate_limited",
    "5xx": "server_errors",
    "timeout": "timeouts",
    # No answer (the connection failed), or an answer neither 2xx, 4xx nor 5xx.
    "error": "other_errors",
}
#: The outcomes that count as errors in an error rate (a 429 is counted apart).
ERROR_OUTCOMES = ("4xx", "5xx", "timeout", "error")

#: Upper bounds (milliseconds, inclusive) of the latency buckets; one more bucket
#: holds every call slower than the last bound.
LATENCY_BOUNDS: tuple[int, ...] = (50, 100, 250, 500, 1000, 2500, 5000, 10000)
#: The bucket columns, fastest first; the last is the open one.
LATENCY_COLUMNS: tuple[str, ...] = (
    *(f"latency_le_{bound}" for bound in LATENCY_BOUNDS),
    f"latency_gt_{LATENCY_BOUNDS[-1]}",
)
#: Every column a measurement adds to.
MEASUREMENT_COLUMNS: tuple[str, ...] = (*OUTCOME_COLUMNS.values(), *LATENCY_COLUMNS)


def bucket_of(latency_ms: int) -> str:
    """The bucket column a call of ``latency_ms`` milliseconds counts in."""
    for bound, column in zip(LATENCY_BOUNDS, LATENCY_COLUMNS, strict=False):
        if latency_ms <= bound:
            return column
    return LATENCY_COLUMNS[-1]


def check(latency_ms: object, outcome: object) -> None:
    """``ValueError`` for a latency or an outcome :func:`counters` cannot record."""
    if latency_ms is not None and (
        not isinstance(latency_ms, int) or isinstance(latency_ms, bool) or latency_ms < 0
    ):
        raise ValueError("latency_ms must be a non-negative integer (milliseconds).")
    if outcome is not None and outcome not in OUTCOME_COLUMNS:
        raise ValueError(f"outcome must be one of: {', '.join(OUTCOME_COLUMNS)}.")


def counters(calls: int, latency_ms: int | None, outcome: str | None) -> dict[str, int]:
    """What ``calls`` calls that ended with ``outcome`` after ``latency_ms`` add to the
    day's row: every measurement column, ``calls`` in the outcome's and the latency's
    bucket (none without a measurement), 0 in the others."""
    added = dict.fromkeys(MEASUREMENT_COLUMNS, 0)
    if outcome is not None:
        added[OUTCOME_COLUMNS[outcome]] = calls
    if latency_ms is not None:
        added[bucket_of(latency_ms)] = calls
    return added


@dataclass(frozen=True)
class Percentile:
    """A percentile as the buckets know it: within ``(above_ms, at_most_ms]``;
    ``at_most_ms`` is ``None`` in the open bucket past the last bound."""

    above_ms: int
    at_most_ms: int | None

    @property
    def sort_key(self) -> int:
        return self.at_most_ms if self.at_most_ms is not None else LATENCY_BOUNDS[-1] + 1

    def __str__(self) -> str:
        if self.at_most_ms is None:
            return f"> {self.above_ms:,} ms"
        return f"≤ {self.at_most_ms:,} ms"


def percentile(buckets: Sequence[int], fraction: float) -> Percentile | None:
    """The bucket the ``fraction`` (0.5 for the median) percentile falls in, from the
    bucket counts (fastest first, :data:`LATENCY_COLUMNS`' order); ``None`` without
    a measured call. The nearest-rank method: the smallest bucket that holds at
    least ``fraction`` of the calls."""
    if not 0 < fraction <= 1:
        raise ValueError("fraction must be in (0, 1].")
    if len(buckets) != len(LATENCY_COLUMNS):
        raise ValueError(f"expected {len(LATENCY_COLUMNS)} bucket counts.")
    total = sum(buckets)
    if total <= 0:
        return None
    rank = max(1, math.ceil(total * fraction))
    seen = 0
    lower = 0
    for index, count in enumerate(buckets):
        seen += count
        upper = LATENCY_BOUNDS[index] if index < len(LATENCY_BOUNDS) else None
        if seen >= rank:
            return Percentile(lower, upper)
        lower = upper if upper is not None else lower
    raise AssertionError("unreachable: the last bucket holds the rest")  # pragma: no cover


@dataclass(frozen=True)
class Measured:
    """The outcomes and latencies of a set of calls, added up."""

    outcomes: Mapping[str, int]
    buckets: Sequence[int]

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Measured:
        """From a row (or an aggregate) with the measurement columns."""
        return cls(
            {outcome: int(row.get(column) or 0) for outcome, column in OUTCOME_COLUMNS.items()},
            [int(row.get(column) or 0) for column in LATENCY_COLUMNS],
        )

    def __add__(self, other: Measured) -> Measured:
        return Measured(
            {name: count + other.outcomes[name] for name, count in self.outcomes.items()},
            [a + b for a, b in zip(self.buckets, other.buckets, strict=True)],
        )

    @property
    def calls(self) -> int:
        """Calls whose outcome was recorded."""
        return sum(self.outcomes.values())

    @property
    def errors(self) -> int:
        return sum(self.outcomes[name] for name in ERROR_OUTCOMES)

    @property
    def rate_limited(self) -> int:
        return self.outcomes["429"]

    @property
    def timed(self) -> int:
        """Calls whose latency was recorded."""
        return sum(self.buckets)

    def error_rate(self) -> float | None:
        return self.errors / self.calls if self.calls else None

    def rate_limit_rate(self) -> float | None:
        return self.rate_limited / self.calls if self.calls else None

    def p50(self) -> Percentile | None:
        return percentile(self.buckets, 0.5)

    def p95(self) -> Percentile | None:
        return percentile(self.buckets, 0.95)


NOTHING_MEASURED = Measured(dict.fromkeys(OUTCOME_COLUMNS, 0), [0] * len(LATENCY_COLUMNS))
