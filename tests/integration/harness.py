"""Real processes for integration tests: the sieve CLI and a Celery worker."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from db.models import Run, RunState

SIEVE = str(Path(sys.executable).parent / "sieve")


def run_sieve(
    args: list[str], env: dict[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run the real ``sieve`` console script."""
    return subprocess.run(
        [SIEVE, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@dataclass
class WorkerProcess:
    """A ``sieve worker`` subprocess and its log."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def submit_folder(env: dict[str, str], folder: Path, *extra: str) -> int:
    """``sieve submit FOLDER --task summarize [extra…]``; the job id it printed."""
    submitted = run_sieve(["submit", str(folder), "--task", "summarize", *extra], env)
    assert submitted.returncode == 0, submitted.stderr
    return int(submitted.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def running_worker(env: dict[str, str], log_path: Path) -> Iterator[WorkerProcess]:
    """A started worker, stopped when the block ends (for module-scoped fixtures)."""
    worker = start_worker(env, log_path)
    try:
        yield worker
    finally:
        worker.stop()


def start_worker(
    env: dict[str, str],
    log_path: Path,
    concurrency: int = 1,
    ready_timeout: float = 180,
    extra_args: Sequence[str] = (),
) -> WorkerProcess:
    """Start ``sieve worker`` and wait until its child has loaded the model."""
    command = [SIEVE, "worker", "--concurrency", str(concurrency), "--loglevel", "INFO"]
    with log_path.open("wb") as log_file:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [*command, *extra_args],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = WorkerProcess(process, log_path)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        log = worker.log()
        if " ready." in log and log.count("ready: model") >= concurrency:
            return worker
        if process.poll() is not None:
            raise RuntimeError(f"worker exited with {process.returncode}:\n{log}")
        time.sleep(0.5)
    worker.stop()
    raise TimeoutError(f"worker not ready after {ready_timeout}s:\n{worker.log()}")


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` until it returns something true; return that, or time out naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def wait_for_run(database_url: str, job_id: int, timeout: float) -> Run:
    """Poll the database until the job's latest run is completed."""
    engine = create_engine(database_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                row = connection.execute(
                    select(Run.state).where(Run.job_id == job_id).order_by(Run.number.desc())
                ).first()
            if row is not None and row.state == RunState.completed:
                break
            time.sleep(1)
        else:
            raise TimeoutError(f"job {job_id} did not complete within {timeout}s")
        with Session(engine) as session:
            run = session.scalars(
                select(Run).where(Run.job_id == job_id).order_by(Run.number.desc())
            ).first()
            assert run is not None
            return run
    finally:
        engine.dispose()
