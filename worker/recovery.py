"""Re-driving work the broker lost, and cancelling work nobody should do.

The database is the truth and Redis is transport: a Redis restart without
persistence, a ``FLUSHALL``, a crash between commit and publish or a worker
killed with SIGKILL can each leave an item whose row says ``pending``,
``queued`` or ``running`` with no message anywhere that will ever move it.
Recovery finds such items from the database alone and publishes them again.

Re-publishing is safe because processing is idempotent: a message for an item
that is already final, or leased by a live worker, does nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from db import audit
from db.base import utcnow
from db.models import FINAL_ITEM_STATES, ItemRun, ItemState, Job, Run, RunState
from db.session import NO_KEY_UPDATE, transaction
from worker import errors, item_states, leases
from worker.dispatch import Dispatcher

logger = logging.getLogger(__name__)

ACTIVE_RUN_STATES = (RunState.pending, RunState.running)


@dataclass(frozen=True)
class SweepPolicy:
    """Which unfinished items count as stalled.

    ``queued_grace_s``: an item queued (or pending) for less than this is left
    alone, its message may simply not have been picked up yet. ``requeue_queued``:
    whether queued items are re-published at all; the periodic sweep does that
    only when the broker's queue is empty, since a message still waiting there
    is not lost.
    """

    queued_grace_s: float = 0.0
    requeue_queued: bool = True


@dataclass
class RecoveryReport:
    """What a sweep found and re-published."""

    pending: list[int] = field(default_factory=list)
    queued: list[int] = field(default_factory=list)
    expired_leases: list[int] = field(default_factory=list)
    published: int = 0

    def record(self, state: ItemState, item_run_id: int) -> None:
        """Count one stalled item run under the state it was found in."""
        if state == ItemState.pending:
            self.pending.append(item_run_id)
        elif state == ItemState.queued:
            self.queued.append(item_run_id)
        else:
            self.expired_leases.append(item_run_id)

    @property
    def stalled(self) -> list[int]:
        """Every item run that was re-published, in id order."""
        return sorted(self.pending + self.queued + self.expired_leases)


def resume(
    dispatcher: Dispatcher,
    session_factory: sessionmaker[Session],
    actor: str,
    job_id: int | None = None,
    policy: SweepPolicy | None = None,
) -> RecoveryReport:
    """Re-publish the stalled items of ``job_id`` (every active job when None).

    Stalled: ``pending`` or ``queued`` (see :class:`SweepPolicy`), or
    ``running`` with a lease that expired or whose holder on this host is gone.
    Each is reset to ``pending`` with an audit event saying why, then
    published; the publish marks it ``queued`` again.
    """
    policy = policy or SweepPolicy()
    report = _reset_stalled(session_factory, actor, job_id, policy)
    if report.stalled:
        report.published = dispatcher.publish(session_factory, report.stalled, actor)
        logger.info(
            "re-published %s item(s): %s pending, %s queued, %s with dead leases",
            report.published,
            len(report.pending),
            len(report.queued),
            len(report.expired_leases),
        )
    return report


def _reset_stalled(
    session_factory: sessionmaker[Session], actor: str, job_id: int | None, policy: SweepPolicy
) -> RecoveryReport:
    now = utcnow()
    grace_cutoff = now - dt.timedelta(seconds=policy.queued_grace_s)
    report = RecoveryReport()
    with transaction(session_factory) as session:
        waiting_states = [ItemState.pending]
        if policy.requeue_queued:
            waiting_states.append(ItemState.queued)
        query = (
            select(ItemRun)
            .join(Run, Run.id == ItemRun.run_id)
            .join(Job, Job.id == Run.job_id)
            .where(
                Run.state.in_(ACTIVE_RUN_STATES),
                # A paused job's items wait for ``sieve unpause``, which re-drives them.
                Job.paused_at.is_(None),
                or_(
                    ItemRun.state.in_(waiting_states) & (ItemRun.updated_at <= grace_cutoff),
                    ItemRun.state == ItemState.running,
                ),
            )
            .order_by(ItemRun.id)
            .options(selectinload(ItemRun.item), selectinload(ItemRun.run))
            # A worker claiming one of these right now holds its row lock:
            # skip it rather than wait, it is not stalled.
            .with_for_update(of=ItemRun, skip_locked=True)
        )
        if job_id is not None:
            query = query.where(Run.job_id == job_id)
        for item_run in session.scalars(query).all():
            reason = _stall_reason(item_run, now)
            if reason is None:
                continue
            report.record(item_run.state, item_run.id)
            if item_run.state == ItemState.pending:
                continue  # already where a publish starts from; nothing to reset
            lease = {"lease_owner": item_run.lease_owner} if item_run.lease_owner else {}
            item_states.transition(session, item_run, ItemState.pending, actor, reason, **lease)
    return report


def _stall_reason(item_run: ItemRun, now: dt.datetime) -> str | None:
    if item_run.state == ItemState.pending:
        return "never published"
    if item_run.state == ItemState.queued:
        return "message lost"
    if item_run.lease_expires_at is None or item_run.lease_expires_at <= now:
        return "lease expired"
    if leases.owner_is_dead(item_run.lease_owner):
        return "lease holder gone"
    return None


# --- cancel -------------------------------------------------------------------


@dataclass(frozen=True)
class CancelReport:
    """What ``cancel_job`` stopped."""

    job_id: int
    runs_cancelled: list[int]
    items_cancelled: int
    items_running: int  # were being processed; their workers abandon them


def cancel_job(session_factory: sessionmaker[Session], job_id: int, actor: str) -> CancelReport:
    """Cancel every active run of a job: no further item is started or finished.

    Unfinished items become ``cancelled`` at once. A worker in the middle of
    one notices at its next lease renewal (the heartbeat) or when it tries to
    store its result (the lease check fails) and abandons it; nothing it did is
    stored. Finished items and their results are kept.
    """
    now = utcnow()
    runs_cancelled: list[int] = []
    items_cancelled = items_running = 0
    with transaction(session_factory) as session:
        runs = session.scalars(
            select(Run)
            .where(Run.job_id == job_id, Run.state.in_(ACTIVE_RUN_STATES))
            .order_by(Run.id)
            .with_for_update(key_share=True)
        ).all()
        for run in runs:
            unfinished = session.scalars(
                select(ItemRun)
                .where(ItemRun.run_id == run.id, ItemRun.state.not_in(FINAL_ITEM_STATES))
                .order_by(ItemRun.id)
                .options(selectinload(ItemRun.item), selectinload(ItemRun.run))
                .with_for_update(of=ItemRun)
            ).all()
            items_running += sum(
                1 for item_run in unfinished if item_run.state == ItemState.running
            )
            items_cancelled += len(unfinished)
            item_states.transition_many(session, unfinished, ItemState.cancelled, actor)
            run.state = RunState.cancelled
            run.finished_at = now
            audit.append_event(
                session,
                audit.EventDraft(
                    "run.cancelled",
                    actor,
                    job_id,
                    run.id,
                    details={"items_cancelled": len(unfinished)},
                ),
            )
            runs_cancelled.append(run.id)
    return CancelReport(job_id, runs_cancelled, items_cancelled, items_running)


def set_job_paused(
    session_factory: sessionmaker[Session], job_id: int, actor: str, paused: bool
) -> bool:
    """Pause or unpause a job; return False when it already was so (nothing recorded).

    While paused, workers start none of its items: one whose message arrives
    goes back to ``pending`` (:func:`worker.pipeline._claim`) and the sweep
    leaves it there. Items already running finish. After unpausing, the
    caller re-drives the job's waiting items with :func:`resume`.
    """
    with transaction(session_factory) as session:
        job = session.get(Job, job_id, with_for_update=NO_KEY_UPDATE)
        if job is None:
            raise errors.NotFoundError(f"no job with id {job_id}")
        if (job.paused_at is not None) == paused:
            return False
        job.paused_at = utcnow() if paused else None
        audit.append_event(
            session, audit.EventDraft("job.paused" if paused else "job.unpaused", actor, job_id)
        )
        return True
