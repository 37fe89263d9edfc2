"""grounding verdicts beside review results

Review tasks answer with quotes from cited pages; each quote is checked
against the extracted text of its page after the answer validates, and the
verdict (quotes, verified, unverified, one check per quote) is stored beside
the answer, never in it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    # A plain ADD COLUMN: SQLite adds it in place, so no table is rebuilt.
    op.add_column("results", sa.Column("grounding", JSON_DOCUMENT, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("results") as batch:
        batch.drop_column("grounding")
