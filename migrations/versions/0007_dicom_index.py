"""the DICOM index: patients, studies, series and instances; member sources

A header-only pass at submit fills patient → study → series → instance, and
a series or study can be one item (``--unit``) whose instance files are its
members: each is an item source with role "member". Who a patient is stays
in the ``identifiers`` columns, apart from everything else.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _key(table: str, column: str, target: str, *, nullable: bool = False) -> sa.Column:
    """A foreign key column, its constraint named by the models' naming convention."""
    return sa.Column(
        column,
        sa.Integer(),
        sa.ForeignKey(f"{target}.id", name=f"fk_{table}_{column}_{target}", ondelete="RESTRICT"),
        nullable=nullable,
    )


def _primary(_table: str) -> sa.Column:
    return sa.Column("id", sa.Integer(), nullable=False)


def upgrade() -> None:
    op.add_column("item_sources", sa.Column("role", sa.String(16), nullable=True))
    op.create_table(
        "dicom_patients",
        _primary("dicom_patients"),
        _key("dicom_patients", "job_id", "jobs"),
        sa.Column("patient_key", sa.String(64), nullable=False),
        sa.Column("identifiers", JSON_DOCUMENT, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dicom_patients"),
        sa.UniqueConstraint("job_id", "patient_key", name="uq_dicom_patients_job_id_patient_key"),
    )
    op.create_table(
        "dicom_studies",
        _primary("dicom_studies"),
        _key("dicom_studies", "job_id", "jobs"),
        _key("dicom_studies", "patient_id", "dicom_patients"),
        sa.Column("study_instance_uid", sa.String(64), nullable=False),
        sa.Column("study_date", sa.String(8), nullable=True),
        sa.Column("modalities", JSON_DOCUMENT, nullable=False),
        sa.Column("identifiers", JSON_DOCUMENT, nullable=True),
        _key("dicom_studies", "item_id", "items", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dicom_studies"),
        sa.UniqueConstraint(
            "job_id", "study_instance_uid", name="uq_dicom_studies_job_id_study_instance_uid"
        ),
    )
    op.create_table(
        "dicom_series",
        _primary("dicom_series"),
        _key("dicom_series", "job_id", "jobs"),
        _key("dicom_series", "study_id", "dicom_studies"),
        sa.Column("series_instance_uid", sa.String(64), nullable=False),
        sa.Column("series_number", sa.Integer(), nullable=True),
        sa.Column("modality", sa.String(16), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("body_part", sa.String(64), nullable=True),
        sa.Column("frame_of_reference_uid", sa.String(64), nullable=True),
        sa.Column("instance_count", sa.Integer(), nullable=False),
        _key("dicom_series", "item_id", "items", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dicom_series"),
        sa.UniqueConstraint(
            "job_id", "series_instance_uid", name="uq_dicom_series_job_id_series_instance_uid"
        ),
    )
    op.create_table(
        "dicom_instances",
        _primary("dicom_instances"),
        _key("dicom_instances", "job_id", "jobs"),
        _key("dicom_instances", "series_id", "dicom_series"),
        _key("dicom_instances", "item_id", "items"),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("sop_instance_uid", sa.String(64), nullable=False),
        sa.Column("sop_class_uid", sa.String(64), nullable=False),
        sa.Column("transfer_syntax_uid", sa.String(64), nullable=True),
        sa.Column("number_of_frames", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("columns", sa.Integer(), nullable=True),
        sa.Column("instance_number", sa.Integer(), nullable=True),
        sa.Column("acquisition_number", sa.Integer(), nullable=True),
        sa.Column("image_type", JSON_DOCUMENT, nullable=False),
        sa.Column("image_position", JSON_DOCUMENT, nullable=True),
        sa.Column("image_orientation", JSON_DOCUMENT, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dicom_instances"),
    )
    op.create_index("ix_dicom_instances_job_sop", "dicom_instances", ["job_id", "sop_instance_uid"])
    op.create_index("ix_dicom_instances_series_id", "dicom_instances", ["series_id"])


def downgrade() -> None:
    op.drop_index("ix_dicom_instances_series_id", "dicom_instances")
    op.drop_index("ix_dicom_instances_job_sop", "dicom_instances")
    for table in ("dicom_instances", "dicom_series", "dicom_studies", "dicom_patients"):
        op.drop_table(table)
    with op.batch_alter_table("item_sources") as batch:
        batch.drop_column("role")
