"""inventory: repository owner and purpose, pull counts per day

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 23:00:00
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
    _count_logged_pulls()


# Frozen here, as a migration must be, from seawall.domain.pulls as this release has it.
_DAY = 86_400
_KEEP_DAYS = 35


def _count_logged_pulls() -> None:
    """Count the pulls the audit log already holds, as the release counts each new batch: per
    repository, digest, tag ("" for a pull by digest) and UTC day, with the last one's time.
    Days more than `_KEEP_DAYS` before the newest pull are left out (the server prunes them
    anyway), except the newest day of each manifest and tag, which holds its last pull time."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT r.id, e.digest, e.reference, COUNT(*), MAX(e.at) FROM audit_events e"
            " JOIN repositories r ON r.name = e.repository"
            " WHERE e.action = 'manifest:pulled' AND e.outcome = 'allowed'"
            " AND e.digest IS NOT NULL AND e.reference IS NOT NULL"
            " GROUP BY r.id, e.digest, e.reference, substr(e.at, 1, 10)"
        )
    ).all()
    counted: dict[tuple[int, str, str, int], tuple[int, float]] = {}
    for repository_id, digest, reference, count, last in rows:
        last_at = datetime.fromisoformat(str(last)).timestamp()
        tag = "" if ":" in reference else str(reference)  # a digest has a colon, a tag none
        key = (int(repository_id), str(digest), tag, int(last_at // _DAY))
        before_count, before_at = counted.get(key, (0, 0.0))
        counted[key] = (before_count + int(count), max(before_at, last_at))
    if not counted:
        return
    newest: dict[tuple[int, str, str], int] = {}
    for repository_id, digest, tag, day in counted:
        newest[repository_id, digest, tag] = max(day, newest.get((repository_id, digest, tag), day))
    first = max(newest.values()) - _KEEP_DAYS + 1
    records: list[dict[str, Any]] = [
        {
            "repository_id": repository_id,
            "digest": digest,
            "tag": tag,
            "day": day,
            "count": count,
            "last_at": last_at,
        }
        for (repository_id, digest, tag, day), (count, last_at) in sorted(counted.items())
        if day >= first or day == newest[repository_id, digest, tag]
    ]
    pull_counts = sa.table(
        "pull_counts",
        sa.column("repository_id", sa.Integer()),
        sa.column("digest", sa.String()),
        sa.column("tag", sa.String()),
        sa.column("day", sa.Integer()),
        sa.column("count", sa.BigInteger()),
        sa.column("last_at", sa.Float()),
    )
    op.bulk_insert(pull_counts, records)


def downgrade() -> None:
    op.drop_index("ix_pull_counts_day", table_name="pull_counts")
    op.drop_table("pull_counts")
    for column in ("described_at", "described_by", "source_url", "purpose", "owner"):
        op.drop_column("repositories", column)
