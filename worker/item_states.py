"""The one owner of ``item_runs.state``: every move is checked, leased and audited here.

The audit trail vouches for item states ("every state change appends its event
in the same transaction"), and the lease logic depends on which states hold a
lease. Both rules live in :func:`transition` and nowhere else: the pipeline,
dispatch, recovery and cancel call it, and nothing else writes the column.

The allowed moves:

* ``pending → queued``: a message was published (dispatch).
* ``pending | queued → running``: a worker claimed the item (a fast worker may
  claim before dispatch has marked it queued). ``running → running`` is a
  takeover of a dead or expired lease; each move into ``running`` is one more
  attempt and a new lease.
* ``running → queued``: a transient error; the item will be tried again.
* ``running → done | failed | unsupported``: the attempt ended.
* ``pending | queued → failed``: its retry budget was spent before this attempt.
* ``queued | running → pending``: recovery found it stalled and re-drives it.
* any unfinished state ``→ cancelled``: the run was cancelled.

Final states (done, failed, unsupported, cancelled) have no way out: a re-run
creates new item runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from db import audit
from db.base import utcnow
from db.models import FINAL_ITEM_STATES, ItemRun, ItemState
from worker import errors

_S = ItemState

ALLOWED_TRANSITIONS: dict[ItemState, frozenset[ItemState]] = {
    _S.pending: frozenset({_S.queued, _S.running, _S.failed, _S.cancelled}),
    _S.queued: frozenset({_S.running, _S.pending, _S.failed, _S.cancelled}),
    _S.running: frozenset(
        {_S.running, _S.queued, _S.pending, _S.done, _S.failed, _S.unsupported, _S.cancelled}
    ),
    _S.done: frozenset(),
    _S.failed: frozenset(),
    _S.unsupported: frozenset(),
    _S.cancelled: frozenset(),
}


class InvalidTransitionError(errors.InternalError):
    """An item run was asked to move between two states that have no transition (a bug)."""

    code = "invalid_transition"


def is_allowed(from_state: ItemState, to_state: ItemState) -> bool:
    """Whether the table above admits ``from_state → to_state``."""
    return to_state in ALLOWED_TRANSITIONS[from_state]


def transition(
    session: Session,
    item_run: ItemRun,
    to: ItemState,
    actor: str,
    reason: str | None = None,
    *,
    lease_s: float | None = None,
    error: errors.SieveError | None = None,
    error_detail: str | None = None,
    new_attempt: bool = True,
    **details: Any,
) -> ItemRun:
    """Move ``item_run`` to ``to`` and append its ``item.state`` event, in ``session``'s transaction.

    ``actor`` is who moved it (``worker@host:pid``, an OS user); moving into
    ``running`` makes the actor the lease holder for ``lease_s`` seconds and
    counts one attempt (``new_attempt=False``: the holder resumes its own
    attempt after the database failed under it). ``error`` is recorded on the item (and in the event)
    for failed, unsupported and retried items. ``reason`` and ``details`` go
    into the event. Raises :class:`InvalidTransitionError` for a move the
    table does not allow.
    """
    transition_many(
        session,
        [item_run],
        to,
        actor,
        reason,
        lease_s=lease_s,
        error=error,
        error_detail=error_detail,
        new_attempt=new_attempt,
        **details,
    )
    return item_run


def transition_many(
    session: Session,
    item_runs: Sequence[ItemRun],
    to: ItemState,
    actor: str,
    reason: str | None = None,
    *,
    lease_s: float | None = None,
    error: errors.SieveError | None = None,
    error_detail: str | None = None,
    new_attempt: bool = True,
    **details: Any,
) -> None:
    """:func:`transition` for several item runs, their events appended in one go."""
    now = utcnow()
    drafts: list[audit.EventDraft] = []
    for item_run in item_runs:
        from_state = item_run.state
        if not is_allowed(from_state, to):
            raise InvalidTransitionError(
                f"item run {item_run.id}: no transition from {from_state.value} to {to.value}"
            )
        _apply(item_run, to, actor, now, lease_s, error, error_detail, new_attempt)
        event_details: dict[str, Any] = {"from": from_state.value, "to": to.value}
        if to == ItemState.running or item_run.attempts:
            event_details["attempt"] = item_run.attempts
        if reason:
            event_details["reason"] = reason
        if error is not None:
            event_details |= {"error_code": error.code, "error_message": error.message}
        drafts.append(
            audit.EventDraft(
                "item.state",
                actor,
                item_run.run.job_id,
                item_run.run_id,
                item_run.item_id,
                item_run.item.sha256,
                event_details | details,
            )
        )
    audit.append_events(session, drafts)


def _apply(
    item_run: ItemRun,
    to: ItemState,
    actor: str,
    now: dt.datetime,
    lease_s: float | None,
    error: errors.SieveError | None,
    error_detail: str | None,
    new_attempt: bool,
) -> None:
    """Set the state and what goes with it: lease, attempt, timestamps, error."""
    item_run.state = to
    if to == ItemState.running:
        if lease_s is None:
            raise InvalidTransitionError("a move into running needs the lease's length")
        item_run.attempts += 1 if new_attempt else 0
        item_run.lease_owner = actor
        item_run.lease_expires_at = now + dt.timedelta(seconds=lease_s)
        item_run.started_at = now
        item_run.error_code = item_run.error_message = item_run.error_detail = None
        return
    # Every other state is held by nobody.
    item_run.lease_owner = None
    item_run.lease_expires_at = None
    if to == ItemState.queued:
        item_run.queued_at = now
    if to in FINAL_ITEM_STATES:
        item_run.finished_at = now
    if error is not None:
        item_run.error_code = error.code
        item_run.error_message = error.message
        item_run.error_detail = error_detail
