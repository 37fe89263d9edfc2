"""Shared fixtures for the unit tests.

The migration and audit tests also run against the real Postgres (CI
guarantees it is up): each gets a throwaway database with a unique name, dropped
at the end. An unreachable server makes those tests fail, never skip.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobs.settings import ModelSettings
from worker.model import LocalModel, load_process_model

from tests.services import throwaway_postgres_database


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A new, empty Postgres database for one test."""
    with throwaway_postgres_database("sieve_ut") as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A URL for an SQLite file that does not exist yet."""
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'sieve.db'}"


@pytest.fixture(scope="session")
def small_model_settings() -> ModelSettings:
    """Model settings for the unit layer: the bundled model, small budgets."""
    return ModelSettings(n_ctx=2048, max_text_chars=80, max_output_tokens=160, n_threads=2)


@pytest.fixture(scope="session")
def small_model(small_model_settings: ModelSettings) -> LocalModel:
    """The real bundled GGUF, loaded once for the whole session (as a worker would)."""
    return load_process_model(small_model_settings)
