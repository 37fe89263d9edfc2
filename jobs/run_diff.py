"""``sieve diff RUN_A RUN_B``: how two runs of a job answered, item by item.

Two runs are compared on the items they share by the answer's top-level
fields, and by state and error code when an item did not end the same way.
An item only one run included is ``only_in_a`` or ``only_in_b``. Items are
matched by item id: the same content in the same job.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Item, ItemRun, Result, Run
from worker import errors

Status = Literal["unchanged", "changed", "only_in_a", "only_in_b"]
STATUSES: tuple[Status, ...] = ("unchanged", "changed", "only_in_a", "only_in_b")


@dataclass(frozen=True)
class Outcome:
    """How one item ended in one run."""

    state: str
    error_code: str | None
    output: dict[str, Any] | None


@dataclass(frozen=True)
class ItemDiff:
    """One item across the two runs; ``changes`` maps each differing field to (a, b)."""

    item_id: int
    path: str
    status: Status
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def as_row(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "path": self.path,
            "status": self.status,
            "changes": {name: {"a": a, "b": b} for name, (a, b) in self.changes.items()},
        }


def _outcomes(session: Session, run_id: int) -> dict[int, tuple[str, Outcome]]:
    rows = session.execute(
        select(ItemRun.item_id, Item.path, ItemRun.state, ItemRun.error_code, Result.output)
        .join(Item, Item.id == ItemRun.item_id)
        .outerjoin(Result, (Result.item_id == ItemRun.item_id) & (Result.run_id == run_id))
        .where(ItemRun.run_id == run_id)
    )
    return {
        item_id: (path, Outcome(state.value, error_code, output))
        for item_id, path, state, error_code, output in rows
    }


def compare(a: Outcome, b: Outcome) -> dict[str, tuple[Any, Any]]:
    """The fields in which two outcomes of one item differ (empty: unchanged)."""
    changes: dict[str, tuple[Any, Any]] = {}
    if a.state != b.state:
        changes["state"] = (a.state, b.state)
    if a.error_code != b.error_code:
        changes["error_code"] = (a.error_code, b.error_code)
    left, right = a.output or {}, b.output or {}
    for name in sorted(left.keys() | right.keys()):
        if left.get(name) != right.get(name):
            changes[f"output.{name}"] = (left.get(name), right.get(name))
    return changes


def diff_runs(session: Session, run_a_id: int, run_b_id: int) -> Iterator[ItemDiff]:
    """Every item of either run, in item order, with how it changed from A to B."""
    runs = {run_id: session.get(Run, run_id) for run_id in (run_a_id, run_b_id)}
    for run_id, run in runs.items():
        if run is None:
            raise errors.NotFoundError(f"no run with id {run_id}")
    run_a, run_b = runs[run_a_id], runs[run_b_id]
    assert run_a is not None and run_b is not None
    if run_a.job_id != run_b.job_id:
        raise errors.UsageError(
            f"run {run_a_id} is of job {run_a.job_id} and run {run_b_id} of job {run_b.job_id}; "
            "only runs of one job can be compared"
        )
    in_a, in_b = _outcomes(session, run_a_id), _outcomes(session, run_b_id)
    for item_id in sorted(in_a.keys() | in_b.keys()):
        if item_id not in in_b:
            yield ItemDiff(item_id, in_a[item_id][0], "only_in_a")
        elif item_id not in in_a:
            yield ItemDiff(item_id, in_b[item_id][0], "only_in_b")
        else:
            changes = compare(in_a[item_id][1], in_b[item_id][1])
            yield ItemDiff(
                item_id, in_a[item_id][0], "changed" if changes else "unchanged", changes
            )


def summarise(diffs: list[ItemDiff]) -> dict[str, int]:
    """Counts by status, every status present."""
    counts = Counter(diff.status for diff in diffs)
    return {status: counts.get(status, 0) for status in STATUSES}
