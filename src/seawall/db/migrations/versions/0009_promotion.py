"""stages and promotion: trusted keys, promotions and their votes, stage flags, who pushed a link

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _name(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length=length).with_variant(
        sa.String(length=length, collation="C"), "postgresql"
    )


def upgrade() -> None:
    op.add_column("repository_manifests", sa.Column("pushed_by", sa.Text(), nullable=True))
    op.create_table(
        "trusted_keys",
        sa.Column("namespace", _name(255), nullable=False),
        sa.Column("name", _name(64), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=80), nullable=False),
        sa.Column("added_by", sa.Text(), nullable=False),
        sa.Column("added_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.Column("revoked_by", sa.Text(), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("namespace", "name"),
    )
    op.create_table(
        "promotions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source_repository", sa.String(length=255), nullable=False),
        sa.Column("target_repository", sa.String(length=255), nullable=False),
        sa.Column("digest", sa.String(length=140), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("decided_at", sa.Float(), nullable=True),
        sa.Column("policy_revision", sa.Integer(), nullable=False),
        sa.Column("gates", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("receipt_digest", sa.String(length=140), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_promotions_digest", "promotions", ["digest"])
    op.create_index("ix_promotions_state", "promotions", ["state", "expires_at"])
    op.create_table(
        "promotion_votes",
        sa.Column("promotion_id", sa.Integer(), nullable=False),
        sa.Column("voter", sa.String(length=255), nullable=False),
        sa.Column("vote", sa.String(length=8), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["promotion_id"], ["promotions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("promotion_id", "voter"),
    )
    op.create_table(
        "stage_flags",
        sa.Column("repository", sa.String(length=255), nullable=False),
        sa.Column("digest", sa.String(length=140), nullable=False),
        sa.Column("flagged_at", sa.Float(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("gates", sa.Text(), nullable=False),
        sa.Column("cleared_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("repository", "digest"),
    )


def downgrade() -> None:
    op.drop_table("stage_flags")
    op.drop_table("promotion_votes")
    op.drop_index("ix_promotions_state", table_name="promotions")
    op.drop_index("ix_promotions_digest", table_name="promotions")
    op.drop_table("promotions")
    op.drop_table("trusted_keys")
    op.drop_column("repository_manifests", "pushed_by")
