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
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from db import audit
from db.base import utcnow
from db.models import FINAL_ITEM_STATES, Item, ItemRun, ItemState, Job, Run, RunState
from db.session import transaction
from jobs import leases
from jobs.dispatch import publish_item_runs
from jobs.settings import Settings

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
    settings: Settings,
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
        report.published = publish_item_runs(settings, session_factory, report.stalled, actor)
        logger.info(
            "re-published %s item(s): %s pending, %s queued, %s with dead leases",
            report.published, len(report.pending), len(report.queued), len(report.expired_leases),
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
            select(ItemRun, Run.job_id, Item.sha256)
            .join(Run, Run.id == ItemRun.run_id)
            .join(Item, Item.id == ItemRun.item_id)
            .where(
                Run.state.in_(ACTIVE_RUN_STATES),
                or_(
                    ItemRun.state.in_(waiting_states) & (ItemRun.updated_at <= grace_cutoff),
                    ItemRun.state == ItemState.running,
                ),
            )
            .order_by(ItemRun.id)
            # A worker claiming one of these right now holds its row lock:
            # skip it rather than wait, it is not stalled.
            .with_for_update(of=ItemRun, skip_locked=True)
        )
        if job_id is not None:
            query = query.where(Run.job_id == job_id)
        drafts: list[audit.EventDraft] = []
        for item_run, run_job_id, sha256 in session.execute(query).all():
            reason = _stall_reason(item_run, now)
            if reason is None:
                continue
            report.record(item_run.state, item_run.id)
            drafts.append(
                audit.EventDraft(
                    "item.state", actor, run_job_id, item_run.run_id, item_run.item_id, sha256,
                    {"from": item_run.state.value, "to": "pending", "reason": reason}
                    | ({"lease_owner": item_run.lease_owner} if item_run.lease_owner else {}),
                )
            )
            item_run.state = ItemState.pending
            item_run.lease_owner = None
            item_run.lease_expires_at = None
        audit.append_events(session, drafts)
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
    one notices at its next lease renewal or when it tries to store its
    result (the lease check fails) and abandons it; nothing it did is stored.
    Finished items and their results are kept.
    """
    now = utcnow()
    runs_cancelled: list[int] = []
    items_cancelled = items_running = 0
    with transaction(session_factory) as session:
        runs = session.scalars(
            select(Run)
            .where(Run.job_id == job_id, Run.state.in_(ACTIVE_RUN_STATES))
            .order_by(Run.id)
            .with_for_update()
        ).all()
        for run in runs:
            rows = session.execute(
                select(ItemRun, Item.sha256)
                .join(Item, Item.id == ItemRun.item_id)
                .where(ItemRun.run_id == run.id, ItemRun.state.not_in(FINAL_ITEM_STATES))
                .order_by(ItemRun.id)
                .with_for_update(of=ItemRun)
            ).all()
            drafts = [
                _cancel_item(item_run, sha256, job_id, actor, now) for item_run, sha256 in rows
            ]
            items_running += sum(1 for draft in drafts if draft.details["from"] == "running")
            items_cancelled += len(drafts)
            run.state = RunState.cancelled
            run.finished_at = now
            drafts.append(
                audit.EventDraft(
                    "run.cancelled", actor, job_id, run.id,
                    details={"items_cancelled": len(drafts)},
                )
            )
            audit.append_events(session, drafts)
            runs_cancelled.append(run.id)
    return CancelReport(job_id, runs_cancelled, items_cancelled, items_running)


def _cancel_item(
    item_run: ItemRun, sha256: str, job_id: int, actor: str, now: dt.datetime
) -> audit.EventDraft:
    draft = audit.EventDraft(
        "item.state", actor, job_id, item_run.run_id, item_run.item_id, sha256,
        {"from": item_run.state.value, "to": "cancelled"},
    )
    item_run.state = ItemState.cancelled
    item_run.finished_at = now
    item_run.lease_owner = None
    item_run.lease_expires_at = None
    return draft


def active_job_ids(session: Session) -> Sequence[int]:
    """Jobs with a run that is still pending or running."""
    return session.scalars(
        select(Run.job_id).where(Run.state.in_(ACTIVE_RUN_STATES)).distinct().order_by(Run.job_id)
    ).all()


def all_job_ids(session: Session) -> Sequence[int]:
    """Every job, oldest first."""
    return session.scalars(select(Job.id).order_by(Job.id)).all()
