"""Fixtures for the integration layer: real Postgres, Redis, worker and model."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from db import migrate
from tests import services
from tests.integration.harness import WorkerProcess, running_worker, start_worker
from worker.config import ModelSettings
from worker.model import LocalModel, load_process_model


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A new, empty Postgres database for one test, dropped afterwards."""
    with services.throwaway_postgres_database("sieve_it") as url:
        yield url


@pytest.fixture(scope="session")
def small_model_settings() -> ModelSettings:
    """Model settings for in-process model tests: the bundled model, small budgets."""
    return ModelSettings(n_ctx=2048, max_text_chars=80, max_output_tokens=160, n_threads=2)


@pytest.fixture(scope="session")
def small_model(small_model_settings: ModelSettings) -> LocalModel:
    """The real bundled GGUF, loaded once for the whole session (as a worker would)."""
    return load_process_model(small_model_settings)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh Postgres database at the newest schema, dropped after the session."""
    with services.throwaway_postgres_database() as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture(scope="session")
def db_engine(database_url: str) -> Iterator[Engine]:
    """One engine for the tests' own queries, disposed at the end."""
    # Pre-ping: one test kills every connection to this database on purpose.
    engine = create_engine(database_url, pool_pre_ping=True)
    yield engine
    engine.dispose()


@pytest.fixture
def db_session(db_engine: Engine) -> Iterator[Session]:
    """A session for reading what the system stored."""
    with Session(db_engine) as session:
        yield session


@pytest.fixture(scope="session")
def sieve_env(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for the CLI and worker subprocesses: servers, small limits."""
    data_dir = tmp_path_factory.mktemp("sieve-data")
    env = {key: value for key, value in os.environ.items() if not key.startswith("SIEVE_")}
    env.update(
        {
            "SIEVE_DATA_DIR": str(data_dir),
            "SIEVE_DATABASE_URL": database_url,
            "SIEVE_BROKER_URL": services.REDIS_URL,
            "SIEVE_WORKER__QUEUE": services.unique_queue_name(),
            "SIEVE_MODEL__N_CTX": "2048",
            "SIEVE_MODEL__MAX_TEXT_CHARS": "100",
            "SIEVE_MODEL__MAX_OUTPUT_TOKENS": "200",
            "SIEVE_MODEL__N_THREADS": "2",
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        }
    )
    return env


@pytest.fixture(scope="session")
def celery_worker(
    sieve_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """One real ``sieve worker`` (prefork, one child) for the whole session."""
    with running_worker(sieve_env, tmp_path_factory.mktemp("worker") / "worker.log") as worker:
        yield worker


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start workers on demand (``workers(env, name)``); every one is stopped at the end of the test."""
    started: list[WorkerProcess] = []

    def start(env: dict[str, str], name: str = "worker") -> WorkerProcess:
        worker = start_worker(env, tmp_path / f"{name}-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
