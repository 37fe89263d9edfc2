"""The ``worker_memory`` row: does a process's memory stay flat over many items?

A worker serves items for days, so any per-item growth (a cache without a
bound, sessions or threads that are never released) ends in the OOM killer.
The row runs items through the pipeline in a fresh process with the real
model, the embedded path of ``sieve run`` (:mod:`jobs.embedded`: SQLite, the
sandboxed extraction, the same ``process_item_run`` a Celery worker calls),
and samples the process's RSS with psutil after every item. Flat means the
mean of the last fifth of the items within 5 % of the mean of the first fifth.
"""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.model_rows import DOCUMENTS
from bench.rows import Row
from jobs import commands
from jobs.settings import Settings
from jobs.submit import submit
from worker.task_specs import build_task

GOAL_PERCENT = 5.0
WINDOW_FRACTION = 0.2
_MIB = 1024 * 1024
# A short answer keeps the row quick: a label and a reason of at most 40 characters.
_LABELS = ["memo", "invoice", "minutes", "email"]
_MAX_TEXT_CHARS = 40
_MAX_OUTPUT_TOKENS = 96


@dataclass(frozen=True)
class MemoryWindows:
    """Mean RSS over the first and the last window of items, in MiB."""

    first_mib: float
    last_mib: float
    window_items: int

    @property
    def growth_percent(self) -> float:
        """How much the last window's mean exceeds the first's (negative: it shrank)."""
        return (self.last_mib - self.first_mib) / self.first_mib * 100

    @property
    def flat(self) -> bool:
        """Within :data:`GOAL_PERCENT` of the first window, either way."""
        return abs(self.growth_percent) <= GOAL_PERCENT


def memory_windows(rss_bytes: Sequence[int], fraction: float = WINDOW_FRACTION) -> MemoryWindows:
    """Compare the mean RSS of the first and last ``fraction`` of samples (one per item).

    500 samples give windows of 100; a window holds at least one sample.
    Raises ValueError for no samples.
    """
    if not rss_bytes:
        raise ValueError("no RSS samples")
    window = max(1, round(len(rss_bytes) * fraction))
    first = sum(rss_bytes[:window]) / window / _MIB
    last = sum(rss_bytes[-window:]) / window / _MIB
    return MemoryWindows(first_mib=first, last_mib=last, window_items=window)


def rss_profile_mib(rss_bytes: Sequence[int], points: int = 5) -> list[float]:
    """RSS in MiB at ``points`` evenly spaced items, first and last included.

    Tells growth that goes on (rising to the end) from a warm-up that levels
    off (rising, then flat), which two window means alone cannot.
    """
    if not rss_bytes:
        return []
    last = len(rss_bytes) - 1
    positions = sorted({round(last * n / (points - 1)) for n in range(points)})
    return [round(rss_bytes[position] / _MIB, 1) for position in positions]


def worker_memory(scratch: Path, item_count: int) -> Row:
    """RSS of the last fifth of ``item_count`` items against the first fifth's, in MiB."""
    data_dir = scratch / "memory-data"
    item_run_ids = _submit_documents(data_dir, item_count)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=_run_items_in_child, args=(str(data_dir), item_run_ids, results))
    child.start()
    rss_bytes, states = _child_result(child, results)
    child.join()
    windows = memory_windows(rss_bytes)
    return Row(
        "worker_memory",
        windows.last_mib,
        windows.first_mib,
        "MiB RSS (last vs first fifth)",
        higher_is_better=False,
        notes={
            "items": item_count,
            "window": windows.window_items,
            "growth_percent": round(windows.growth_percent, 2),
            "flat": windows.flat,
            "rss_mib_profile": rss_profile_mib(rss_bytes),
            "done": f"{states.count('done')}/{item_count}",
            "path": "in-process (jobs.embedded), SQLite, sandboxed extraction",
        },
    )


def _child_result(child: Any, results: Any) -> tuple[list[int], list[str]]:
    """What the child put, or an error as soon as it died without putting anything."""
    while True:
        try:
            rss_bytes, states = results.get(timeout=5)
            return rss_bytes, states
        except queue.Empty:
            if not child.is_alive():
                raise RuntimeError(
                    f"the worker_memory child exited with {child.exitcode} before reporting"
                ) from None


def _memory_settings(data_dir: Path) -> Settings:
    """The embedded default (SQLite in ``data_dir``) with the bundled model and a short answer."""
    return Settings(
        data_dir=data_dir,
        database_url=None,
        model={
            "n_ctx": 2048,
            "max_text_chars": _MAX_TEXT_CHARS,
            "max_output_tokens": _MAX_OUTPUT_TOKENS,
        },
    )


def _submit_documents(data_dir: Path, item_count: int) -> list[int]:
    """Record ``item_count`` distinct short documents as one classify job; its item runs."""
    inputs = data_dir / "inputs"
    inputs.mkdir(parents=True)
    for number in range(item_count):
        document = DOCUMENTS[number % len(DOCUMENTS)]
        (inputs / f"doc-{number:05d}.txt").write_text(f"{document} (item {number})")
    settings = _memory_settings(data_dir)
    engine, session_factory = commands.open_database(settings)
    task = build_task("classify", {"labels": _LABELS}, _MAX_TEXT_CHARS)
    submission = submit(
        session_factory, settings, paths=[inputs], task=task, name="bench memory", executor="bench"
    )
    engine.dispose()
    return submission.item_run_ids


def _run_items_in_child(data_dir: str, item_run_ids: list[int], results: Any) -> None:
    """In a fresh process: load the model, run every item, put (RSS per item, states)."""
    import psutil

    from jobs.embedded import build_in_process_context, run_item_runs
    from worker.pipeline import ItemOutcome

    settings = _memory_settings(Path(data_dir))
    engine, session_factory = commands.open_database(settings)
    context = build_in_process_context(settings, session_factory)
    process = psutil.Process()
    rss_bytes: list[int] = []
    states: list[str] = []

    def sample(outcome: ItemOutcome) -> None:
        rss_bytes.append(process.memory_info().rss)
        states.append(outcome.state.value if outcome.state else "none")

    run_item_runs(context, item_run_ids, on_outcome=sample)
    engine.dispose()
    results.put((rss_bytes, states))
