"""Where a job stands: counts by state, failures by error code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import FINAL_ITEM_STATES, ItemRun, ItemState, Job, Result, Run
from worker import errors


@dataclass
class RunStatus:
    """Counts for one run of a job."""

    job_id: int
    job_name: str
    run_id: int
    run_number: int
    run_state: str
    task_name: str
    model_name: str
    item_count: int
    file_count: int
    counts: dict[str, int] = field(default_factory=dict)
    failures_by_code: dict[str, int] = field(default_factory=dict)

    @property
    def finished_count(self) -> int:
        """Items that reached a final state."""
        return sum(self.counts.get(state.value, 0) for state in FINAL_ITEM_STATES)

    @property
    def is_finished(self) -> bool:
        """True when every item is final."""
        return self.finished_count >= self.item_count

    @property
    def problem_count(self) -> int:
        """Items that ended failed or unsupported."""
        return self.counts.get("failed", 0) + self.counts.get("unsupported", 0)


def resolve_job_id(session: Session, job_id: int | None) -> int:
    """The given job id, or the most recent job's; raises if there is none."""
    if job_id is not None:
        if session.get(Job, job_id) is None:
            raise errors.NotFoundError(f"no job with id {job_id}")
        return job_id
    latest = session.scalar(select(Job.id).order_by(Job.id.desc()).limit(1))
    if latest is None:
        raise errors.NotFoundError("there are no jobs yet")
    return latest


def resolve_run(session: Session, job_id: int, run_number: int | None) -> Run:
    """The job's run with that number, or its latest run."""
    query = select(Run).where(Run.job_id == job_id)
    if run_number is not None:
        query = query.where(Run.number == run_number)
    run = session.scalar(query.order_by(Run.number.desc()).limit(1))
    if run is None:
        raise errors.NotFoundError(f"job {job_id} has no run {run_number or ''}".strip())
    return run


def run_status(session: Session, job_id: int, run_number: int | None = None) -> RunStatus:
    """Counts by state and failures by code for one run (default: the latest)."""
    job = session.get(Job, job_id)
    assert job is not None
    run = resolve_run(session, job_id, run_number)
    counts = {state.value: 0 for state in ItemState}
    for state, count in session.execute(
        select(ItemRun.state, func.count()).where(ItemRun.run_id == run.id).group_by(ItemRun.state)
    ):
        counts[state.value] = count
    failures = dict(
        session.execute(
            select(ItemRun.error_code, func.count())
            .where(
                ItemRun.run_id == run.id,
                ItemRun.state.in_([ItemState.failed, ItemState.unsupported]),
            )
            .group_by(ItemRun.error_code)
            .order_by(func.count().desc())
        ).all()
    )
    return RunStatus(
        job_id=job.id,
        job_name=job.name,
        run_id=run.id,
        run_number=run.number,
        run_state=run.state.value,
        task_name=run.task_name,
        model_name=run.model_name,
        # A re-run may select some of the job's items: its own count is what finishes.
        item_count=sum(counts.values()),
        file_count=job.file_count,
        counts=counts,
        failures_by_code={code or "unknown": count for code, count in failures.items()},
    )


@dataclass(frozen=True)
class RunSummary:
    """One line of ``sieve runs``: what a run was, and what it did."""

    run_id: int
    number: int
    parent_number: int | None
    created_at: str
    created_by: str
    task: str  # "name v<version>"
    prompt_hash: str
    model_name: str
    model_sha256s: list[str]  # what the results say produced them
    counts: dict[str, int]
    wall_seconds: float | None
    prompt_tokens: int
    completion_tokens: int
    selection: dict[str, Any] | None
    estimate: dict[str, Any] | None
    state: str
    priority: str
    deterministic: bool


def run_summaries(session: Session, job_id: int) -> list[RunSummary]:
    """Every run of ``job_id``, oldest first."""
    if session.get(Job, job_id) is None:
        raise errors.NotFoundError(f"no job with id {job_id}")
    runs = session.scalars(select(Run).where(Run.job_id == job_id).order_by(Run.number)).all()
    numbers = {run.id: run.number for run in runs}
    return [_summary(session, run, numbers.get(run.parent_run_id or -1)) for run in runs]


def _summary(session: Session, run: Run, parent_number: int | None) -> RunSummary:
    counts = {
        state.value: count
        for state, count in session.execute(
            select(ItemRun.state, func.count())
            .where(ItemRun.run_id == run.id)
            .group_by(ItemRun.state)
        )
    }
    prompt_tokens, completion_tokens = session.execute(
        select(
            func.coalesce(func.sum(Result.prompt_tokens), 0),
            func.coalesce(func.sum(Result.completion_tokens), 0),
        ).where(Result.run_id == run.id)
    ).one()
    hashes = session.scalars(
        select(Result.model_sha256).where(Result.run_id == run.id).distinct()
    ).all()
    wall = (
        (run.finished_at - run.started_at).total_seconds()
        if run.started_at and run.finished_at
        else None
    )
    return RunSummary(
        run_id=run.id,
        number=run.number,
        parent_number=parent_number,
        created_at=run.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        created_by=run.created_by,
        task=f"{run.task_name} v{run.task_version}",
        prompt_hash=run.prompt_hash,
        model_name=run.model_name,
        model_sha256s=sorted(hashes),
        counts=counts,
        wall_seconds=wall,
        prompt_tokens=int(prompt_tokens),
        completion_tokens=int(completion_tokens),
        selection=run.selection,
        estimate=run.estimate,
        state=run.state.value,
        priority=run.priority,
        deterministic=run.deterministic,
    )
