"""The Celery task: a thin wrapper that hands an item run to the pipeline.

The model and the database engine are created once per worker *child*
process, after the fork (a model or a connection pool must never be shared
across fork), by the ``worker_process_init`` handler registered below. The
worker's main process runs the recovery sweep once the pool is up.

With ``model.parallel_sequences`` above 1 there is no fork: one process runs
Celery's thread pool, a thread (a *lane*) per item in flight, all sharing the
one model, whose batcher decodes their calls together. Each lane has its own
identity (``worker@host:pid/lane``) on the leases it takes.
"""

from __future__ import annotations

import logging
import threading

from celery import Celery, Task, signals
from celery.exceptions import SoftTimeLimitExceeded

from db import audit
from db.session import make_engine, make_session_factory, transaction
from worker import errors, leases
from worker.celery_app import PROCESS_ITEM_TASK
from worker.config import WorkerConfig
from worker.dispatch import Dispatcher
from worker.lanes import LaneContexts
from worker.model import load_process_model
from worker.pipeline import (
    ItemOutcome,
    PipelineContext,
    end_attempt_after_database_errors,
    process_item_run,
)

logger = logging.getLogger(__name__)


def runs_lanes(config: WorkerConfig) -> bool:
    """Whether this worker serves several items at once from one model process."""
    return config.model.parallel_sequences > 1


class WorkerProcess:
    """This process's pipeline context, built on first use (once per child)."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self._context: PipelineContext | None = None
        self._loading = threading.Lock()
        self._lanes: LaneContexts | None = None

    def context(self) -> PipelineContext:
        """This thread's context: the process's, under the thread's lane identity."""
        shared = self.process_context()
        if not runs_lanes(self.config):
            return shared
        with self._loading:
            if self._lanes is None:
                self._lanes = LaneContexts(shared)
        return self._lanes.for_this_thread()

    def process_context(self) -> PipelineContext:
        """Load the model and open the database for this process (once)."""
        with self._loading:
            return self._load()

    def _load(self) -> PipelineContext:
        if self._context is None:
            config = self.config
            model = load_process_model(config.model, config.data_dir / "model-hashes.json")
            engine = make_engine(config.resolved_database_url)
            self._context = PipelineContext(
                config=config,
                session_factory=make_session_factory(engine),
                model=model,
                worker_id=leases.process_identity("worker", config.worker.host_name),
                interruptions=(SoftTimeLimitExceeded,),
            )
            _record_worker_start(self._context)
            logger.info(
                "%s ready: model %s (sha256 %s…), vision=%s",
                self._context.worker_id,
                model.info.name,
                model.info.sha256[:12],
                model.info.supports_vision,
            )
        return self._context


def _record_worker_start(context: PipelineContext) -> None:
    """Audit which model, with which capabilities, this worker process serves."""
    info = context.model.info
    with transaction(context.session_factory) as session:
        audit.append_event(
            session,
            audit.EventDraft(
                "worker.started",
                context.worker_id,
                details={
                    "model_name": info.name,
                    "model_sha256": info.sha256,
                    "mmproj": info.mmproj_path,
                    "n_ctx": info.n_ctx,
                    # What items can be given to it; audio goes in as transcripts,
                    # the chat handlers pass no audio even where the projector could.
                    "modalities": ["text"] + (["image"] if info.supports_vision else []),
                    "projector_hears_audio": info.supports_audio,
                    # Items served at once by this process's one model.
                    "parallel_sequences": context.config.model.parallel_sequences,
                },
            ),
        )


def register_worker_tasks(app: Celery, config: WorkerConfig) -> WorkerProcess:
    """Add Sieve's task and its process hooks to ``app``; return the per-process holder."""
    process = WorkerProcess(config)

    def load_model(**_: object) -> None:
        process.process_context()

    def start_recovery_sweep(**_: object) -> None:
        # In the main process, once the pool is up: re-drive what the broker
        # lost while no worker was running (a Redis restart, a killed worker).
        from worker.sweeper import start_sweeper

        start_sweeper(config, Dispatcher(app, config.worker.queue))

    # weak=False: these closures have no other reference and must outlive this call.
    # Lanes run in the worker's own process, so the model loads there, before
    # the first message; prefork children load theirs after the fork.
    load_signal = signals.worker_init if runs_lanes(config) else signals.worker_process_init
    load_signal.connect(load_model, weak=False)
    signals.worker_ready.connect(start_recovery_sweep, weak=False)

    @app.task(name=PROCESS_ITEM_TASK, bind=True, max_retries=None)
    def process_item(self: Task, item_run_id: int) -> str | None:
        """Process one item run; retry later on transient failures."""
        try:
            outcome = process_item_run(process.context(), item_run_id)
        except errors.DatabaseUnavailableError as exc:
            # Retry the message within the database budget. Past it, the attempt
            # ends as a transient failure (queued again, or retries_exhausted
            # past the item's own budget); if even that cannot be written, the
            # message is dropped and the recovery sweep re-drives the item once
            # its lease runs out, its attempts still counted in the database.
            retries = self.request.retries
            if retries < config.worker.database_retry_limit:
                logger.warning("item run %s: %s; retrying", item_run_id, exc.message)
                raise self.retry(countdown=_backoff_seconds(config, retries), exc=exc) from exc
            outcome = _end_attempt(process.context(), item_run_id, exc)
            if outcome is None:
                return None
        if outcome.new_item_run_ids:
            _publish_children(app, config, process.context(), outcome.new_item_run_ids)
        if outcome.retry:
            countdown = outcome.retry_after_s or _backoff_seconds(config, self.request.retries)
            raise self.retry(countdown=countdown)
        return outcome.state.value if outcome.state else None

    return process


def _publish_children(
    app: Celery, config: WorkerConfig, context: PipelineContext, item_run_ids: tuple[int, ...]
) -> None:
    """Publish the item runs of files found inside an item; the sweep does it if this fails."""
    try:
        Dispatcher(app, config.worker.queue).publish(
            context.session_factory, item_run_ids, context.worker_id
        )
    except Exception:
        logger.exception(
            "could not publish %d item run(s) found inside an item; the sweep will",
            len(item_run_ids),
        )


def _end_attempt(
    context: PipelineContext, item_run_id: int, error: errors.SieveError
) -> ItemOutcome | None:
    try:
        return end_attempt_after_database_errors(context, item_run_id, error)
    except Exception:
        logger.exception(
            "item run %s: the database is still away; leaving it to the sweep", item_run_id
        )
        return None


def _backoff_seconds(config: WorkerConfig, retries: int) -> float:
    """Exponential backoff from ``worker.retry_backoff_s``, capped at five minutes."""
    return float(min(300.0, config.worker.retry_backoff_s * 2**retries))
