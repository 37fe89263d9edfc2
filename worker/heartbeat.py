"""Keeping an item's lease alive while a worker is busy with it.

Leases are short (``worker.lease_s``, a minute by default), so that an item
whose worker died on another host, where its process cannot be checked, is
taken over soon after the lease runs out. A long model call or extraction
must therefore renew the lease while it runs: a background thread does that
every ``lease_s / 3`` seconds. llama.cpp and the sandbox's ``wait`` release
the GIL, so the thread runs while the main thread is inside them.

A renewal that finds the lease gone (the run was cancelled, or another worker
took the item over after this one stalled) marks the heartbeat lost; the
worker calls :meth:`LeaseHeartbeat.check` between steps (the sandbox's wait
loop, after every model call) and abandons the work. (llama-cpp-python's chat
API offers no per-token stop hook, so a model call already under way finishes
first; its answer is then discarded.)
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from types import TracebackType

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from db.base import utcnow
from db.models import ItemRun, ItemState
from db.session import transaction
from worker import errors

logger = logging.getLogger(__name__)


def renew_lease(
    session_factory: sessionmaker[Session], item_run_id: int, owner: str, lease_s: float
) -> bool:
    """Extend ``owner``'s lease on the item run by ``lease_s``; False if it is no longer theirs."""
    expires = utcnow() + dt.timedelta(seconds=lease_s)
    with transaction(session_factory) as session:
        renewed = session.execute(
            update(ItemRun)
            .where(
                ItemRun.id == item_run_id,
                ItemRun.lease_owner == owner,
                ItemRun.state == ItemState.running,
            )
            .values(lease_expires_at=expires)
        ).rowcount
    return renewed == 1


class LeaseHeartbeat:
    """Renews one item run's lease from a daemon thread for as long as the block runs."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        item_run_id: int,
        owner: str,
        lease_s: float,
        interval_s: float | None = None,
    ) -> None:
        self._session_factory = session_factory
        self._item_run_id = item_run_id
        self._owner = owner
        self._lease_s = lease_s
        self._interval_s = interval_s if interval_s is not None else max(lease_s / 3, 0.05)
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LeaseHeartbeat:
        self._thread = threading.Thread(
            target=self._beat, name=f"sieve-lease-{self._item_run_id}", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._interval_s + 30)

    def lost(self) -> bool:
        """True once a renewal found that this worker no longer holds the item."""
        return self._lost.is_set()

    def check(self) -> None:
        """Raise :class:`~worker.errors.LeaseLostError` if the lease was lost."""
        if self._lost.is_set():
            raise errors.LeaseLostError(
                f"item run {self._item_run_id}: this worker no longer holds its lease "
                "(the run was cancelled, or another worker took the item over)"
            )

    def renew_now(self) -> None:
        """Renew at once, in the caller's thread; raise if the lease is gone."""
        if not renew_lease(self._session_factory, self._item_run_id, self._owner, self._lease_s):
            self._lost.set()
        self.check()

    def _beat(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                still_ours = renew_lease(
                    self._session_factory, self._item_run_id, self._owner, self._lease_s
                )
            except Exception:  # the database is away: keep trying; the store checks again
                logger.warning(
                    "item run %s: lease renewal failed", self._item_run_id, exc_info=True
                )
                continue
            if not still_ours:
                logger.warning("item run %s: lease lost; abandoning", self._item_run_id)
                self._lost.set()
                return
