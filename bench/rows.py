"""One benchmark row and the timing helper every row uses."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Row:
    """Sieve's figure against a baseline measured in the same run on the same inputs.

    ``higher_is_better`` says which way the unit points (pages/s: up; tokens
    evaluated per item: down); ``ratio`` is always oriented so that above 1
    means Sieve is better.
    """

    name: str
    sieve: float
    baseline: float
    unit: str
    higher_is_better: bool = True
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        if not self.baseline or not self.sieve:
            return float("nan")
        return self.sieve / self.baseline if self.higher_is_better else self.baseline / self.sieve

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sieve": self.sieve,
            "baseline": self.baseline,
            "unit": self.unit,
            "ratio": self.ratio,
            "notes": self.notes,
        }


def timed(work: Callable[[], object]) -> float:
    """Wall seconds ``work`` takes."""
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def least_time(work: Callable[[], object], tries: int) -> float:
    """The shortest of ``tries`` wall times of ``work``: the run least disturbed by the machine.

    For rows of about a second, where one stray process would swing a single timing.
    """
    return min(timed(work) for _ in range(tries))


def rate_row(
    name: str,
    amount: float,
    through_sieve: Callable[[], object],
    bare: Callable[[], object],
    unit: str,
    notes: dict[str, Any] | None = None,
) -> Row:
    """A throughput row: ``amount`` of work per second through Sieve and through the baseline."""
    return Row(name, amount / timed(through_sieve), amount / timed(bare), unit, notes=notes or {})
