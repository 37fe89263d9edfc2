"""DICOM index dates: SeriesDate per series, AcquisitionDate and ContentDate per instance

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: an index written before this revision did not read them, and many
    # objects (secondary captures, some SRs) carry none.
    with op.batch_alter_table("dicom_series") as table:
        table.add_column(sa.Column("series_date", sa.String(8), nullable=True))
    with op.batch_alter_table("dicom_instances") as table:
        table.add_column(sa.Column("acquisition_date", sa.String(8), nullable=True))
        table.add_column(sa.Column("content_date", sa.String(8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dicom_instances") as table:
        table.drop_column("content_date")
        table.drop_column("acquisition_date")
    with op.batch_alter_table("dicom_series") as table:
        table.drop_column("series_date")
