"""identifying values kept apart from item metadata; what each result's model was given

DICOM files (and later e-mail) carry patient- or person-identifying values.
They get a column of their own so that nothing that builds prompts or reports
from ``doc_metadata`` can leak them by accident. ``results.inputs`` records
what the model could use (text only, or pictures too), so a result analysed
without its images says so.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("identifiers", JSON_DOCUMENT, nullable=True))
    with op.batch_alter_table("results") as batch:
        batch.add_column(sa.Column("inputs", JSON_DOCUMENT, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("results") as batch:
        batch.drop_column("inputs")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("identifiers")
