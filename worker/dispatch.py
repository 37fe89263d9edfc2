"""Handing item runs to the broker, after their rows are committed.

A task can run before the transaction that created its row commits, so
publishing always happens after commit; an item whose message is lost (a crash
between commit and publish, a Redis flush) stays ``pending``/``queued`` in the
database and is re-driven from there (:mod:`worker.recovery`).

One :class:`Dispatcher` wraps the process's one Celery app: the CLI builds it
once per command, a worker's main process hands its own app to the sweeper.

Each message carries its run's priority. On Redis, kombu keeps one list per
priority step of a queue and a worker's BRPOP names them highest first, so a
worker takes every waiting ``high`` item before any ``normal`` one: an urgent
production is not stuck behind an archive queued earlier. Items already
reserved by a worker (one per process) finish first.
"""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from db.models import ItemRun, ItemState, Run
from db.session import transaction
from worker import item_states
from worker.celery_app import PROCESS_ITEM_TASK

# kombu's Redis transport serves priority 0 first (steps 0, 3, 6, 9).
MESSAGE_PRIORITY = {"high": 0, "normal": 3, "low": 6}


def message_priorities(
    session_factory: sessionmaker[Session], item_run_ids: Sequence[int]
) -> dict[int, int]:
    """The broker priority of each item run's message, from its run's priority."""
    priorities: dict[int, int] = {}
    with session_factory() as session:
        for start in range(0, len(item_run_ids), 1000):
            chunk = list(item_run_ids[start : start + 1000])
            rows = session.execute(
                select(ItemRun.id, Run.priority)
                .join(Run, Run.id == ItemRun.run_id)
                .where(ItemRun.id.in_(chunk))
            )
            priorities.update(
                (item_run_id, MESSAGE_PRIORITY.get(priority, MESSAGE_PRIORITY["normal"]))
                for item_run_id, priority in rows
            )
    return priorities


class Dispatcher:
    """Publishes item-run ids to the workers' queue and reads its backlog."""

    def __init__(self, app: Celery, queue: str) -> None:
        self.app = app
        self.queue = queue

    def publish(
        self, session_factory: sessionmaker[Session], item_run_ids: Sequence[int], actor: str
    ) -> int:
        """Publish one task message per item run, then mark them queued; return the count."""
        priorities = message_priorities(session_factory, item_run_ids)
        with self.app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=3)
            # Declare the queue and its binding every time: after a Redis
            # restart or flush the binding is gone, and a message published
            # to an exchange with no binding is silently dropped.
            self.app.amqp.queues[self.queue].bind(connection.default_channel).declare()
            producer = self.app.amqp.Producer(connection)
            for item_run_id in item_run_ids:
                self.app.send_task(
                    PROCESS_ITEM_TASK,
                    args=[item_run_id],
                    queue=self.queue,
                    producer=producer,
                    priority=priorities.get(item_run_id, MESSAGE_PRIORITY["normal"]),
                )
        mark_queued(session_factory, item_run_ids, actor)
        return len(item_run_ids)

    def backlog(self) -> int:
        """Messages waiting in the queue for the workers (not yet reserved).

        The periodic sweep re-publishes queued items only when this is zero: a
        queued item whose message still waits here is not lost.
        """
        with self.app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=3)
            try:
                declared = connection.default_channel.queue_declare(queue=self.queue, passive=True)
            except connection.channel_errors:
                return 0  # Redis keeps no empty queue: "not found" means empty
            return int(declared.message_count)

    def close(self) -> None:
        """Release the app's broker connections."""
        self.app.close()


def mark_queued(
    session_factory: sessionmaker[Session], item_run_ids: Sequence[int], actor: str
) -> None:
    """Mark still-pending item runs queued, with their events.

    Only rows still ``pending`` move: an item a fast worker already claimed is
    neither marked queued nor audited as such (the row lock decides the race).
    """
    with transaction(session_factory) as session:
        pending = session.scalars(
            select(ItemRun)
            .where(ItemRun.id.in_(list(item_run_ids)), ItemRun.state == ItemState.pending)
            .order_by(ItemRun.id)
            .options(selectinload(ItemRun.item), selectinload(ItemRun.run))
            .with_for_update(of=ItemRun)
        ).all()
        if pending:
            item_states.transition_many(session, pending, ItemState.queued, actor)
