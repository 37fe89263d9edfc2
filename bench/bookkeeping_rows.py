"""The ``bookkeeping`` rows: what queue and database cost per item, the model taken out.

Sieve's side is a real ``celery worker`` subprocess running Sieve's own task
(``bench/bookkeeping_worker.py``: :func:`worker.tasks.register_worker_tasks`,
the pipeline, leases, heartbeat, results and audit events in a throwaway
PostgreSQL database) with only the model replaced by one that answers at
once. Its baseline is a Celery task that does nothing
(``bench/noop_worker.py``), configured like Sieve's app, on the same Redis.
Both sides send their messages from one producer, the way
:meth:`worker.dispatch.Dispatcher.publish` does, and wait until every item
is done: Sieve's by its run completing in the database (how ``sieve status``
knows), the baseline's by its task results in Redis.

Small text files are extracted in the worker process (the sandbox is off for
this row): the text extractor costs well under a millisecond, where a
sandboxed child costs a Python start-up per item and would hide the bookkeeping.
"""

from __future__ import annotations

import math
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from celery import Celery
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from bench.rows import Row
from db import migrate
from db.models import ItemRun, ItemState, Run, RunState
from db.session import make_engine, make_session_factory
from jobs.settings import Settings
from jobs.submit import submit
from tests import services
from worker.celery_app import create_celery_app
from worker.config import WorkerConfig
from worker.dispatch import Dispatcher
from worker.task_specs import TaskSpec, build_task

NOOP_TASK = "bench.noop"
UNIT = "ms/item"
REPO_ROOT = Path(__file__).resolve().parent.parent
# Items each worker is warmed up with (connections opened, first imports and
# queries done) before the timed items are sent.
WARM_UP_ITEMS = 4
_READY_TIMEOUT_S = 120.0
_POLL_S = 0.02
# Celery's line for a finished task: "Task sieve.process_item[…] succeeded in 0.0412s: 'done'".
_SUCCEEDED = re.compile(r"\] succeeded in (?P<seconds>[\d.]+)s")


@dataclass(frozen=True)
class SieveSide:
    """What Sieve's side of one row measured."""

    ms_per_item: float
    done: int  # timed items that ended ``done``
    database_retries: int  # task retries on a database error (a deadlock, say), from the log
    median_task_ms: float  # inside the task, as Celery logged it: no broker, no retry waits


@dataclass(frozen=True)
class _Job:
    """A submitted job's run and the item runs to publish."""

    run_id: int
    item_run_ids: list[int]


def bookkeeping(
    scratch: Path, item_count: int, worker_counts: tuple[int, ...] = (1, 2)
) -> list[Row]:
    """One row per worker count: Sieve's ms per item against a no-op Celery task's.

    Needs Redis and PostgreSQL (``tests.services``' addresses); when either
    cannot be reached, the rows are still returned, with NaN figures and
    ``skipped`` saying why.
    """
    reason = unreachable_services(services.REDIS_URL, services.PG_ADMIN_URL)
    if reason:
        return [skipped_row(count, reason) for count in worker_counts]
    rows = []
    with services.throwaway_postgres_database("sieve_bench") as database_url:
        migrate.upgrade(database_url)
        for count in worker_counts:
            sieve_config = _sieve_settings(scratch / f"bookkeeping-{count}", database_url)
            sieve = _sieve_ms_per_item(sieve_config, item_count, count)
            baseline_ms = _noop_ms_per_item(scratch / f"noop-{count}", item_count, count)
            notes = {
                "items": item_count,
                "done": f"{sieve.done}/{item_count}",
                "database_retries": sieve.database_retries,
                "median_task_ms": round(sieve.median_task_ms, 1),
                "extraction": "text, in the worker (sandbox off)",
            }
            rows.append(
                Row(
                    row_name(count),
                    sieve.ms_per_item,
                    baseline_ms,
                    UNIT,
                    higher_is_better=False,
                    notes=notes,
                )
            )
    return rows


def row_name(worker_count: int) -> str:
    """``bookkeeping_1_worker``, ``bookkeeping_2_workers``."""
    return f"bookkeeping_{worker_count}_worker{'' if worker_count == 1 else 's'}"


def skipped_row(worker_count: int, reason: str) -> Row:
    """The row of a run that could not measure: NaN figures, and why."""
    return Row(
        row_name(worker_count),
        math.nan,
        math.nan,
        UNIT,
        higher_is_better=False,
        notes={"skipped": reason},
    )


def ms_per_item(seconds: float, item_count: int) -> float:
    """Wall milliseconds per item: the time all of them took, over how many there were."""
    return seconds * 1000 / item_count


def unreachable_services(redis_url: str, pg_admin_url: str) -> str | None:
    """Why Redis or PostgreSQL cannot be used now (a short reason), or None when both answer."""
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        return f"redis unreachable ({type(exc).__name__})"
    admin = create_engine(pg_admin_url, connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # whatever the driver raises, the database cannot be used
        return f"postgres unreachable ({type(exc).__name__})"
    finally:
        admin.dispose()
    return None


def worker_environment(config: WorkerConfig) -> dict[str, str]:
    """This process's environment plus the ``SIEVE_*`` variables that give a worker ``config``."""
    return {
        **os.environ,
        "SIEVE_DATA_DIR": str(config.data_dir),
        "SIEVE_DATABASE_URL": config.resolved_database_url,
        "SIEVE_BROKER_URL": config.broker_url,
        "SIEVE_WORKER__QUEUE": config.worker.queue,
        "SIEVE_WORKER__SWEEP_INTERVAL_S": str(config.worker.sweep_interval_s),
        "SIEVE_LIMITS__SANDBOX": "true" if config.limits.sandbox else "false",
    }


# --- Sieve's side -------------------------------------------------------------------


def _sieve_settings(data_dir: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        broker_url=services.REDIS_URL,
        # One sweep at start only: no timed item is re-published under the row.
        worker={"queue": services.unique_queue_name(), "sweep_interval_s": 0.0},
        limits={"sandbox": False},
    )


def _sieve_ms_per_item(config: Settings, item_count: int, worker_count: int) -> SieveSide:
    """ms per item through Sieve's real task, the items done, the retries it logged."""
    engine = make_engine(config.resolved_database_url)
    session_factory = make_session_factory(engine)
    dispatcher = Dispatcher(create_celery_app(config), config.worker.queue)
    task = build_task("summarize", {}, 200)
    warm_up = _submit_notes(config, session_factory, task, "warm-up", WARM_UP_ITEMS)
    timed = _submit_notes(config, session_factory, task, "timed", item_count)
    worker = _start_worker("bench.bookkeeping_worker", config, worker_count, model_children=True)
    try:
        _publish_and_wait(dispatcher, session_factory, warm_up)
        started = time.perf_counter()
        _publish_and_wait(dispatcher, session_factory, timed)
        seconds = time.perf_counter() - started
    finally:
        _stop(worker)
        dispatcher.close()
        _forget_queue(config.broker_url, config.worker.queue)
    done = _count_done(session_factory, timed.run_id)
    engine.dispose()
    log = worker.log()
    return SieveSide(
        ms_per_item(seconds, item_count), done, database_retries(log), median_task_ms(log)
    )


def median_task_ms(worker_log: str) -> float:
    """The median time Celery logged for the tasks that succeeded, in ms (NaN for none)."""
    seconds = [float(match["seconds"]) for match in _SUCCEEDED.finditer(worker_log)]
    return statistics.median(seconds) * 1000 if seconds else math.nan


def database_retries(worker_log: str) -> int:
    """How many times Sieve's task retried an item because the database refused (its warning)."""
    return sum(1 for line in worker_log.splitlines() if line.endswith("; retrying"))


def _submit_notes(
    config: Settings,
    session_factory: sessionmaker[Session],
    task: TaskSpec,
    label: str,
    count: int,
) -> _Job:
    """Record ``count`` small, distinct text files as one job (nothing published yet)."""
    folder = config.data_dir / "inputs" / label
    folder.mkdir(parents=True)
    for number in range(count):
        (folder / f"note-{number:05d}.txt").write_text(
            f"{label} note {number}: delivery of {number * 7} crates to berth {number % 9}.\n"
        )
    submission = submit(
        session_factory,
        config,
        paths=[folder],
        task=task,
        name=f"bench bookkeeping {label}",
        executor="celery",
    )
    return _Job(submission.run_id, submission.item_run_ids)


def _publish_and_wait(
    dispatcher: Dispatcher, session_factory: sessionmaker[Session], job: _Job
) -> None:
    """Publish the job's item runs as ``sieve submit`` does; return once its run completed."""
    dispatcher.publish(session_factory, job.item_run_ids, "bench")
    deadline = time.monotonic() + 60 + len(job.item_run_ids)
    while time.monotonic() < deadline:
        with session_factory() as session:
            if session.scalar(select(Run.state).where(Run.id == job.run_id)) == RunState.completed:
                return
        time.sleep(_POLL_S)
    raise TimeoutError(f"bench run {job.run_id} did not complete")


def _count_done(session_factory: sessionmaker[Session], run_id: int) -> int:
    with session_factory() as session:
        states = session.scalars(select(ItemRun.state).where(ItemRun.run_id == run_id)).all()
    return sum(1 for state in states if state == ItemState.done)


# --- the baseline ---------------------------------------------------------------------


def create_noop_app(config: WorkerConfig) -> Celery:
    """Sieve's Celery configuration with a task that does nothing, its results kept in Redis.

    The same delivery settings as Sieve's app (late acks, prefetch of one,
    JSON), so the rows differ by Sieve's work, not by Celery's. Results are
    stored so that the sender can wait for them, as Sieve's waits for the database.
    """
    app = create_celery_app(config)
    app.conf.update(result_backend=config.broker_url, task_ignore_result=False)

    @app.task(name=NOOP_TASK)
    def noop(item_number: int) -> None:
        """Nothing: what is left is Celery's own round trip through Redis."""

    return app


def _noop_ms_per_item(data_dir: Path, item_count: int, worker_count: int) -> float:
    """ms per item of the no-op task, sent from one producer and awaited by its results."""
    config = WorkerConfig(
        data_dir=data_dir,
        broker_url=services.REDIS_URL,
        worker={"queue": services.unique_queue_name()},
    )
    app = create_noop_app(config)
    worker = _start_worker("bench.noop_worker", config, worker_count, model_children=False)
    try:
        _send_noops_and_wait(app, config.worker.queue, WARM_UP_ITEMS)
        started = time.perf_counter()
        _send_noops_and_wait(app, config.worker.queue, item_count)
        seconds = time.perf_counter() - started
    finally:
        _stop(worker)
        app.close()
        _forget_queue(config.broker_url, config.worker.queue)
    return ms_per_item(seconds, item_count)


def _send_noops_and_wait(app: Celery, queue: str, count: int) -> None:
    """Publish ``count`` no-op tasks with one producer, as Dispatcher.publish does; wait for all.

    Waiting polls for the tasks' result keys every ``_POLL_S``, as Sieve's
    side polls for its run: Celery's own ``ResultSet.get`` sat up to half a
    second after the last result here, which would bias the baseline.
    """
    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=3)
        app.amqp.queues[queue].bind(connection.default_channel).declare()
        producer = app.amqp.Producer(connection)
        task_ids = [
            app.send_task(NOOP_TASK, args=[number], queue=queue, producer=producer).id
            for number in range(count)
        ]
    result_keys = [app.backend.get_key_for_task(task_id) for task_id in task_ids]
    client = redis.Redis.from_url(app.conf.result_backend)
    try:
        deadline = time.monotonic() + 60 + count
        while client.exists(*result_keys) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no-op tasks on {queue} did not finish")
            time.sleep(_POLL_S)
        client.delete(*result_keys)
    finally:
        client.close()


# --- worker subprocesses ----------------------------------------------------------------


@dataclass(frozen=True)
class _Worker:
    """A ``celery worker`` subprocess and where it logs."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _start_worker(
    app_module: str, config: WorkerConfig, concurrency: int, *, model_children: bool
) -> _Worker:
    """``celery -A app_module worker`` on ``config``'s queue, returned once it serves.

    ``model_children``: also wait until every pool child has built Sieve's
    pipeline context (it logs "ready: model" once per child).
    """
    config.data_dir.mkdir(parents=True, exist_ok=True)
    log_path = config.data_dir / "worker.log"
    command = [
        *(sys.executable, "-m", "celery", "-A", app_module, "worker"),
        *("--pool", "prefork", "--concurrency", str(concurrency)),
        *("--queues", config.worker.queue, "--loglevel", "INFO"),
        *("--without-gossip", "--without-mingle", "--without-heartbeat"),
        *("--hostname", f"{config.worker.queue}@%h"),
    ]
    with log_path.open("wb") as log_file:  # the child keeps its own descriptor
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=worker_environment(config),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = _Worker(process, log_path)
    _wait_until_ready(worker, concurrency if model_children else 0)
    return worker


def _wait_until_ready(worker: _Worker, model_children: int) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while time.monotonic() < deadline:
        log = worker.log()
        if " ready." in log and log.count("ready: model") >= model_children:
            return
        if worker.process.poll() is not None:
            raise RuntimeError(f"bench worker exited with {worker.process.returncode}:\n{log}")
        time.sleep(0.2)
    _stop(worker)
    raise TimeoutError(f"bench worker not ready after {_READY_TIMEOUT_S} s:\n{worker.log()}")


def _stop(worker: _Worker) -> None:
    """A warm shutdown (SIGTERM); the whole process group is killed if it takes too long."""
    if worker.process.poll() is not None:
        return
    worker.process.send_signal(signal.SIGTERM)
    try:
        worker.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait(timeout=10)


def _forget_queue(redis_url: str, queue: str) -> None:
    """Delete the row's queue and its binding from Redis: the queue name is never used again."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(queue, f"_kombu.binding.{queue}")
    finally:
        client.close()
