"""inventory: repository owner and purpose, pull counts per day

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _name(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length=length).with_variant(
        sa.String(length=length, collation="C"), "postgresql"
    )


def upgrade() -> None:
    op.add_column("repositories", sa.Column("owner", sa.Text(), nullable=True))
    op.add_column("repositories", sa.Column("purpose", sa.Text(), nullable=True))
    op.add_column("repositories", sa.Column("source_url", sa.Text(), nullable=True))
    op.add_column("repositories", sa.Column("described_by", sa.Text(), nullable=True))
    op.add_column("repositories", sa.Column("described_at", sa.Float(), nullable=True))
    op.create_table(
        "pull_counts",
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=140), nullable=False),
        sa.Column("tag", _name(128), nullable=False),
        sa.Column("day", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("last_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["repository_id"], ["repositories.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("repository_id", "digest", "tag", "day"),
    )
    op.create_index("ix_pull_counts_day", "pull_counts", ["day"])


def downgrade() -> None:
    op.drop_index("ix_pull_counts_day", table_name="pull_counts")
    op.drop_table("pull_counts")
    for column in ("described_at", "described_by", "source_url", "purpose", "owner"):
        op.drop_column("repositories", column)
