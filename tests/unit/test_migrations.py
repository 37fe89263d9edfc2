"""The migrations build exactly the schema the models describe (SQLite here; Postgres in integration).

Each test gets an empty database: a new SQLite file, or a throwaway Postgres
database. The schema comparison is Alembic's autogenerate diff, so a column
added to a model without a migration (or the reverse) fails here.
"""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from db import migrate
from db.models import Base
from db.session import make_engine

CONSOLE_TABLES = {"users", "api_tokens", "web_sessions", "job_grants", "review_decisions"}
TABLES = {
    "jobs",
    "runs",
    "items",
    "item_sources",
    "item_runs",
    "segments",
    "results",
    "audit_events",
    "email_messages",
    "dicom_patients",
    "dicom_studies",
    "dicom_series",
    "dicom_instances",
    "deid_mappings",
    *CONSOLE_TABLES,
}
# Tables created after revision 0001 (0005: the e-mail metadata; 0007: the DICOM index;
# 0008: the de-identification mappings; 0009: console access; 0010 adds index dates).
TABLES_AT_0001 = TABLES - {
    "email_messages",
    "dicom_patients",
    "dicom_studies",
    "dicom_series",
    "dicom_instances",
    "deid_mappings",
    *CONSOLE_TABLES,
}


@pytest.fixture
def empty_database_url(sqlite_url: str) -> str:
    """An empty database: SQLite here; the integration layer runs the same tests on
    PostgreSQL (tests/integration/test_migrations_postgres.py)."""
    return sqlite_url


def schema_diff(url: str) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def audit_trigger_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                query = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_events'"
            else:
                query = (
                    "SELECT tgname FROM pg_trigger "
                    "WHERE tgrelid = 'audit_events'::regclass AND NOT tgisinternal"
                )
            return set(connection.execute(text(query)).scalars())
    finally:
        engine.dispose()


EXPECTED_TRIGGERS = {
    "sqlite": {"audit_events_no_update", "audit_events_no_delete"},
    "postgresql": {"audit_events_append_only_rows", "audit_events_append_only_truncate"},
}


def dialect_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def test_an_empty_database_has_no_current_revision(empty_database_url: str) -> None:
    assert migrate.current_revision(empty_database_url) is None
    assert not migrate.is_up_to_date(empty_database_url)


def test_upgrade_brings_an_empty_database_to_the_head_revision(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url)

    assert migrate.current_revision(empty_database_url) == migrate.head_revision()
    assert migrate.is_up_to_date(empty_database_url)
    assert table_names(empty_database_url) == TABLES


def test_the_schema_built_by_migrations_equals_the_models(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url)

    diff = schema_diff(empty_database_url)

    assert diff == [], "migrations and models differ:\n" + "\n".join(map(repr, diff))


def test_downgrade_to_base_then_upgrade_round_trips(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url)

    migrate.downgrade(empty_database_url, "base")

    assert migrate.current_revision(empty_database_url) is None
    assert table_names(empty_database_url) == set()

    migrate.upgrade(empty_database_url)

    assert migrate.current_revision(empty_database_url) == migrate.head_revision()
    assert schema_diff(empty_database_url) == []
    assert (
        audit_trigger_names(empty_database_url) == EXPECTED_TRIGGERS[dialect_of(empty_database_url)]
    )


def test_upgrading_from_the_previous_revision_installs_the_audit_triggers(
    empty_database_url: str,
) -> None:
    migrate.upgrade(empty_database_url, "0001")
    assert migrate.current_revision(empty_database_url) == "0001"
    assert audit_trigger_names(empty_database_url) == set()

    migrate.upgrade(empty_database_url)

    assert migrate.current_revision(empty_database_url) == migrate.head_revision()
    assert (
        audit_trigger_names(empty_database_url) == EXPECTED_TRIGGERS[dialect_of(empty_database_url)]
    )


def test_downgrading_to_0001_removes_the_audit_triggers_and_later_tables(
    empty_database_url: str,
) -> None:
    migrate.upgrade(empty_database_url)

    migrate.downgrade(empty_database_url, "0001")

    assert migrate.current_revision(empty_database_url) == "0001"
    assert audit_trigger_names(empty_database_url) == set()
    assert table_names(empty_database_url) == TABLES_AT_0001


def test_upgrade_creates_the_directory_of_an_sqlite_file(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    database_path = tmp_path_factory.mktemp("data") / "nested" / "deeper" / "sieve.db"

    migrate.upgrade(f"sqlite:///{database_path}")

    assert database_path.is_file()
    assert migrate.current_revision(f"sqlite:///{database_path}") == migrate.head_revision()
