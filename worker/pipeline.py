"""The per-item pipeline: claim → extract → analyse → store.

This is the one function both execution modes call: ``sieve run`` in-process,
and the Celery task in a worker. It holds no Celery code. Every state change
and its audit event commit in one transaction, and every write is guarded by
the item's lease, so a redelivered or duplicated task message can neither
process an item twice nor overwrite another worker's result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db import audit, storable
from db.base import utcnow
from db.models import (
    FINAL_ITEM_STATES,
    Item,
    ItemRun,
    ItemState,
    Result,
    Run,
    RunState,
    StoredSegment,
)
from db.session import NO_KEY_UPDATE, transaction
from worker import analysis as analysis_module
from worker import (
    email_threads,
    errors,
    families,
    grounding,
    item_states,
    leases,
    media_types,
    sandbox,
    task_specs,
    windowing,
)
from worker.config import WorkerConfig
from worker.extractors import load_plugins, supported_media_types
from worker.extractors.base import Extraction
from worker.heartbeat import LeaseHeartbeat
from worker.model import ModelInfo

logger = logging.getLogger(__name__)


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

    config: WorkerConfig
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
    # Item runs made for files found inside this item (attachments, messages):
    # pending, for the caller to publish (the recovery sweep does if it cannot).
    new_item_run_ids: tuple[int, ...] = ()


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


def process_item_run(context: PipelineContext, item_run_id: int) -> ItemOutcome:
    """Process one item of one run, recording the outcome in the database.

    Never raises for a problem with the item itself: that is recorded on the
    item, and a permanent refusal by the database (its data) is one of those.
    Raises :class:`~worker.errors.DatabaseUnavailableError` when the database
    is away: nothing can be recorded, so the caller retries later.
    """
    with errors.database_errors_mapped():
        claim = _claim(context, item_run_id)
    if claim is None:
        return ItemOutcome(item_run_id, None)
    if isinstance(claim, LeasedElsewhere):
        # Not ours to do now; but if its holder dies without finishing, this
        # message is what brings the item back, so look again when the lease ends.
        return ItemOutcome(item_run_id, None, retry=True, retry_after_s=claim.expires_in_s + 1)
    if isinstance(claim, ItemOutcome):
        return claim  # its retry budget was already spent
    heartbeat = LeaseHeartbeat(
        context.session_factory, claim.item_run_id, context.worker_id, context.config.worker.lease_s
    )
    with heartbeat:
        return _attempt(context, claim, heartbeat)


def _attempt(context: PipelineContext, claim: Claim, heartbeat: LeaseHeartbeat) -> ItemOutcome:
    """Extract, analyse and store under a live lease; turn every failure into an outcome."""
    timings = _Timings()
    found: list[int] = []  # item runs of children, recorded by the extraction
    outcome = _attempt_outcome(context, claim, heartbeat, timings, found)
    return dataclasses.replace(outcome, new_item_run_ids=tuple(found)) if found else outcome


def _attempt_outcome(
    context: PipelineContext,
    claim: Claim,
    heartbeat: LeaseHeartbeat,
    timings: _Timings,
    found: list[int],
) -> ItemOutcome:
    try:
        with errors.database_errors_mapped():
            prepared = _extract(context, claim, timings, heartbeat, found)
            if prepared.container:
                return _finish_container(context, claim, prepared)
            task, deterministic = _task_for_run(context, claim.run_id)
            started = time.perf_counter()
            result = analysis_module.analyse_document(
                context.model,
                task,
                prepared.document_name,
                prepared.pieces,
                context.config.model.max_output_tokens,
                heartbeat=heartbeat.check,
                max_images_per_call=context.config.model.max_images_per_call,
                deterministic=deterministic,
            )
            timings.mark("analyse_seconds", started)
            inputs = prepared.inputs | {"pictures_sent": result.images_sent}
            return _store_result(context, claim, task, result, prepared.extractor, timings, inputs)
    except errors.LeaseLostError as exc:
        logger.warning("item run %s: %s; abandoning", claim.item_run_id, exc.message)
        return ItemOutcome(claim.item_run_id, None)
    except errors.DatabaseUnavailableError:
        raise  # nothing can be recorded now: the caller retries the attempt
    except errors.SieveError as exc:
        return _record_failure(context, claim, exc)
    except context.interruptions as exc:  # type: ignore[misc]
        return _record_failure(context, claim, errors.TimeLimitError(f"time limit hit: {exc!r}"))
    except Exception as exc:
        # A bug in Sieve or a library: keep the traceback.
        logger.exception("item run %s failed with an internal error", claim.item_run_id)
        internal = errors.InternalError(
            f"internal error: {type(exc).__name__}: {exc}", detail=traceback.format_exc()
        )
        return _record_failure(context, claim, internal)


# --- claim --------------------------------------------------------------------


def _claim(
    context: PipelineContext, item_run_id: int
) -> Claim | LeasedElsewhere | ItemOutcome | None:
    """Take the item's lease (one more attempt), or say why not.

    None: nothing to do (final, cancelled, unknown). :class:`LeasedElsewhere`:
    a live worker holds it. An :class:`ItemOutcome`: the retry budget was spent
    by earlier attempts (transient errors, or workers that died holding it), so
    the item ends ``retries_exhausted`` here instead of being tried forever.
    """
    now = utcnow()
    with transaction(context.session_factory) as session:
        item_run = session.get(ItemRun, item_run_id, with_for_update=True)
        if item_run is None:
            logger.warning("item run %s does not exist; message ignored", item_run_id)
            return None
        if item_run.state in FINAL_ITEM_STATES:
            return None
        taken_over_from: dict[str, str] = {}
        if item_run.state == ItemState.running and item_run.lease_owner != context.worker_id:
            lease_live = item_run.lease_expires_at is not None and item_run.lease_expires_at > now
            if lease_live and not leases.owner_is_dead(item_run.lease_owner):
                logger.info("item run %s is leased by %s", item_run_id, item_run.lease_owner)
                assert item_run.lease_expires_at is not None
                return LeasedElsewhere((item_run.lease_expires_at - now).total_seconds())
            taken_over_from = {"taken_over_from": item_run.lease_owner or "unknown"}
            logger.warning(
                "item run %s: taking over from %s (%s)",
                item_run_id,
                item_run.lease_owner,
                "lease expired" if not lease_live else "process gone",
            )
        run = session.get(Run, item_run.run_id, with_for_update=NO_KEY_UPDATE)
        assert run is not None
        if run.state == RunState.cancelled:
            return None
        # Our own live lease: this process's attempt was cut short by the
        # database going away (nothing else leaves one behind), so it goes on.
        resuming = (
            item_run.state == ItemState.running
            and item_run.lease_owner == context.worker_id
            and item_run.lease_expires_at is not None
            and item_run.lease_expires_at > now
        )
        held = None if resuming else _reason_to_hold(context, run)
        if held is not None:
            # Not this worker's to do now: back to pending, with the reason in
            # the trail; ``sieve unpause`` (or the sweep, for another model's
            # worker) publishes it again. The message is acknowledged.
            if item_run.state != ItemState.pending:
                item_states.transition(
                    session, item_run, ItemState.pending, context.worker_id, held
                )
            logger.info("item run %s held: %s", item_run_id, held)
            return None
        if not resuming and item_run.attempts >= context.config.worker.max_attempts:
            exhausted = _retries_exhausted(item_run)
            item_states.transition(
                session,
                item_run,
                ItemState.failed,
                context.worker_id,
                error=exhausted,
                **taken_over_from,
            )
            complete_run_if_finished(session, run.id, context.worker_id)
            return ItemOutcome(item_run.id, ItemState.failed, exhausted.code)
        if run.state == RunState.pending:
            run.state = RunState.running
            run.started_at = now
            audit.append_event(
                session, audit.EventDraft("run.started", context.worker_id, run.job_id, run.id)
            )
        item_states.transition(
            session,
            item_run,
            ItemState.running,
            context.worker_id,
            lease_s=context.config.worker.lease_s,
            new_attempt=not resuming,
            **({"resumed": "after a database error"} if resuming else taken_over_from),
        )
        item = item_run.item
        return Claim(item_run.id, run.id, run.job_id, item.id, item_run.attempts, item.sha256)


def _reason_to_hold(context: PipelineContext, run: Run) -> str | None:
    """Why this worker must not start an item of ``run`` now; None when it may."""
    if run.job.paused_at is not None:
        return "job paused"
    # Only a re-run made with --model names its model on purpose; any other run
    # is served by whatever model the workers load, as it always was (the
    # submitting machine need not know it).
    requested = (run.selection or {}).get("model")
    loaded = Path(context.model.info.path).name
    if requested and Path(requested).name != loaded:
        return f"the run asks for model {Path(requested).name}; this worker serves {loaded}"
    return None


def end_attempt_after_database_errors(
    context: PipelineContext, item_run_id: int, error: errors.SieveError
) -> ItemOutcome:
    """End this worker's attempt at an item whose writes the database kept refusing transiently.

    Called once the database retries of one attempt are spent (a serialization
    failure that keeps recurring, say): the attempt then counts like any
    transient failure, queued again within the retry budget and
    ``retries_exhausted`` past it. Does nothing if this worker no longer holds
    the item. Raises the database's error if it still cannot be written.
    """
    with transaction(context.session_factory) as session:
        item_run = session.get(ItemRun, item_run_id)
        if item_run is None or item_run.lease_owner != context.worker_id:
            return ItemOutcome(item_run_id, None)
        claim = Claim(
            item_run.id,
            item_run.run_id,
            item_run.run.job_id,
            item_run.item_id,
            item_run.attempts,
            item_run.item.sha256,
        )
    return _record_failure(context, claim, error)


def _retries_exhausted(
    item_run: ItemRun, last_error: errors.SieveError | None = None
) -> errors.SieveError:
    """The error that ends an item whose attempts are used up, naming the last failure."""
    if last_error is not None:
        last = f"{last_error.code}: {last_error.message}"
    elif item_run.error_code:
        last = f"{item_run.error_code}: {item_run.error_message}"
    else:
        last = "the previous attempt never finished (its worker stopped or lost the database)"
    return errors.RetriesExhaustedError(
        f"gave up after {item_run.attempts} attempt(s); last error: {last}"
    )


# --- extract ------------------------------------------------------------------


@dataclass(frozen=True)
class _Prepared:
    """What the model will be given for one item, and how that was decided."""

    pieces: list[windowing.LabelledText]
    document_name: str
    extractor: str
    inputs: dict[str, Any]  # stored with the result: what the model could use
    container: bool = False  # a mailbox or mail store folder: its children are the documents


_PICTURE_KINDS = frozenset({"image", "frame"})


def _extract(
    context: PipelineContext,
    claim: Claim,
    timings: _Timings,
    heartbeat: LeaseHeartbeat,
    found: list[int],
) -> _Prepared:
    """The item's labelled text and pictures, extracting (once per item) if not done before.

    Files found inside the item are recorded as items of its family with the
    extraction; their new item runs are added to ``found``.
    """
    started = time.perf_counter()
    with context.session_factory() as session:
        item = session.get(Item, claim.item_id)
        assert item is not None
        already_extracted = item.extractor is not None
    if not already_extracted:
        extraction = _run_extractor(context.config, item, heartbeat.check)
        found.extend(_store_extraction(context, claim, extraction))
    timings.mark("extract_seconds", started)
    with context.session_factory() as session:
        item = session.get(Item, claim.item_id)
        assert item is not None
        if (item.doc_metadata or {}).get("container"):
            return _Prepared([], Path(item.path).name, item.extractor or "unknown", {}, True)
        segments = sorted(
            session.scalars(select(StoredSegment).where(StoredSegment.item_id == item.id)).all(),
            key=_source_order,
        )
        can_see = context.model.image_tokens > 0
        pictures = [s for s in segments if _is_picture(s)]
        shown, repeats = _segments_worth_sending(segments, can_see)
        pieces = [
            windowing.LabelledText(s.label, s.text, _picture_path(context, s) if can_see else None)
            for s in shown
        ]
        if not pieces:
            raise _nothing_to_analyse(segments, pictures, context.model.info.name)
        inputs: dict[str, Any] = {
            "modalities": ["text", "image"] if can_see and pictures else ["text"],
            "pictures_available": len(pictures),
        }
        if repeats:
            inputs["duplicate_segments_skipped"] = repeats
        if shown_images := _dicom_images_shown(shown, can_see):
            inputs["dicom_images_shown"] = shown_images
        if pictures and not can_see:
            inputs["note"] = (
                f"analysed from extracted text alone (OCR, transcripts): the model cannot see, "
                f"so {len(pictures)} picture(s) were not shown to it"
            )
        return _Prepared(pieces, Path(item.path).name, item.extractor or "unknown", inputs)


def _dicom_images_shown(shown: list[StoredSegment], can_see: bool) -> list[dict[str, Any]]:
    """Provenance: exactly which SOP instances and frames the model was shown (or read of).

    A projection (MIP) stands for every instance it was made from.
    """
    entries: list[dict[str, Any]] = []
    for segment in shown:
        attributes = segment.attributes or {}
        if "sop_instance_uid" in attributes:
            uids = [(attributes["sop_instance_uid"], attributes.get("frame", 1))]
        else:
            uids = [(uid, None) for uid in attributes.get("sop_instance_uids", [])]
        entries.extend(
            {"label": segment.label, "sop_instance_uid": uid, "frame": frame, "picture": can_see}
            for uid, frame in uids
        )
    return entries


def _source_order(segment: StoredSegment) -> tuple[float, str, int]:
    """Time order for media (frames and speech interleaved), page order otherwise."""
    start = segment.start_seconds if segment.start_seconds is not None else -1.0
    return (start, segment.kind, segment.index)


def _is_picture(segment: StoredSegment) -> bool:
    return segment.artifact_path is not None and (
        segment.kind in _PICTURE_KINDS or segment.needs_ocr
    )


def _picture_path(context: PipelineContext, segment: StoredSegment) -> str | None:
    if not _is_picture(segment):
        return None
    assert segment.artifact_path is not None
    return str(context.config.artifacts_dir / segment.artifact_path)


def _segments_worth_sending(
    segments: list[StoredSegment], can_see: bool
) -> tuple[list[StoredSegment], list[str]]:
    """The segments the model is given, and the labels of exact repeats left out.

    Blank segments (no text, no picture the model can see) are never sent.
    A text-only segment whose text repeats an earlier one word for word (a fax
    cover sheet on every page, a disclaimer page) costs tokens and tells the
    model nothing new; it is left out and named, so the result says so.
    """
    shown: list[StoredSegment] = []
    repeats: list[str] = []
    seen_texts: set[str] = set()
    for segment in segments:
        sees_picture = can_see and _is_picture(segment)
        text = " ".join(segment.text.split())
        if not text and not sees_picture:
            continue
        if text and not sees_picture and text in seen_texts:
            repeats.append(segment.label)
            continue
        seen_texts.add(text)
        shown.append(segment)
    return shown, repeats


def _nothing_to_analyse(
    segments: list[StoredSegment], pictures: list[StoredSegment], model_name: str
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


def _run_extractor(config: WorkerConfig, item: Item, heartbeat: Callable[[], None]) -> Extraction:
    if item.size_bytes == 0 or item.media_type == media_types.EMPTY:
        raise errors.EmptyFileError("the file is empty (0 bytes)")
    if item.size_bytes > config.limits.max_file_bytes:
        raise errors.LimitExceededError(
            f"the file is {item.size_bytes} bytes; the limit is {config.limits.max_file_bytes}"
        )
    source = config.objects_dir / item.stored_path
    if not source.is_file():
        raise errors.SourceMissingError(f"stored original {source} is missing")
    load_plugins(config.extractor_plugins)
    if item.media_type not in supported_media_types():
        raise errors.UnsupportedTypeError(f"no extractor reads files of type {item.media_type}")
    return sandbox.extract_isolated(
        item.media_type,
        source,
        config.artifacts_dir / item.sha256,
        config.limits,
        config.media,
        heartbeat=heartbeat,
        plugins=config.extractor_plugins,
    )


def _store_extraction(context: PipelineContext, claim: Claim, extraction: Extraction) -> list[int]:
    """Store the segments, metadata and children once per item, with text the database accepts.

    Returns the item runs made for the children (none if another worker
    stored this extraction first).
    """
    segments, replaced = _storable_segments(extraction)
    metadata, metadata_replaced = storable.clean(extraction.metadata)
    identifiers, identifiers_replaced = storable.clean(extraction.identifiers or None)
    email, email_replaced = storable.clean(extraction.email)
    replaced += metadata_replaced + identifiers_replaced + email_replaced
    if replaced:
        # Say so on the item: the stored text differs from the file's by these characters.
        metadata = metadata | {"unstorable_characters_replaced": replaced}
    if extraction.container:
        metadata = metadata | {"container": True}
    with transaction(context.session_factory) as session:
        item = session.get(Item, claim.item_id, with_for_update=NO_KEY_UPDATE)
        assert item is not None
        if item.extractor is not None:
            return []  # another worker stored the same extraction first
        item.extractor = extraction.extractor
        item.page_count = metadata.get("page_count")
        item.doc_metadata = metadata
        item.identifiers = identifiers
        session.add_all(
            StoredSegment(
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
            for segment in segments
        )
        details: dict[str, Any] = {
            "extractor": extraction.extractor,
            "segments": len(segments),
            "needs_ocr": sum(1 for segment in segments if segment.needs_ocr),
        }
        if replaced:
            details["unstorable_characters_replaced"] = replaced
        if extraction.children:
            details["children"] = len(extraction.children)
        audit.append_event(
            session,
            audit.EventDraft(
                "item.extracted",
                context.worker_id,
                claim.job_id,
                claim.run_id,
                item.id,
                item.sha256,
                details,
            ),
        )
        if email is not None:
            email_threads.record_message(session, item, email)
        if not extraction.children:
            return []
        update = families.record_children(
            session,
            item,
            extraction.children,
            artifacts_dir=context.config.artifacts_dir / item.sha256,
            objects_dir=context.config.objects_dir,
            run_id=claim.run_id,
            actor=context.worker_id,
        )
        return update.item_run_ids


def _storable_segments(extraction: Extraction) -> tuple[list[Any], int]:
    """The extraction's segments with NULs and lone surrogates replaced, and how many were."""
    segments: list[Any] = []
    replaced = 0
    for segment in extraction.segments:
        text, text_count = storable.clean_text(segment.text)
        label, label_count = storable.clean_text(segment.label)
        attributes, attributes_count = storable.clean(segment.attributes)
        count = text_count + label_count + attributes_count
        if count:
            segment = dataclasses.replace(segment, text=text, label=label, attributes=attributes)
        segments.append(segment)
        replaced += count
    return segments, replaced


# --- analyse ------------------------------------------------------------------


def _finish_container(context: PipelineContext, claim: Claim, prepared: _Prepared) -> ItemOutcome:
    """A container is done once its children are recorded: the model reads them, not it."""
    with transaction(context.session_factory) as session:
        item_run = _lock_leased_item_run(session, context, claim)
        item_states.transition(
            session,
            item_run,
            ItemState.done,
            context.worker_id,
            "container: its children are reviewed",
        )
        complete_run_if_finished(session, claim.run_id, context.worker_id)
    return ItemOutcome(claim.item_run_id, ItemState.done)


def _task_for_run(context: PipelineContext, run_id: int) -> tuple[task_specs.TaskSpec, bool]:
    """The run's task, checked against this worker's, and whether the run is deterministic."""
    with context.session_factory() as session:
        run = session.get(Run, run_id)
        assert run is not None
        task = task_specs.task_for_run(run.task_name, run.task_options)
        if task.prompt_hash != run.prompt_hash:
            raise errors.ConfigurationError(
                f"this worker's {run.task_name} task (prompt hash {task.prompt_hash[:12]}) "
                f"differs from the run's ({run.prompt_hash[:12]}); upgrade the worker"
            )
        return task, run.deterministic


# --- store --------------------------------------------------------------------


def _lock_leased_item_run(session: Session, context: PipelineContext, claim: Claim) -> ItemRun:
    # Lock the run first, then the item run: every finishing transaction takes
    # the same locks in the same order, and the run lock serialises the
    # "was this the last item?" check.
    session.get(Run, claim.run_id, with_for_update=NO_KEY_UPDATE)
    item_run = session.get(ItemRun, claim.item_run_id, with_for_update=True)
    assert item_run is not None
    if item_run.state != ItemState.running or item_run.lease_owner != context.worker_id:
        raise errors.LeaseLostError(
            f"item run {claim.item_run_id} is {item_run.state.value}, "
            f"held by {item_run.lease_owner or 'nobody'}"
        )
    return item_run


def output_sha256(output: dict[str, Any]) -> str:
    """SHA-256 of an answer's canonical JSON (sorted keys, no spaces): equal answers, equal hash."""
    canonical = json.dumps(output, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


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
            output_sha256=output_sha256(analysed.output),
            citations=analysed.citations,
            partials=analysed.partials,
            input_sha256=claim.sha256,
            model_name=model.info.name,
            model_sha256=model.info.sha256,
            task_name=task.name,
            task_version=task.version,
            prompt_hash=task.prompt_hash,
            sampling=model.sampling,
            runtime=model.info.runtime,
            seed=model.seed,
            prompt_tokens=analysed.prompt_tokens,
            completion_tokens=analysed.completion_tokens,
            model_calls=analysed.model_calls,
            timings=timings.stages,
            extractor=extractor_name,
            inputs=inputs,
            grounding=analysed.grounding,
            produced_by=context.worker_id,
        )
        session.add(result)
        session.flush()
        audit.append_event(
            session,
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
                    **grounding.quote_counts(analysed.grounding),
                },
            ),
        )
        item_states.transition(session, item_run, ItemState.done, context.worker_id)
        complete_run_if_finished(session, claim.run_id, context.worker_id)
    return ItemOutcome(claim.item_run_id, ItemState.done)


def _record_failure(context: PipelineContext, claim: Claim, exc: errors.SieveError) -> ItemOutcome:
    """Record how this attempt failed: queued again within the retry budget, else final."""
    detail = exc.detail if isinstance(exc, errors.InternalError) else None
    try:
        with transaction(context.session_factory) as session:
            item_run = _lock_leased_item_run(session, context, claim)
            if exc.retryable and claim.attempt < context.config.worker.max_attempts:
                item_states.transition(
                    session, item_run, ItemState.queued, context.worker_id, error=exc
                )
                return ItemOutcome(claim.item_run_id, ItemState.queued, exc.code, retry=True)
            final_error = _retries_exhausted(item_run, exc) if exc.retryable else exc
            final_state = ItemState(final_error.item_state)
            item_states.transition(
                session,
                item_run,
                final_state,
                context.worker_id,
                error=final_error,
                error_detail=detail,
            )
            complete_run_if_finished(session, claim.run_id, context.worker_id)
            return ItemOutcome(claim.item_run_id, final_state, final_error.code)
    except errors.LeaseLostError:
        return ItemOutcome(claim.item_run_id, None)


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
    # Every message of the job is extracted now: place each in its thread.
    threads = email_threads.rethread_job(session, run.job_id)
    counts = dict(
        session.execute(
            select(ItemRun.state, func.count())
            .where(ItemRun.run_id == run_id)
            .group_by(ItemRun.state)
        ).all()
    )
    audit.append_event(
        session,
        audit.EventDraft(
            "run.completed",
            actor,
            run.job_id,
            run.id,
            details={
                "items_by_state": {state.value: count for state, count in counts.items()},
                **({"email_threads": threads} if threads else {}),
            },
        ),
    )
    return True
