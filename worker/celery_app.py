"""The Celery application: Redis as transport, the database as the truth.

Settings here follow from how Celery and Redis lose or double work (see the
project notes): late acks and reject-on-worker-lost so a dead child's message
is redelivered; prefetch of one so a long model call does not hold other
items hostage; a visibility timeout longer than the longest allowed task so
Redis does not hand a running task to a second worker. Effects are idempotent
anyway (leases and unique keys in the database), because Redis can still
deliver twice.
"""

from __future__ import annotations

from celery import Celery

from worker.config import WorkerConfig

PROCESS_ITEM_TASK = "sieve.process_item"


def create_celery_app(config: WorkerConfig) -> Celery:
    """A Celery app configured from ``config`` (connects to nothing yet).

    Build it once per process and hand it to what publishes; a worker adds its
    task with :func:`worker.tasks.register_worker_tasks`.
    """
    app = Celery("sieve", broker=config.broker_url, set_as_current=False)
    worker = config.worker
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=worker.queue,
        task_soft_time_limit=worker.task_soft_time_limit_s,
        task_time_limit=worker.task_time_limit_s,
        broker_transport_options={"visibility_timeout": worker.visibility_timeout_s},
        broker_connection_retry_on_startup=True,
        worker_proc_alive_timeout=worker.process_start_timeout_s,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        accept_content=["json"],
        task_serializer="json",
        enable_utc=True,
    )
    return app
