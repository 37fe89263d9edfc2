"""families, de-duplication modes, custodians per path and e-mail messages

Items become families: a message found in a mailbox or an attachment found in
a message is an item of its own, with its parent, its family's top-level item,
its level and its place among its siblings. Top-level documents are
de-duplicated by a key (the content hash, or the normalised e-mail hash, with
the custodian or the path added by the job's mode) instead of by content hash
alone, so one attachment may appear in many families. Every path records the
custodian it came from and the container it was found in. E-mail headers,
identity hashes and thread positions get a table of their own.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("dedup_mode", sa.String(16), nullable=False, server_default="global")
        )
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("family_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("level", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("ordinal", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("dedup_key", sa.String(200), nullable=True))
        batch.create_foreign_key(
            op.f("fk_items_parent_id_items"), "items", ["parent_id"], ["id"], ondelete="RESTRICT"
        )
        batch.create_index(op.f("ix_items_family_id"), ["family_id"], unique=False)
    # Every item so far was a submitted file de-duplicated by content.
    op.execute("UPDATE items SET dedup_key = 'sha256:' || sha256, family_id = id")
    with op.batch_alter_table("items") as batch:
        batch.drop_constraint(op.f("uq_items_job_id_sha256"), type_="unique")
        batch.create_unique_constraint(op.f("uq_items_job_id_dedup_key"), ["job_id", "dedup_key"])
    with op.batch_alter_table("item_sources") as batch:
        batch.add_column(sa.Column("custodian", sa.String(200), nullable=True))
        batch.add_column(sa.Column("container_item_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_item_sources_container_item_id_items"), "items", ["container_item_id"], ["id"]
        )
    op.execute(
        "UPDATE item_sources SET custodian = "
        "(SELECT items.custodian FROM items WHERE items.id = item_sources.item_id)"
    )
    op.create_table(
        "email_messages",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.Column("in_reply_to", sa.Text(), nullable=True),
        sa.Column("references", JSON_DOCUMENT, nullable=False),
        sa.Column("thread_index", sa.Text(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("sender", sa.Text(), nullable=True),
        sa.Column("sent_at", UTC_DATETIME, nullable=True),
        sa.Column("email_hash", sa.String(64), nullable=False),
        sa.Column("message_id_hash", sa.String(32), nullable=True),
        sa.Column("body_digest", sa.String(32), nullable=False),
        sa.Column("body_letters", sa.Text(), nullable=False),
        sa.Column("attachment_hashes", JSON_DOCUMENT, nullable=False),
        sa.Column("thread_id", sa.String(64), nullable=True),
        sa.Column("thread_position", sa.Integer(), nullable=True),
        sa.Column("inclusive", sa.Boolean(), nullable=True),
        sa.Column("included_in_item_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name=op.f("fk_email_messages_item_id_items"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_email_messages_job_id_jobs"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_email_messages")),
    )
    with op.batch_alter_table("email_messages") as batch:
        batch.create_index(op.f("ix_email_messages_job_id"), ["job_id"], unique=False)
        batch.create_index(op.f("ix_email_messages_email_hash"), ["email_hash"], unique=False)
        batch.create_index(op.f("ix_email_messages_thread_id"), ["thread_id"], unique=False)


def downgrade() -> None:
    op.drop_table("email_messages")
    with op.batch_alter_table("item_sources") as batch:
        batch.drop_constraint(op.f("fk_item_sources_container_item_id_items"), type_="foreignkey")
        batch.drop_column("container_item_id")
        batch.drop_column("custodian")
    # Children share content hashes with other items: only submitted files go back.
    with op.batch_alter_table("items") as batch:
        batch.drop_constraint(op.f("uq_items_job_id_dedup_key"), type_="unique")
        batch.drop_index(op.f("ix_items_family_id"))
        batch.drop_constraint(op.f("fk_items_parent_id_items"), type_="foreignkey")
        batch.drop_column("dedup_key")
        batch.drop_column("ordinal")
        batch.drop_column("level")
        batch.drop_column("family_id")
        batch.drop_column("parent_id")
        batch.create_unique_constraint(op.f("uq_items_job_id_sha256"), ["job_id", "sha256"])
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("dedup_mode")
