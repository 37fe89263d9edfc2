"""Shared fixtures for the unit layer: SQLite files and the fake model, no services."""

from __future__ import annotations

import pytest


@pytest.fixture
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A URL for an SQLite file that does not exist yet."""
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'sieve.db'}"
