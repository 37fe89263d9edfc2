"""audit events are append-only

Triggers reject UPDATE and DELETE on audit_events (and TRUNCATE on Postgres,
where row triggers do not fire for it). They stop mistakes by the application
or an operator; the hash chain is what proves integrity against a superuser.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POSTGRES_UP = [
    """
    CREATE FUNCTION sieve_audit_events_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP;
    END;
    $$
    """,
    """
    CREATE TRIGGER audit_events_append_only_rows
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION sieve_audit_events_append_only()
    """,
    """
    CREATE TRIGGER audit_events_append_only_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION sieve_audit_events_append_only()
    """,
]
POSTGRES_DOWN = [
    "DROP TRIGGER audit_events_append_only_truncate ON audit_events",
    "DROP TRIGGER audit_events_append_only_rows ON audit_events",
    "DROP FUNCTION sieve_audit_events_append_only()",
]
SQLITE_UP = [
    """
    CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE is not allowed'); END
    """,
    """
    CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: DELETE is not allowed'); END
    """,
]
SQLITE_DOWN = [
    "DROP TRIGGER audit_events_no_delete",
    "DROP TRIGGER audit_events_no_update",
]


def _statements(postgres: list[str], sqlite: list[str]) -> list[str]:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        return postgres
    if dialect == "sqlite":
        return sqlite
    raise NotImplementedError(f"no append-only triggers written for {dialect}")


def upgrade() -> None:
    for statement in _statements(POSTGRES_UP, SQLITE_UP):
        op.execute(statement)


def downgrade() -> None:
    for statement in _statements(POSTGRES_DOWN, SQLITE_DOWN):
        op.execute(statement)
