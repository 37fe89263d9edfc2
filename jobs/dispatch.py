"""Handing item runs to the broker, after their rows are committed.

A task can run before the transaction that created its row commits, so
publishing always happens after commit; an item whose message is lost (a crash
between commit and publish, a Redis flush) stays ``pending``/``queued`` in the
database and is re-driven from there.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from db import audit
from db.base import utcnow
from db.models import Item, ItemRun, ItemState, Run
from db.session import transaction
from jobs.settings import Settings


def publish_item_runs(
    settings: Settings,
    session_factory: sessionmaker[Session],
    item_run_ids: Sequence[int],
    actor: str,
) -> int:
    """Publish one task message per item run and mark them queued; return the count."""
    from worker.celery_app import PROCESS_ITEM_TASK, create_celery_app

    app = create_celery_app(settings)
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=3)
            # Declare the queue and its binding every time: after a Redis
            # restart or flush the binding is gone, and a message published
            # to an exchange with no binding is silently dropped.
            app.amqp.queues[settings.worker.queue].bind(connection.default_channel).declare()
            producer = app.amqp.Producer(connection)
            for item_run_id in item_run_ids:
                app.send_task(
                    PROCESS_ITEM_TASK,
                    args=[item_run_id],
                    queue=settings.worker.queue,
                    producer=producer,
                )
    finally:
        app.close()
    _mark_queued(session_factory, item_run_ids, actor)
    return len(item_run_ids)


def _mark_queued(
    session_factory: sessionmaker[Session], item_run_ids: Sequence[int], actor: str
) -> None:
    now = utcnow()
    with transaction(session_factory) as session:
        # RETURNING gives exactly the rows this statement changed: an item a
        # worker already claimed is not marked queued, nor audited as such.
        queued_ids = session.scalars(
            update(ItemRun)
            .where(ItemRun.id.in_(list(item_run_ids)), ItemRun.state == ItemState.pending)
            .values(state=ItemState.queued, queued_at=now)
            .returning(ItemRun.id)
        ).all()
        if not queued_ids:
            return
        rows = session.execute(
            select(Run.job_id, Run.id, Item.id, Item.sha256)
            .select_from(ItemRun)
            .join(Run, Run.id == ItemRun.run_id)
            .join(Item, Item.id == ItemRun.item_id)
            .where(ItemRun.id.in_(queued_ids))
            .order_by(ItemRun.id)
        ).all()
        audit.append_events(
            session,
            [
                audit.EventDraft(
                    "item.state", actor, job_id, run_id, item_id, sha256,
                    {"from": "pending", "to": "queued"},
                )
                for job_id, run_id, item_id, sha256 in rows
            ],
        )


def broker_backlog(settings: Settings) -> int:
    """Messages waiting in the broker's queue for the workers (not yet reserved).

    The periodic sweep re-publishes queued items only when this is zero: a
    queued item whose message still waits here is not lost.
    """
    from worker.celery_app import create_celery_app

    app = create_celery_app(settings)
    try:
        with app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=3)
            try:
                declared = connection.default_channel.queue_declare(
                    queue=settings.worker.queue, passive=True
                )
            except connection.channel_errors:
                return 0  # Redis keeps no empty queue: "not found" means empty
            return int(declared.message_count)
    finally:
        app.close()
