"""In-process execution: the same pipeline as a worker, without any server.

``sieve run`` uses this on the embedded default (SQLite in the data directory),
so a laptop needs no Postgres, Redis or Celery to process a folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session, sessionmaker

from jobs.settings import Settings
from worker import errors, leases, pipeline
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
    """Process item runs one after another; transient failures get their retries here.

    Each item's retries are bounded by ``worker.max_attempts`` (the pipeline
    ends it ``retries_exhausted`` past that); a database that stays away for
    ``worker.database_retry_limit`` tries raises its error.
    """
    outcomes: list[ItemOutcome] = []
    for item_run_id in item_run_ids:
        outcome = _process_with_retries(context, item_run_id)
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    return outcomes


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
