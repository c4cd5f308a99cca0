"""lifecycle policy: policies and their history, gate exceptions, pull verdicts, tag metadata

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _name(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length=length).with_variant(
        sa.String(length=length, collation="C"), "postgresql"
    )


def upgrade() -> None:
    op.add_column("tags", sa.Column("pushed_by", sa.Text(), nullable=True))
    op.add_column("tags", sa.Column("channel", sa.String(length=64), nullable=True))
    op.add_column("tags", sa.Column("deprecation", sa.Text(), nullable=True))
    op.create_table(
        "policies",
        sa.Column("namespace", _name(255), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("namespace"),
    )
    op.create_table(
        "policy_revisions",
        sa.Column("namespace", _name(255), nullable=False),
        sa.Column("revision", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("namespace", "revision"),
    )
    op.create_table(
        "gate_exceptions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("namespace", _name(255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("repository_pattern", sa.String(length=255), nullable=False),
        sa.Column("digest", sa.String(length=140), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("removed_at", sa.Float(), nullable=True),
        sa.Column("removed_by", sa.Text(), nullable=True),
        sa.Column("expiry_recorded", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_gate_exceptions_namespace", "gate_exceptions", ["namespace", "id"])
    op.create_table(
        "pull_verdicts",
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=140), nullable=False),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("rule", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("valid_until", sa.Float(), nullable=True),
        sa.Column("computed_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["repository_id"], ["repositories.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("repository_id", "digest"),
    )
    op.create_index("ix_pull_verdicts_digest", "pull_verdicts", ["digest"])
    epoch = op.create_table(
        "gate_epoch",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(epoch, [{"id": 1, "n": 0}])


def downgrade() -> None:
    op.drop_table("gate_epoch")
    op.drop_index("ix_pull_verdicts_digest", table_name="pull_verdicts")
    op.drop_table("pull_verdicts")
    op.drop_index("ix_gate_exceptions_namespace", table_name="gate_exceptions")
    op.drop_table("gate_exceptions")
    op.drop_table("policy_revisions")
    op.drop_table("policies")
    op.drop_column("tags", "deprecation")
    op.drop_column("tags", "channel")
    op.drop_column("tags", "pushed_by")
