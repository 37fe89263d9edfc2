"""Submitting files: walk, hash into the content store, record job, run and items.

Everything a later step needs is in the database when this returns: the broker
only ever carries item-run ids, so a lost message can be re-driven from here.
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from db import audit
from db.models import Item, ItemRun, ItemSource, ItemState, Job, Run, RunState
from db.session import transaction
from jobs import estimates, imaging_units
from jobs.settings import Settings
from worker import content_store, errors, families, hashing, media_types
from worker.extractors import email as email_extractor
from worker.extractors import msg as msg_extractor
from worker.model import configured_model
from worker.task_specs import TaskSpec

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[Path], None]


@dataclass(frozen=True)
class IngestedFile:
    """One submitted path and the stored object it points at."""

    path: Path
    stored: content_store.StoredObject
    media_type: str
    # A DICOM series or study item: ``stored`` is its manifest, these its instance files.
    members: tuple[IngestedFile, ...] = ()

    def source_files(self) -> tuple[IngestedFile, ...]:
        """The paths the user submitted that this stands for: itself, or its members."""
        return self.members or (self,)


@dataclass(frozen=True)
class RunOptions:
    """How the first run of a submission is to be run."""

    priority: str = "normal"  # high, normal or low: which items workers take first
    deterministic: bool = False  # greedy, fixed seed, one sequence, no reused state
    custodian: str | None = None  # whose files these are, recorded on every item
    # Or: each folder directly under a submitted folder is a custodian's collection.
    custodian_folders: bool = False
    dedup: str = "global"  # global, custodian or none: see worker.families.dedup_key
    unit: str = "series"  # DICOM: one item per series, per study, or per instance file


DEFAULT_RUN_OPTIONS = RunOptions()


@dataclass
class Submission:
    """What a submission recorded."""

    job_id: int
    run_id: int
    item_run_ids: list[int]
    file_count: int
    item_count: int
    duplicate_paths: list[str] = field(default_factory=list)
    dicom_units: int = 0  # series or study items made of several files
    dicom_instances: int = 0  # instances indexed
    filesets: list[imaging_units.FileSetRead] = field(default_factory=list)  # DICOMDIRs read


def submitter_identity() -> str:
    """Who is submitting: the OS user (an API user, later)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return f"uid:{os.getuid()}"


def recorded_path(path: Path) -> str:
    """``path`` as text the database can hold, whatever bytes the file system gave.

    A name that is not valid UTF-8 (old Windows tools, Latin-1 archives) decodes
    with surrogate escapes, which no database will store; its undecodable bytes
    are recorded as ``\\xNN`` instead, so the row still names the file exactly.
    """
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def walk_inputs(paths: Sequence[Path]) -> Iterator[Path]:
    """Every regular file under ``paths``, in a stable order.

    Directories are walked recursively without following directory symlinks
    (a link loop must not hang a submission); file symlinks are followed.
    """
    for root in paths:
        if root.is_file():
            yield root.resolve()
        elif root.is_dir():
            for directory, subdirs, files in os.walk(root, followlinks=False):
                subdirs.sort()
                for name in sorted(files):
                    candidate = Path(directory) / name
                    if candidate.is_file():
                        yield candidate.resolve()
        else:
            raise errors.ConfigurationError(f"no such file or directory: {root}")


def ingest_files(
    paths: Sequence[Path], settings: Settings, progress: ProgressCallback | None = None
) -> list[IngestedFile]:
    """Copy every input into the content store, hashing as it goes."""
    ingested: list[IngestedFile] = []
    seen: set[Path] = set()
    for path in walk_inputs(paths):
        if path in seen:
            continue
        seen.add(path)
        stored = content_store.store_file(path, settings.objects_dir)
        ingested.append(_ingested(path, stored, settings))
        if progress is not None:
            progress(path)
    return ingested


def ingest_stream(
    path: Path, stream: hashing.Readable, settings: Settings, *, max_bytes: int | None = None
) -> IngestedFile:
    """Copy bytes that arrive (an upload) into the content store, hashing as they come.

    ``path`` is the name the file is recorded under; nothing is written
    anywhere but the store. Raises ``LimitExceededError`` past ``max_bytes``.
    """
    stored = content_store.store_stream(stream, settings.objects_dir, max_bytes=max_bytes)
    return _ingested(path, stored, settings)


def _ingested(path: Path, stored: content_store.StoredObject, settings: Settings) -> IngestedFile:
    object_path = settings.objects_dir / stored.relative_path
    try:
        media_type = media_types.detect_media_type(object_path)
    except errors.EmptyFileError:
        media_type = media_types.EMPTY
    return IngestedFile(path, stored, media_type)


def _email_hash(settings: Settings, ingested: IngestedFile) -> str | None:
    """A loose message's normalised e-mail hash: what de-duplicates it against mailboxes."""
    readers = {
        media_types.EML: email_extractor.email_hash_of_file,
        media_types.MSG: msg_extractor.email_hash_of_file,
    }
    reader = readers.get(ingested.media_type)
    if reader is None:
        return None
    return reader(settings.objects_dir / ingested.stored.relative_path, settings.limits)


def custodian_of(path: Path, roots: Sequence[Path], options: RunOptions) -> str | None:
    """Whose collection ``path`` is: the named custodian, or its folder under a submitted root.

    With ``custodian_folders``, ``matter/alice/inbox.mbox`` submitted as
    ``matter`` is Alice's; a file directly in the root has the named
    custodian (or none).
    """
    if options.custodian_folders:
        for root in roots:
            try:
                parts = path.relative_to(root.resolve()).parts
            except ValueError:
                continue
            if len(parts) > 1:
                return recorded_path(Path(parts[0]))[:200]
    return options.custodian


def task_columns(task: TaskSpec) -> dict[str, Any]:
    """The columns of a run that record its task (what rebuilds it in a worker)."""
    return {
        "task_name": task.name,
        "task_version": task.version,
        "task_options": task.options,
        "prompt_hash": task.prompt_hash,
    }


def record_submission(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    name: str,
    roots: Sequence[Path],
    files: Sequence[IngestedFile],
    task: TaskSpec,
    executor: str,
    options: RunOptions = DEFAULT_RUN_OPTIONS,
    imaging: imaging_units.ImagingPlan | None = None,
    actor: str | None = None,
) -> Submission:
    """Record job, first run, items, sources and item runs in one transaction.

    ``imaging``, when the files held DICOM, is the header pass's plan: its
    index is written in the same transaction. ``actor`` is who submitted
    (default: the OS user; the console passes its signed-in user).
    """
    user = actor or submitter_identity()
    host = socket.gethostname()
    model_name, model_reference = configured_model(settings.model)
    with transaction(session_factory) as session:
        forecast = _estimate(session, model_name, files)
        job = Job(
            name=name,
            submitted_by=user,
            submitted_host=host,
            input_roots=[recorded_path(root.resolve()) for root in roots],
            file_count=sum(len(ingested.source_files()) for ingested in files),
            dedup_mode=options.dedup,
        )
        session.add(job)
        session.flush()
        run = Run(
            job_id=job.id,
            number=1,
            state=RunState.pending,
            executor=executor,
            **task_columns(task),
            model_name=model_name,
            model_path=model_reference,
            model_settings=settings.model.model_dump(mode="json"),
            created_by=user,
            priority=options.priority,
            deterministic=options.deterministic,
            estimate=forecast,
        )
        session.add(run)
        items_by_hash: dict[str, Item] = {}  # by de-duplication key
        sources: list[tuple[Item, IngestedFile, str | None]] = []
        custodians = {
            source.path: custodian_of(source.path, roots, options)
            for ingested in files
            for source in ingested.source_files()
        }
        for ingested in files:
            first_source = ingested.source_files()[0]
            key = families.dedup_key(
                options.dedup,
                sha256=ingested.stored.sha256,
                email_hash=_email_hash(settings, ingested),
                custodian=custodians[first_source.path],
                path=recorded_path(ingested.path),
            )
            item = items_by_hash.get(key)
            if item is None:
                item = Item(
                    job_id=job.id,
                    path=recorded_path(ingested.path),
                    size_bytes=ingested.stored.size_bytes,
                    sha256=ingested.stored.sha256,
                    md5=ingested.stored.md5,
                    media_type=ingested.media_type,
                    stored_path=ingested.stored.relative_path,
                    custodian=custodians[first_source.path],
                    dedup_key=key,
                )
                items_by_hash[key] = item
            role = "member" if ingested.members else None
            sources.extend((item, source, role) for source in ingested.source_files())
        session.add_all(items_by_hash.values())
        session.flush()
        for item in items_by_hash.values():
            item.family_id = item.id
        session.add_all(
            ItemSource(
                job_id=job.id,
                item_id=item.id,
                path=recorded_path(source.path),
                custodian=custodians[source.path],
                role=role,
            )
            for item, source, role in sources
        )
        dicom_instances = 0
        if imaging is not None and imaging.headers:
            items_by_path = {source.path: item for item, source, _ in sources}
            dicom_instances = imaging_units.record_index(
                session, job.id, imaging, items_by_path, recorded_path
            )
        item_runs = [
            ItemRun(run_id=run.id, item_id=item.id, state=ItemState.pending)
            for item in items_by_hash.values()
        ]
        session.add_all(item_runs)
        job.item_count = len(items_by_hash)
        session.flush()
        filesets = imaging.filesets if imaging is not None else []
        audit.append_events(
            session, _submission_events(job, run, sources, user, host, task, filesets)
        )
        duplicate_paths = [
            recorded_path(source.path)
            for item, source, role in sources
            if role is None and item.path != recorded_path(source.path)
        ]
        return Submission(
            job_id=job.id,
            run_id=run.id,
            item_run_ids=[item_run.id for item_run in item_runs],
            file_count=len(sources),
            item_count=len(items_by_hash),
            duplicate_paths=duplicate_paths,
            dicom_units=imaging.dicom_units if imaging is not None else 0,
            dicom_instances=dicom_instances,
            filesets=filesets,
        )


def _estimate(session: Session, model_name: str, files: Sequence[IngestedFile]) -> dict[str, Any]:
    """The first run's estimate from its distinct items' types and this model's history.

    Kept on the run so that ``sieve runs`` can show it against the wall time.
    Page counts and durations are left out: reading them is ``--dry-run``'s
    job, a submit only knows each item's type.
    """
    distinct = {ingested.stored.sha256: ingested.media_type for ingested in files}
    facts = [estimates.InputFacts(media_type) for media_type in distinct.values()]
    return estimates.estimate(facts, estimates.measured_rates(session, model_name)).as_json()


def _submission_events(
    job: Job,
    run: Run,
    sources: Sequence[tuple[Item, IngestedFile, str | None]],
    user: str,
    host: str,
    task: TaskSpec,
    filesets: Sequence[imaging_units.FileSetRead] = (),
) -> list[audit.EventDraft]:
    drafts = [
        audit.EventDraft(
            "job.created",
            user,
            job.id,
            details={"name": job.name, "host": host, "roots": job.input_roots},
        ),
        audit.EventDraft(
            "run.created",
            user,
            job.id,
            run.id,
            details={
                "number": run.number,
                "task": task.name,
                "task_version": task.version,
                "prompt_hash": task.prompt_hash,
                "model": run.model_name,
                "executor": run.executor,
                "priority": run.priority,
                "deterministic": run.deterministic,
            },
        ),
    ]
    for item, ingested, role in sources:
        details: dict[str, Any] = {
            "path": recorded_path(ingested.path),
            "md5": item.md5,
            "size_bytes": item.size_bytes,
            "media_type": item.media_type,
            "duplicate": role is None and item.path != recorded_path(ingested.path),
            "custodian": item.custodian,
        }
        if role == "member":
            # The item's hash is its manifest's; the instance file's own hashes go here.
            details |= {
                "member_sha256": ingested.stored.sha256,
                "md5": ingested.stored.md5,
                "size_bytes": ingested.stored.size_bytes,
                "member_media_type": ingested.media_type,
            }
        drafts.append(
            audit.EventDraft("item.ingested", user, job.id, run.id, item.id, item.sha256, details)
        )
    drafts.extend(
        audit.EventDraft(
            "dicom.fileset_read",
            user,
            job.id,
            run.id,
            details={
                "path": recorded_path(fileset.path),
                "sha256": fileset.sha256,
                "referenced": fileset.referenced,
                # The first hundred named; a damaged index may list thousands.
                "missing": list(fileset.missing[:100]),
                "missing_count": len(fileset.missing),
                "invalid_file_ids": fileset.invalid,
                "problem": fileset.problem,
            },
        )
        for fileset in filesets
    )
    return drafts


def submit(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    paths: Sequence[Path],
    task: TaskSpec,
    name: str | None,
    executor: str,
    progress: ProgressCallback | None = None,
    options: RunOptions = DEFAULT_RUN_OPTIONS,
    actor: str | None = None,
) -> Submission:
    """Ingest ``paths`` and record a job with its first run (nothing is enqueued here)."""
    files = ingest_files(paths, settings, progress)
    job_name = name or ", ".join(recorded_path(path) for path in paths)
    return submit_ingested(
        session_factory,
        settings,
        files=files,
        roots=paths,
        task=task,
        name=job_name,
        executor=executor,
        options=options,
        actor=actor,
    )


def submit_ingested(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    files: Sequence[IngestedFile],
    roots: Sequence[Path],
    task: TaskSpec,
    name: str,
    executor: str,
    options: RunOptions = DEFAULT_RUN_OPTIONS,
    actor: str | None = None,
) -> Submission:
    """Record a job over files already in the content store (from paths or uploads).

    ``roots`` are the folders the user named (none for uploads): they are
    recorded on the job and decide custodian folders.
    """
    if not files:
        raise errors.ConfigurationError("no files found under the given paths")
    imaging = imaging_units.plan_units(files, settings.objects_dir, options.unit)
    if not imaging.files:
        raise errors.ConfigurationError("the given paths hold only DICOMDIR indexes, no instances")
    return record_submission(
        session_factory,
        settings,
        name=name[:300],
        roots=roots,
        files=imaging.files,
        task=task,
        executor=executor,
        options=options,
        imaging=imaging,
        actor=actor,
    )
