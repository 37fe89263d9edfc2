"""In-process execution: the same pipeline as a worker, without any server.

``sieve run`` uses this on the embedded default (SQLite in the data directory),
so a laptop needs no Postgres, Redis or Celery to process a folder.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from sqlalchemy.orm import Session, sessionmaker

from jobs.settings import Settings
from worker import errors, leases, pipeline
from worker.lanes import LaneContexts
from worker.model import load_process_model
from worker.pipeline import ItemOutcome, PipelineContext

OutcomeCallback = Callable[[ItemOutcome], None]


def build_in_process_context(
    settings: Settings, session_factory: sessionmaker[Session]
) -> PipelineContext:
    """Load the model (once per process) and bind it to the database."""
    model = load_process_model(settings.model, settings.data_dir / "model-hashes.json")
    return PipelineContext(
        config=settings,
        session_factory=session_factory,
        model=model,
        worker_id=leases.process_identity("sieve-run"),
    )


def run_item_runs(
    context: PipelineContext,
    item_run_ids: Sequence[int],
    on_outcome: OutcomeCallback | None = None,
) -> list[ItemOutcome]:
    """Process item runs; transient failures get their retries here.

    One after another, or, with ``model.parallel_sequences`` above 1, that
    many at once on lanes of their own (as a worker runs them), so their model
    calls are decoded together. Outcomes come back in the order of
    ``item_run_ids``, each family's children after them. Each item's retries are bounded by
    ``worker.max_attempts`` (the pipeline ends it ``retries_exhausted`` past
    that); a database that stays away for ``worker.database_retry_limit``
    tries raises its error.
    """
    lanes = context.config.model.parallel_sequences
    if lanes == 1:
        return _run_serially(context, item_run_ids, on_outcome)
    reporting = threading.Lock()
    lane_contexts = LaneContexts(context)

    def process(item_run_id: int) -> ItemOutcome:
        outcome = _process_with_retries(lane_contexts.for_this_thread(), item_run_id)
        with reporting:
            return _report(outcome, on_outcome)

    outcomes: list[ItemOutcome] = []
    with ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="sieve-lane") as pool:
        waiting = {pool.submit(process, id_) for id_ in item_run_ids}
        while waiting:
            finished, waiting = wait(waiting, return_when=FIRST_COMPLETED)
            for future in sorted(finished, key=lambda f: f.result().item_run_id):
                outcome = future.result()
                outcomes.append(outcome)
                # Files found inside the item (messages, attachments) are items too.
                waiting |= {pool.submit(process, id_) for id_ in outcome.new_item_run_ids}
    order = {id_: index for index, id_ in enumerate(item_run_ids)}
    return sorted(outcomes, key=lambda o: (order.get(o.item_run_id, len(order)), o.item_run_id))


def _run_serially(
    context: PipelineContext, item_run_ids: Sequence[int], on_outcome: OutcomeCallback | None
) -> list[ItemOutcome]:
    """One item after another; the children an item yields are processed right after it."""
    outcomes: list[ItemOutcome] = []
    waiting = deque(item_run_ids)
    while waiting:
        outcome = _report(_process_with_retries(context, waiting.popleft()), on_outcome)
        outcomes.append(outcome)
        waiting.extendleft(reversed(outcome.new_item_run_ids))
    return outcomes


def _report(outcome: ItemOutcome, on_outcome: OutcomeCallback | None) -> ItemOutcome:
    if on_outcome is not None:
        on_outcome(outcome)
    return outcome


def _process_with_retries(context: PipelineContext, item_run_id: int) -> ItemOutcome:
    worker = context.config.worker
    database_retries = 0
    while True:
        try:
            outcome = pipeline.process_item_run(context, item_run_id)
        except errors.DatabaseUnavailableError as exc:
            database_retries += 1
            if database_retries <= worker.database_retry_limit:
                time.sleep(min(30.0, worker.retry_backoff_s * 2 ** (database_retries - 1)))
                continue
            outcome = pipeline.end_attempt_after_database_errors(context, item_run_id, exc)
            database_retries = 0
        # Only a transient failure is retried here; an item leased by another
        # process (state None) is that process's to finish.
        if not (outcome.retry and outcome.state is not None):
            return outcome
