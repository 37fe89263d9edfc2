"""The migration tests of ``tests/unit/test_migrations.py``, on an empty PostgreSQL database each."""

from __future__ import annotations

import inspect

import pytest

from tests.unit import test_migrations as dialect_independent

globals().update(
    {
        name: function
        for name, function in vars(dialect_independent).items()
        if name.startswith("test_")
        and "empty_database_url" in inspect.signature(function).parameters
    }
)


@pytest.fixture
def empty_database_url(empty_postgres_url: str) -> str:
    return empty_postgres_url
