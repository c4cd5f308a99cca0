"""scanning: jobs, the per-layer analysis cache and reports

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 17:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

DIGEST = sa.String(140)


def _name(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "scan_jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("repository", _name(255), nullable=False),
        sa.Column("digest", DIGEST, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", sa.Float(), nullable=False),
        sa.Column("lease_until", sa.Float(), nullable=False),
        sa.Column("worker", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("sbom_digest", DIGEST, nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repository", "digest", name="uq_scan_jobs_repository_digest"),
    )
    op.create_index("ix_scan_jobs_state", "scan_jobs", ["state", "run_after"])
    op.create_table(
        "layer_analyses",
        sa.Column("digest", DIGEST, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("bytes_read", sa.BigInteger(), nullable=False),
        sa.Column("analyzed_at", sa.Float(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    op.create_table(
        "scan_reports",
        sa.Column("digest", DIGEST, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("scanned_at", sa.Float(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("vulndb_version", sa.Text(), nullable=True),
        sa.Column("distro", sa.Text(), nullable=True),
        *(
            sa.Column(name, sa.Integer(), nullable=False)
            for name in (
                "packages",
                "critical",
                "high",
                "medium",
                "low",
                "unknown",
                "secrets",
                "malware",
            )
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("inventory", sa.LargeBinary(), nullable=True),
        sa.Column("vulnerabilities", sa.LargeBinary(), nullable=True),
        sa.Column("findings", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("digest"),
    )


def downgrade() -> None:
    op.drop_table("scan_reports")
    op.drop_table("layer_analyses")
    op.drop_index("ix_scan_jobs_state", table_name="scan_jobs")
    op.drop_table("scan_jobs")
