"""garbage collection, trash and schedules: the review queue, trashed tags, leases, reports

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _name(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length=length).with_variant(
        sa.String(length=length, collation="C"), "postgresql"
    )


def upgrade() -> None:
    op.create_table(
        "gc_reviews",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("repository_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("digest", sa.String(length=140), nullable=False),
        sa.Column("since", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("kind", "repository_id", "digest"),
    )
    op.create_index("ix_gc_reviews_due", "gc_reviews", ["kind", "since"])
    op.create_index("ix_gc_reviews_digest", "gc_reviews", ["digest"])
    # The collector asks "does any repository still link this?"
    op.create_index("ix_repository_blobs_digest", "repository_blobs", ["digest"])
    op.create_index("ix_repository_manifests_digest", "repository_manifests", ["digest"])
    op.create_table(
        "tag_trash",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("repository_id", sa.Integer(), nullable=False),
        sa.Column("name", _name(128), nullable=False),
        sa.Column("digest", sa.String(length=140), nullable=False),
        sa.Column("pushed_by", sa.Text(), nullable=True),
        sa.Column("channel", sa.String(length=64), nullable=True),
        sa.Column("deprecation", sa.Text(), nullable=True),
        sa.Column("deleted_at", sa.Float(), nullable=False),
        sa.Column("deleted_by", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["repository_id"], ["repositories.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_tag_trash_tag", "tag_trash", ["repository_id", "name"])
    op.create_index("ix_tag_trash_digest", "tag_trash", ["digest"])
    op.create_index("ix_tag_trash_expires", "tag_trash", ["expires_at"])
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("holder", sa.Text(), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=False),
        sa.Column("last_run_at", sa.Float(), nullable=True),
        sa.Column("last_result", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "inventory_reports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("generated_at", sa.Float(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("findings", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    _queue_what_earlier_releases_left()


def _queue_what_earlier_releases_left() -> None:
    """Earlier releases never removed anything: queue, once, what is unreferenced now (blobs
    a repository links that no manifest there references, manifests and blobs no repository
    links), so the first passes reclaim it. Later, the transactions that drop references queue
    their candidates themselves."""
    op.execute(
        "INSERT INTO gc_reviews (kind, repository_id, digest, since, reason)"
        " SELECT 'blob-link', rb.repository_id, rb.digest, rb.created_at, 'upgrade'"
        " FROM repository_blobs rb WHERE NOT EXISTS (SELECT 1 FROM repository_manifests rm"
        " JOIN manifest_references mr ON mr.parent_digest = rm.digest"
        " WHERE rm.repository_id = rb.repository_id AND mr.child_digest = rb.digest)"
    )
    op.execute(
        "INSERT INTO gc_reviews (kind, repository_id, digest, since, reason)"
        " SELECT 'manifest', 0, m.digest, m.created_at, 'upgrade' FROM manifests m"
        " WHERE NOT EXISTS (SELECT 1 FROM repository_manifests rm WHERE rm.digest = m.digest)"
    )
    op.execute(
        "INSERT INTO gc_reviews (kind, repository_id, digest, since, reason)"
        " SELECT 'blob', 0, b.digest, b.created_at, 'upgrade' FROM blobs b"
        " WHERE NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)"
    )


def downgrade() -> None:
    op.drop_table("inventory_reports")
    op.drop_table("schedules")
    op.drop_index("ix_tag_trash_expires", table_name="tag_trash")
    op.drop_index("ix_tag_trash_digest", table_name="tag_trash")
    op.drop_index("ix_tag_trash_tag", table_name="tag_trash")
    op.drop_table("tag_trash")
    op.drop_index("ix_repository_manifests_digest", table_name="repository_manifests")
    op.drop_index("ix_repository_blobs_digest", table_name="repository_blobs")
    op.drop_index("ix_gc_reviews_digest", table_name="gc_reviews")
    op.drop_index("ix_gc_reviews_due", table_name="gc_reviews")
    op.drop_table("gc_reviews")
