"""re-runs: what each run selected and why; pause, priority, determinism, output hashes

A run made by ``sieve rerun`` records the selection that made it (the run it
re-ran, ``--failed-only``, the ``--where`` text, how many items it picked) and
the estimate shown before it ran. Jobs can be paused; runs carry a priority
and whether they were asked to be deterministic. Each result stores the
SHA-256 of its output, so two runs can be compared by hash, and the versions
of the runtime that produced it (llama-cpp-python, ggml, the grammar engine). Items get the
custodian they were collected from (``sieve submit --custodian``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("custodian", sa.String(200), nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("selection", JSON_DOCUMENT, nullable=True))
        batch.add_column(sa.Column("estimate", JSON_DOCUMENT, nullable=True))
        batch.add_column(
            sa.Column("priority", sa.String(8), nullable=False, server_default="normal")
        )
        batch.add_column(
            sa.Column("deterministic", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("results") as batch:
        batch.add_column(sa.Column("output_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("runtime", JSON_DOCUMENT, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("results") as batch:
        batch.drop_column("runtime")
        batch.drop_column("output_sha256")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("deterministic")
        batch.drop_column("priority")
        batch.drop_column("estimate")
        batch.drop_column("selection")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("custodian")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("paused_at")
