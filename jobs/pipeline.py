"""The per-item pipeline: claim → extract → analyse → store.

This is the one function both execution modes call: ``sieve run`` in-process,
and the Celery task in a worker. It holds no Celery code. Every state change
and its audit event commit in one transaction, and every write is guarded by
the item's lease, so a redelivered or duplicated task message can neither
process an item twice nor overwrite another worker's result.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from db import audit
from db.base import utcnow
from db.models import FINAL_ITEM_STATES, Item, ItemRun, ItemState, Result, Run, RunState, Segment
from db.session import transaction
from jobs import analysis as analysis_module
from jobs import leases, task_specs, windowing
from jobs.settings import Settings
from worker import errors, sandbox
from worker.extractors import load_plugins, supported_media_types
from worker.extractors.base import Extraction
from worker.model import ModelInfo

logger = logging.getLogger(__name__)

EMPTY_MEDIA_TYPE = "inode/x-empty"


class PipelineModel(analysis_module.JsonModel, Protocol):
    """The model as the pipeline uses it: analysis plus provenance."""

    info: ModelInfo

    @property
    def sampling(self) -> dict[str, Any]: ...

    @property
    def seed(self) -> int: ...


@dataclass(frozen=True)
class PipelineContext:
    """What processing an item needs, built once per process."""

    settings: Settings
    session_factory: sessionmaker[Session]
    model: PipelineModel
    worker_id: str  # "host:pid", recorded on leases, results and audit events
    # Exceptions that mean "stop now, the stage ran out of time" (Celery's soft
    # time limit); the pipeline records them as a time-limit failure.
    interruptions: tuple[type[BaseException], ...] = ()


@dataclass(frozen=True)
class ItemOutcome:
    """How one attempt at one item ended."""

    item_run_id: int
    state: ItemState | None  # None: nothing was done (already final, or leased elsewhere)
    error_code: str | None = None
    retry: bool = False  # a transient error, or leased elsewhere; try again later
    retry_after_s: float | None = None  # when to try again, if the caller should wait


@dataclass(frozen=True)
class Claim:
    """An item run this process holds the lease on."""

    item_run_id: int
    run_id: int
    job_id: int
    item_id: int
    attempt: int
    sha256: str


@dataclass
class _Timings:
    started: float = field(default_factory=time.perf_counter)
    stages: dict[str, float] = field(default_factory=dict)

    def mark(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.stages[stage] = round(now - since, 4)
        return now


@dataclass(frozen=True)
class LeasedElsewhere:
    """Another live process holds the item's lease for ``expires_in_s`` more seconds."""

    expires_in_s: float


class LeaseLostError(Exception):
    """Another worker took this item over (our lease expired); abandon quietly."""


class StageTimeLimitError(errors.TransientError):
    """The item ran past its time limit."""

    code = "time_limit"


def process_item_run(context: PipelineContext, item_run_id: int) -> ItemOutcome:
    """Process one item of one run, recording the outcome in the database.

    Never raises for a problem with the item itself: that is recorded on the
    item. Database errors propagate (the caller retries later: nothing can be
    recorded without the database).
    """
    claim = _claim(context, item_run_id)
    if claim is None:
        return ItemOutcome(item_run_id, None)
    if isinstance(claim, LeasedElsewhere):
        # Not ours to do now; but if its holder dies without finishing, this
        # message is what brings the item back, so look again when the lease ends.
        return ItemOutcome(item_run_id, None, retry=True, retry_after_s=claim.expires_in_s + 1)
    timings = _Timings()
    try:
        prepared = _extract(context, claim, timings)
        task = _task_for_run(context, claim.run_id)
        started = time.perf_counter()
        result = analysis_module.analyse_document(
            context.model,
            task,
            prepared.document_name,
            prepared.pieces,
            context.settings.model.max_output_tokens,
            heartbeat=lambda: _renew_lease(context, claim),
            max_images_per_call=context.settings.model.max_images_per_call,
        )
        timings.mark("analyse_seconds", started)
        inputs = prepared.inputs | {"pictures_sent": result.images_sent}
        return _store_result(context, claim, task, result, prepared.extractor, timings, inputs)
    except LeaseLostError:
        logger.warning("item run %s: lease lost to another worker; abandoning", item_run_id)
        return ItemOutcome(item_run_id, None)
    except errors.SieveError as exc:
        return _record_failure(context, claim, exc, detail=None)
    except sandbox.SandboxInternalError as exc:
        logger.error("item run %s: extractor failed with an internal error", item_run_id)
        internal = errors.SieveError("internal error in the extractor (see the traceback)")
        return _record_failure(context, claim, internal, detail=str(exc))
    except context.interruptions as exc:  # type: ignore[misc]
        return _record_failure(context, claim, StageTimeLimitError(f"time limit hit: {exc!r}"))
    except Exception as exc:  # a bug in Sieve or a library: keep the traceback
        if _is_database_error(exc):
            raise
        logger.exception("item run %s failed with an internal error", item_run_id)
        internal = errors.SieveError(f"internal error: {type(exc).__name__}: {exc}")
        return _record_failure(context, claim, internal, detail=traceback.format_exc())


def _is_database_error(exc: Exception) -> bool:
    from sqlalchemy.exc import DBAPIError

    return isinstance(exc, DBAPIError)


# --- claim --------------------------------------------------------------------


def _claim(context: PipelineContext, item_run_id: int) -> Claim | LeasedElsewhere | None:
    now = utcnow()
    with transaction(context.session_factory) as session:
        item_run = session.get(ItemRun, item_run_id, with_for_update=True)
        if item_run is None:
            logger.warning("item run %s does not exist; message ignored", item_run_id)
            return None
        if item_run.state in FINAL_ITEM_STATES:
            return None
        taken_over_from = None
        if item_run.state == ItemState.running and item_run.lease_owner != context.worker_id:
            lease_live = item_run.lease_expires_at is not None and item_run.lease_expires_at > now
            if lease_live and not leases.owner_is_dead(item_run.lease_owner):
                logger.info("item run %s is leased by %s", item_run_id, item_run.lease_owner)
                assert item_run.lease_expires_at is not None
                return LeasedElsewhere((item_run.lease_expires_at - now).total_seconds())
            taken_over_from = item_run.lease_owner
            logger.warning(
                "item run %s: taking over from %s (%s)", item_run_id, taken_over_from,
                "lease expired" if not lease_live else "process gone",
            )
        run = session.get(Run, item_run.run_id, with_for_update=True)
        assert run is not None
        if run.state == RunState.cancelled:
            return None
        previous_state = item_run.state
        item_run.state = ItemState.running
        item_run.attempts += 1
        item_run.lease_owner = context.worker_id
        item_run.lease_expires_at = now + dt.timedelta(seconds=context.settings.worker.lease_s)
        item_run.started_at = now
        item_run.error_code = item_run.error_message = item_run.error_detail = None
        item = item_run.item
        drafts = []
        if run.state == RunState.pending:
            run.state = RunState.running
            run.started_at = now
            drafts.append(
                audit.EventDraft("run.started", context.worker_id, run.job_id, run.id)
            )
        drafts.append(
            audit.EventDraft(
                "item.state",
                context.worker_id,
                run.job_id,
                run.id,
                item.id,
                item.sha256,
                {"from": previous_state.value, "to": "running", "attempt": item_run.attempts}
                | ({"taken_over_from": taken_over_from} if taken_over_from else {}),
            )
        )
        audit.append_events(session, drafts)
        return Claim(item_run.id, run.id, run.job_id, item.id, item_run.attempts, item.sha256)


def _renew_lease(context: PipelineContext, claim: Claim) -> None:
    """Extend our lease; raise LeaseLostError if another worker now holds it."""
    expires = utcnow() + dt.timedelta(seconds=context.settings.worker.lease_s)
    with transaction(context.session_factory) as session:
        renewed = session.execute(
            update(ItemRun)
            .where(
                ItemRun.id == claim.item_run_id,
                ItemRun.lease_owner == context.worker_id,
                ItemRun.state == ItemState.running,
            )
            .values(lease_expires_at=expires)
        ).rowcount
    if renewed != 1:
        raise LeaseLostError(claim.item_run_id)


# --- extract ------------------------------------------------------------------


@dataclass(frozen=True)
class _Prepared:
    """What the model will be given for one item, and how that was decided."""

    pieces: list[windowing.LabelledText]
    document_name: str
    extractor: str
    inputs: dict[str, Any]  # stored with the result: what the model could use


_PICTURE_KINDS = frozenset({"image", "frame"})


def _extract(context: PipelineContext, claim: Claim, timings: _Timings) -> _Prepared:
    """The item's labelled text and pictures, extracting (once per item) if not done before."""
    started = time.perf_counter()
    with context.session_factory() as session:
        item = session.get(Item, claim.item_id)
        assert item is not None
        already_extracted = item.extractor is not None
    if not already_extracted:
        extraction = _run_extractor(context.settings, item, lambda: _renew_lease(context, claim))
        _store_extraction(context, claim, extraction)
    timings.mark("extract_seconds", started)
    with context.session_factory() as session:
        item = session.get(Item, claim.item_id)
        assert item is not None
        segments = sorted(
            session.scalars(select(Segment).where(Segment.item_id == item.id)).all(),
            key=_source_order,
        )
        can_see = context.model.image_tokens > 0
        pictures = [s for s in segments if _is_picture(s)]
        pieces = [
            windowing.LabelledText(s.label, s.text, _picture_path(context, s) if can_see else None)
            for s in segments
            if s.text.strip() or (can_see and _is_picture(s))
        ]
        if not pieces:
            raise _nothing_to_analyse(segments, pictures, context.model.info.name)
        inputs: dict[str, Any] = {
            "modalities": ["text", "image"] if can_see and pictures else ["text"],
            "pictures_available": len(pictures),
        }
        if pictures and not can_see:
            inputs["note"] = (
                f"analysed from extracted text alone (OCR, transcripts): the model cannot see, "
                f"so {len(pictures)} picture(s) were not shown to it"
            )
        return _Prepared(pieces, Path(item.path).name, item.extractor or "unknown", inputs)


def _source_order(segment: Segment) -> tuple[float, str, int]:
    """Time order for media (frames and speech interleaved), page order otherwise."""
    start = segment.start_seconds if segment.start_seconds is not None else -1.0
    return (start, segment.kind, segment.index)


def _is_picture(segment: Segment) -> bool:
    return segment.artifact_path is not None and (
        segment.kind in _PICTURE_KINDS or segment.needs_ocr
    )


def _picture_path(context: PipelineContext, segment: Segment) -> str | None:
    if not _is_picture(segment):
        return None
    assert segment.artifact_path is not None
    return str(context.settings.artifacts_dir / segment.artifact_path)


def _nothing_to_analyse(
    segments: list[Segment], pictures: list[Segment], model_name: str
) -> errors.SieveError:
    """The error for an item with nothing the model can use, naming what is missing."""
    if pictures:
        shown = ", ".join(s.label for s in pictures[:5]) + (" …" if len(pictures) > 5 else "")
        return errors.ModelCapabilityError(
            f"needs vision: {len(pictures)} picture(s) ({shown}) hold no text that OCR "
            f"could read, and the loaded model {model_name} cannot see images "
            "(configure a multimodal projector: SIEVE_MODEL__MMPROJ_PATH)"
        )
    if any(s.kind == "audio_chunk" for s in segments):
        return errors.NothingToAnalyseError("no speech was recognised in the audio")
    return errors.NothingToAnalyseError("the file holds no text the model can read")


def _run_extractor(settings: Settings, item: Item, heartbeat: Callable[[], None]) -> Extraction:
    if item.size_bytes == 0 or item.media_type == EMPTY_MEDIA_TYPE:
        raise errors.EmptyFileError("the file is empty (0 bytes)")
    if item.size_bytes > settings.limits.max_file_bytes:
        raise errors.LimitExceededError(
            f"the file is {item.size_bytes} bytes; the limit is {settings.limits.max_file_bytes}"
        )
    source = settings.objects_dir / item.stored_path
    if not source.is_file():
        raise errors.SourceMissingError(f"stored original {source} is missing")
    load_plugins(settings.extractor_plugins)
    if item.media_type not in supported_media_types():
        raise errors.UnsupportedTypeError(f"no extractor reads files of type {item.media_type}")
    return sandbox.extract_isolated(
        item.media_type,
        source,
        settings.artifacts_dir / item.sha256,
        settings.limits,
        settings.media,
        heartbeat=heartbeat,
        plugins=settings.extractor_plugins,
    )


def _store_extraction(context: PipelineContext, claim: Claim, extraction: Extraction) -> None:
    with transaction(context.session_factory) as session:
        item = session.get(Item, claim.item_id, with_for_update=True)
        assert item is not None
        if item.extractor is not None:
            return  # another worker stored the same extraction first
        item.extractor = extraction.extractor
        item.page_count = extraction.metadata.get("page_count")
        item.doc_metadata = extraction.metadata
        item.identifiers = extraction.identifiers or None
        session.add_all(
            Segment(
                item_id=item.id,
                kind=segment.kind.value,
                index=segment.index,
                label=segment.label,
                text=segment.text,
                artifact_path=(
                    f"{item.sha256}/{segment.artifact_path}" if segment.artifact_path else None
                ),
                start_seconds=segment.start_seconds,
                end_seconds=segment.end_seconds,
                needs_ocr=segment.needs_ocr,
                attributes=segment.attributes,
            )
            for segment in extraction.segments
        )
        audit.append_event(
            session,
            audit.EventDraft(
                "item.extracted",
                context.worker_id,
                claim.job_id,
                claim.run_id,
                item.id,
                item.sha256,
                {
                    "extractor": extraction.extractor,
                    "segments": len(extraction.segments),
                    "needs_ocr": sum(1 for s in extraction.segments if s.needs_ocr),
                },
            ),
        )


# --- analyse ------------------------------------------------------------------


def _task_for_run(context: PipelineContext, run_id: int) -> task_specs.TaskSpec:
    with context.session_factory() as session:
        run = session.get(Run, run_id)
        assert run is not None
        task = task_specs.task_for_run(run.task_name, run.task_options)
        if task.prompt_hash != run.prompt_hash:
            raise errors.ConfigurationError(
                f"this worker's {run.task_name} task (prompt hash {task.prompt_hash[:12]}) "
                f"differs from the run's ({run.prompt_hash[:12]}); upgrade the worker"
            )
        return task


# --- store --------------------------------------------------------------------


def _lock_leased_item_run(session: Session, context: PipelineContext, claim: Claim) -> ItemRun:
    # Lock the run first, then the item run: every finishing transaction takes
    # the same locks in the same order, and the run lock serialises the
    # "was this the last item?" check.
    session.get(Run, claim.run_id, with_for_update=True)
    item_run = session.get(ItemRun, claim.item_run_id, with_for_update=True)
    assert item_run is not None
    if item_run.state != ItemState.running or item_run.lease_owner != context.worker_id:
        raise LeaseLostError(claim.item_run_id)
    return item_run


def _store_result(
    context: PipelineContext,
    claim: Claim,
    task: task_specs.TaskSpec,
    analysed: analysis_module.Analysis,
    extractor_name: str,
    timings: _Timings,
    inputs: dict[str, Any],
) -> ItemOutcome:
    timings.stages["total_seconds"] = round(time.perf_counter() - timings.started, 4)
    model = context.model
    with transaction(context.session_factory) as session:
        item_run = _lock_leased_item_run(session, context, claim)
        result = Result(
            run_id=claim.run_id,
            item_id=claim.item_id,
            output=analysed.output,
            citations=analysed.citations,
            partials=analysed.partials,
            input_sha256=claim.sha256,
            model_name=model.info.name,
            model_sha256=model.info.sha256,
            task_name=task.name,
            task_version=task.version,
            prompt_hash=task.prompt_hash,
            sampling=model.sampling,
            seed=model.seed,
            prompt_tokens=analysed.prompt_tokens,
            completion_tokens=analysed.completion_tokens,
            model_calls=analysed.model_calls,
            timings=timings.stages,
            extractor=extractor_name,
            inputs=inputs,
            produced_by=context.worker_id,
        )
        session.add(result)
        _finish(item_run, ItemState.done)
        session.flush()
        audit.append_events(
            session,
            [
                audit.EventDraft(
                    "result.stored",
                    context.worker_id,
                    claim.job_id,
                    claim.run_id,
                    claim.item_id,
                    claim.sha256,
                    {
                        "result_id": result.id,
                        "model_sha256": model.info.sha256,
                        "prompt_hash": task.prompt_hash,
                        "citations": len(analysed.citations),
                    },
                ),
                _state_event(context, claim, ItemState.running, ItemState.done),
            ],
        )
        _complete_run_if_finished(session, context, claim)
    return ItemOutcome(claim.item_run_id, ItemState.done)


def _record_failure(
    context: PipelineContext, claim: Claim, exc: errors.SieveError, detail: str | None = None
) -> ItemOutcome:
    retry = exc.retryable and claim.attempt < context.settings.worker.max_attempts
    new_state = ItemState.queued if retry else ItemState(exc.item_state)
    try:
        with transaction(context.session_factory) as session:
            item_run = _lock_leased_item_run(session, context, claim)
            item_run.error_code = exc.code
            item_run.error_message = exc.message
            item_run.error_detail = detail
            if retry:
                item_run.state = ItemState.queued
                item_run.lease_owner = None
                item_run.lease_expires_at = None
            else:
                _finish(item_run, new_state)
            event = _state_event(context, claim, ItemState.running, new_state)
            event.details.update({"error_code": exc.code, "error_message": exc.message})
            audit.append_event(session, event)
            if not retry:
                _complete_run_if_finished(session, context, claim)
    except LeaseLostError:
        return ItemOutcome(claim.item_run_id, None)
    return ItemOutcome(claim.item_run_id, new_state, exc.code, retry)


def _finish(item_run: ItemRun, state: ItemState) -> None:
    item_run.state = state
    item_run.finished_at = utcnow()
    item_run.lease_owner = None
    item_run.lease_expires_at = None


def _state_event(
    context: PipelineContext, claim: Claim, old: ItemState, new: ItemState
) -> audit.EventDraft:
    return audit.EventDraft(
        "item.state",
        context.worker_id,
        claim.job_id,
        claim.run_id,
        claim.item_id,
        claim.sha256,
        {"from": old.value, "to": new.value, "attempt": claim.attempt},
    )


def _complete_run_if_finished(session: Session, context: PipelineContext, claim: Claim) -> None:
    complete_run_if_finished(session, claim.run_id, context.worker_id)


def complete_run_if_finished(session: Session, run_id: int, actor: str) -> bool:
    """Mark the run completed when no item is left to finish; True if it was.

    The caller must hold the run's row lock (see _lock_leased_item_run) so that
    two workers finishing the last two items cannot both miss the moment.
    """
    session.flush()
    unfinished = session.scalar(
        select(func.count())
        .select_from(ItemRun)
        .where(ItemRun.run_id == run_id, ItemRun.state.not_in(FINAL_ITEM_STATES))
    )
    if unfinished:
        return False
    run = session.get(Run, run_id)
    assert run is not None
    if run.state not in (RunState.pending, RunState.running):
        return False
    run.state = RunState.completed
    run.finished_at = utcnow()
    counts = dict(
        session.execute(
            select(ItemRun.state, func.count()).where(ItemRun.run_id == run_id).group_by(ItemRun.state)
        ).all()
    )
    audit.append_event(
        session,
        audit.EventDraft(
            "run.completed",
            actor,
            run.job_id,
            run.id,
            details={"items_by_state": {state.value: count for state, count in counts.items()}},
        ),
    )
    return True
