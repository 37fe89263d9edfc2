"""Throwaway Postgres databases and Redis queues for tests.

Tests read their service addresses from SIEVE_TEST_* variables (defaults: this
machine's services). Sieve's own code reads settings only through jobs.settings.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get(
    "SIEVE_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("SIEVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@contextmanager
def throwaway_postgres_database(prefix: str = "sieve_test") -> Iterator[str]:
    """Create an empty, uniquely named database; drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def unique_queue_name() -> str:
    """A queue no other test session shares, so runs cannot steal each other's messages."""
    return f"sieve-test-{uuid.uuid4().hex[:8]}"
