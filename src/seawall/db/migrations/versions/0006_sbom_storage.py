"""SBOMs stored with reports; attaching them as referrers becomes a namespace's choice

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scan_reports") as batch:
        batch.add_column(sa.Column("sbom", sa.LargeBinary(), nullable=True))
    # Off for every namespace, existing ones included: a registry does not add manifests to a
    # user's repository unasked. SBOM referrers pushed before stay where they are.
    with op.batch_alter_table("namespaces") as batch:
        batch.add_column(
            sa.Column("sbom_referrer", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("namespaces") as batch:
        batch.drop_column("sbom_referrer")
    with op.batch_alter_table("scan_reports") as batch:
        batch.drop_column("sbom")
