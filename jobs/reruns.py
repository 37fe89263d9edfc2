"""Re-running a job from what the database holds: select items, record a new run.

A re-run never reads a file again from its old path: every item's original is
in the content store, and the new run's item runs point at the same items.
The run it re-runs (its *base*, the job's latest run unless ``--run`` says
otherwise) and every result in it stay as they are; results are keyed by run.

Selection starts from every item of the job, keeps those that ended
``failed`` in the base run when ``--failed-only`` is given, and then those the
``--where`` filter (:mod:`jobs.item_filter`) matches, evaluated against the
item's facts in the base run. What was selected, how, and by whom, is stored
on the new run (``runs.selection``) and in its ``run.created`` audit event.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, sessionmaker

from db import audit
from db.models import EmailMessage, Item, ItemRun, ItemState, Job, Result, Run, RunState
from db.session import NO_KEY_UPDATE, transaction
from jobs.item_filter import Context, ItemFacts, ItemFilter
from jobs.status import resolve_run
from jobs.submit import task_columns
from worker import errors, task_specs
from worker.config import ModelSettings
from worker.model import configured_model

PRIORITIES = ("high", "normal", "low")


@dataclass(frozen=True)
class RerunRequest:
    """What ``sieve rerun`` was asked for."""

    job_id: int
    base_run_number: int | None = None  # None: the job's latest run
    failed_only: bool = False
    where: ItemFilter | None = None
    task: task_specs.TaskSpec | None = None  # None: the base run's task
    model: ModelSettings | None = None  # None: the base run's model settings
    deterministic: bool = False
    priority: str = "normal"

    def options(self) -> dict[str, Any]:
        """The request as stored on the run and in the audit trail: exactly as asked."""
        return {
            "run": self.base_run_number,
            "failed_only": self.failed_only,
            "where": self.where.source if self.where else None,
            "task": self.task.name if self.task else None,
            "task_options": self.task.options if self.task else None,
            "model": str(self.model.path) if self.model and self.model.path else None,
            "deterministic": self.deterministic,
            "priority": self.priority,
        }


@dataclass(frozen=True)
class Selection:
    """The items a re-run will process, and what they were chosen from."""

    base_run_id: int
    base_run_number: int
    item_ids: list[int]
    considered: int  # the job's items


@dataclass(frozen=True)
class Rerun:
    """The run a re-run recorded."""

    job_id: int
    run_id: int
    number: int
    item_run_ids: list[int]
    selection: Selection


def item_facts(session: Session, run: Run) -> Iterator[tuple[int, ItemFacts]]:
    """(item id, facts) for every item of ``run``'s job, as they stand in ``run``."""
    rows = session.execute(
        select(
            Item,
            ItemRun.state,
            ItemRun.error_code,
            Result.model_sha256,
            Result.task_version,
            EmailMessage.thread_id,
            EmailMessage.inclusive,
        )
        .outerjoin(ItemRun, and_(ItemRun.item_id == Item.id, ItemRun.run_id == run.id))
        .outerjoin(Result, and_(Result.item_id == Item.id, Result.run_id == run.id))
        .outerjoin(EmailMessage, EmailMessage.item_id == Item.id)
        .where(Item.job_id == run.job_id)
        .order_by(Item.id)
        .execution_options(yield_per=1000)
    )
    try:
        yield from _facts_of(rows)
    finally:
        rows.close()  # a caller that stops early (one page of items) frees the cursor now


def _facts_of(rows: Any) -> Iterator[tuple[int, ItemFacts]]:
    for item, state, error_code, model_sha256, task_version, thread_id, inclusive in rows:
        yield (
            item.id,
            ItemFacts(
                # An item the base run did not include (a narrower re-run) is
                # "pending" there: it has not been processed in that run.
                state=state.value if state is not None else ItemState.pending.value,
                error_code=error_code,
                media_type=item.media_type,
                path=item.path,
                custodian=item.custodian,
                size_bytes=item.size_bytes,
                page_count=item.page_count,
                model_sha256=model_sha256,
                task_version=task_version,
                level=item.level,
                family_id=item.family_id or item.id,
                thread_id=thread_id,
                inclusive=inclusive,
            ),
        )


def select_items(
    session: Session, request: RerunRequest, current_model_sha256: str | None = None
) -> Selection:
    """Apply ``--failed-only`` and ``--where`` to the job's items in the base run."""
    run = resolve_run(session, request.job_id, request.base_run_number)
    context = Context(current_model_sha256=current_model_sha256)
    chosen: list[int] = []
    considered = 0
    for item_id, facts in item_facts(session, run):
        considered += 1
        if request.failed_only and facts.state != ItemState.failed.value:
            continue
        if request.where is not None and not request.where.matches(facts, context):
            continue
        chosen.append(item_id)
    return Selection(run.id, run.number, chosen, considered)


def rerun_task(
    session: Session, base: Run, requested: task_specs.TaskSpec | None
) -> task_specs.TaskSpec:
    """The new run's task: the base run's, or the requested one, versioned within the job.

    The same instructions and schema as any earlier run of the job keep that
    run's version; a task the job ran before with other instructions, schema
    or labels gets the job's highest version of it plus one. So results stay
    comparable by ``task_version``.
    """
    if requested is None:
        return task_specs.task_for_run(base.task_name, base.task_options)
    max_text_chars = int(requested.options["max_text_chars"])

    def as_version(version: object) -> task_specs.TaskSpec:
        return task_specs.build_task(
            requested.name, {**requested.options, "version": version}, max_text_chars
        )

    earlier = session.execute(
        select(Run.task_version, Run.prompt_hash).where(
            Run.job_id == base.job_id, Run.task_name == requested.name
        )
    ).all()
    for version, prompt_hash in earlier:
        if as_version(version).prompt_hash == prompt_hash:
            return as_version(version)
    numbers = [int(version) for version, _ in earlier if version.isdigit()]
    return as_version(max(numbers) + 1) if numbers else requested


def record_rerun(
    session_factory: sessionmaker[Session],
    request: RerunRequest,
    *,
    actor: str,
    executor: str,
    current_model_sha256: str | None = None,
    estimate: dict[str, Any] | None = None,
) -> Rerun:
    """Select, then record the new run and its item runs in one transaction (nothing is queued)."""
    if request.priority not in PRIORITIES:
        raise errors.UsageError(f"--priority must be one of {', '.join(PRIORITIES)}")
    with transaction(session_factory) as session:
        job = session.get(Job, request.job_id, with_for_update=NO_KEY_UPDATE)
        if job is None:
            raise errors.NotFoundError(f"no job with id {request.job_id}")
        selection = select_items(session, request, current_model_sha256)
        if not selection.item_ids:
            raise errors.UsageError(
                f"the re-run selects no items (of {selection.considered} in job {job.id}); "
                "nothing was recorded"
            )
        base = session.get(Run, selection.base_run_id)
        assert base is not None
        task = rerun_task(session, base, request.task)
        run = _new_run(session, job, base, task, request, actor, executor, selection, estimate)
        item_runs = [
            ItemRun(run_id=run.id, item_id=item_id, state=ItemState.pending)
            for item_id in selection.item_ids
        ]
        session.add_all(item_runs)
        session.flush()
        audit.append_event(
            session,
            audit.EventDraft(
                "run.created",
                actor,
                job.id,
                run.id,
                details={
                    "number": run.number,
                    "rerun_of": base.number,
                    "options": request.options(),
                    "selected": len(selection.item_ids),
                    "considered": selection.considered,
                    "task": task.name,
                    "task_version": task.version,
                    "prompt_hash": task.prompt_hash,
                    "model": run.model_name,
                    "executor": executor,
                    "host": socket.gethostname(),
                },
            ),
        )
        return Rerun(job.id, run.id, run.number, [ir.id for ir in item_runs], selection)


def _new_run(
    session: Session,
    job: Job,
    base: Run,
    task: task_specs.TaskSpec,
    request: RerunRequest,
    actor: str,
    executor: str,
    selection: Selection,
    estimate: dict[str, Any] | None,
) -> Run:
    number = (session.scalar(select(func.max(Run.number)).where(Run.job_id == job.id)) or 0) + 1
    if request.model is not None:
        model_name, model_reference = configured_model(request.model)
        model_settings = request.model.model_dump(mode="json")
    else:
        model_name, model_reference = base.model_name, base.model_path
        model_settings = base.model_settings
    run = Run(
        job_id=job.id,
        number=number,
        parent_run_id=base.id,
        state=RunState.pending,
        executor=executor,
        **task_columns(task),
        model_name=model_name,
        model_path=model_reference,
        model_settings=model_settings,
        created_by=actor,
        selection={
            **request.options(),
            "run": base.number,
            "selected": len(selection.item_ids),
            "considered": selection.considered,
        },
        estimate=estimate,
        priority=request.priority,
        deterministic=request.deterministic,
    )
    session.add(run)
    session.flush()
    return run
