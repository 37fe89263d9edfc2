"""Celery tasks: thin wrappers that hand an item run to the pipeline.

The model and the database engine are created once per worker *child*
process, after the fork (a model or a connection pool must never be shared
across fork), by the ``worker_process_init`` handler below.
"""

from __future__ import annotations

import logging
from celery import Task, signals
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import DBAPIError

from db import audit
from db.session import make_engine, make_session_factory, transaction
from jobs import leases
from jobs.pipeline import PipelineContext, process_item_run
from jobs.settings import get_settings
from worker.celery_app import PROCESS_ITEM_TASK, app
from worker.model import load_process_model

logger = logging.getLogger(__name__)

_context: PipelineContext | None = None


def build_process_context() -> PipelineContext:
    """Load the model and open the database for this process (once)."""
    global _context
    if _context is None:
        settings = get_settings()
        model = load_process_model(settings.model, settings.data_dir / "model-hashes.json")
        engine = make_engine(settings.resolved_database_url)
        _context = PipelineContext(
            settings=settings,
            session_factory=make_session_factory(engine),
            model=model,
            worker_id=leases.process_identity("worker"),
            interruptions=(SoftTimeLimitExceeded,),
        )
        _record_worker_start(_context)
        logger.info(
            "%s ready: model %s (sha256 %s…), vision=%s",
            _context.worker_id,
            model.info.name,
            model.info.sha256[:12],
            model.info.supports_vision,
        )
    return _context


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
                },
            ),
        )


@signals.worker_process_init.connect
def _load_model_in_child(**_: object) -> None:
    build_process_context()


@signals.worker_ready.connect
def _start_recovery_sweep(**_: object) -> None:
    # In the main process, once the pool is up: re-drive what the broker lost
    # while no worker was running (a Redis restart, a killed worker).
    from worker.sweeper import start_sweeper

    start_sweeper(get_settings())


@app.task(name=PROCESS_ITEM_TASK, bind=True, max_retries=None)
def process_item(self: Task, item_run_id: int) -> str | None:
    """Process one item run; retry later on transient failures."""
    context = build_process_context()
    try:
        outcome = process_item_run(context, item_run_id)
    except DBAPIError as exc:
        # The database is down or restarting: nothing can be recorded, so the
        # message is retried rather than acked into oblivion.
        logger.warning("database error on item run %s: %s; retrying", item_run_id, exc)
        raise self.retry(countdown=_backoff_seconds(self.request.retries), exc=exc) from exc
    if outcome.retry:
        countdown = outcome.retry_after_s or _backoff_seconds(self.request.retries)
        raise self.retry(countdown=countdown)
    return outcome.state.value if outcome.state else None


def _backoff_seconds(retries: int) -> float:
    return float(min(300, 5 * 2**retries))
