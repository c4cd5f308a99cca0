"""several nodes: signing keys in the database, node heartbeats

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The key files of earlier releases (DATA_DIR/keys, DATA_DIR/receipt-keys) are imported by
    # the first process of this release that loads the keys (services/keys.py), not here: a
    # migration may run against a database from a host that does not hold the data directory.
    op.create_table(
        "signing_keys",
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("algorithm", sa.String(length=8), nullable=False),
        sa.Column("public_pem", sa.Text(), nullable=False),
        sa.Column("private_pem", sa.Text(), nullable=False),
        sa.Column("encrypted", sa.Boolean(), nullable=False),
        sa.Column("signs_from", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("retired_at", sa.Float(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("purpose", "kid"),
    )
    op.create_table(
        "nodes",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("process", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("seen_at", sa.Float(), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("name", "process"),
    )
    op.create_index("ix_nodes_seen", "nodes", ["seen_at"])


def downgrade() -> None:
    op.drop_index("ix_nodes_seen", table_name="nodes")
    op.drop_table("nodes")
    op.drop_table("signing_keys")
