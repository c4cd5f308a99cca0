"""vulnerability data: OSV records, their packages, the data version

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vuln_records",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("modified", sa.Text(), nullable=False),
        sa.Column("withdrawn", sa.Text(), nullable=True),
        sa.Column("record", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "vuln_packages",
        sa.Column("record_id", sa.Text(), nullable=False),
        sa.Column("ecosystem", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["vuln_records.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("record_id", "ecosystem", "name"),
    )
    op.create_index("ix_vuln_packages_ecosystem_name", "vuln_packages", ["ecosystem", "name"])
    op.create_table(
        "vulndb_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("imported_at", sa.Float(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("vulndb_state")
    op.drop_index("ix_vuln_packages_ecosystem_name", table_name="vuln_packages")
    op.drop_table("vuln_packages")
    op.drop_table("vuln_records")
