"""The recovery sweep that runs inside every worker's main process.

At start, and then every ``worker.sweep_interval_s``, the worker asks the
database which items are stalled (see :mod:`worker.recovery`) and publishes them
again. That is what makes a job survive a Redis restart, a ``FLUSHALL`` or a
worker killed mid-item without anyone running ``sieve resume``.

It runs in a daemon thread of the main (parent) process, never in a pool
child, with a connection-less engine (``NullPool``): pool children are forked
from this process, and a connection open at fork time would be shared.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.pool import NullPool

from db.session import make_engine, make_session_factory
from worker import leases, recovery
from worker.config import WorkerConfig
from worker.dispatch import Dispatcher

logger = logging.getLogger(__name__)


def sweep_once(config: WorkerConfig, dispatcher: Dispatcher, actor: str) -> recovery.RecoveryReport:
    """One sweep over every active job; queued items only if the broker queue is empty."""
    policy = recovery.SweepPolicy(
        queued_grace_s=config.worker.requeue_grace_s, requeue_queued=dispatcher.backlog() == 0
    )
    engine = make_engine(config.resolved_database_url, poolclass=NullPool)
    try:
        return recovery.resume(dispatcher, make_session_factory(engine), actor, policy=policy)
    finally:
        engine.dispose()


def start_sweeper(config: WorkerConfig, dispatcher: Dispatcher) -> threading.Thread:
    """Sweep now and then periodically, in a daemon thread; returns the thread."""
    actor = leases.process_identity("sweeper", config.worker.host_name)
    interval_s = config.worker.sweep_interval_s

    def loop() -> None:
        while True:
            try:
                report = sweep_once(config, dispatcher, actor)
                if report.published:
                    logger.warning(
                        "recovery sweep re-published %s stalled item(s)", report.published
                    )
            except Exception:  # the broker or database is down: try again next time
                logger.exception("recovery sweep failed")
            if interval_s <= 0:
                return
            time.sleep(interval_s)

    thread = threading.Thread(target=loop, name="sieve-sweeper", daemon=True)
    thread.start()
    return thread
