"""Shared fixtures for the unit tests.

The migration and audit tests also run against the real Postgres (CI
guarantees it is up): each gets a throwaway database with a unique name, dropped
at the end. An unreachable server makes those tests fail, never skip.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

DEFAULT_PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def postgres_admin_url() -> str:
    """Where to create throwaway databases; ``SIEVE_TEST_PG_ADMIN_URL`` overrides."""
    return os.environ.get("SIEVE_TEST_PG_ADMIN_URL", DEFAULT_PG_ADMIN_URL)


@contextlib.contextmanager
def throwaway_postgres_database() -> Iterator[str]:
    """Create an empty, uniquely named database; yield its URL; drop it afterwards."""
    admin = create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    database_name = f"sieve_ut_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{database_name}"'))
        try:
            yield admin.url.set(database=database_name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{database_name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A new, empty Postgres database for one test."""
    with throwaway_postgres_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A URL for an SQLite file that does not exist yet."""
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'sieve.db'}"
