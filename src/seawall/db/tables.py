"""The schema, as SQLAlchemy Core tables. Alembic migrations create it; the request path uses
plain SQL through the raw drivers (see store.py)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()


def _name(length: int) -> sa.types.TypeEngine[str]:
    # Byte-order comparison on PostgreSQL too, so listings sort the same on both databases.
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


DIGEST = sa.String(140)  # "sha512:" + 128 hex


def _repository_id(primary_key: bool = True) -> sa.Column[int]:
    return sa.Column(
        "repository_id",
        sa.Integer,
        sa.ForeignKey("repositories.id", ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=False,
    )


repositories = sa.Table(
    "repositories",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", _name(255), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    # Who owns it and what it is for (issue 14): set by `seawall repo set` (sticky) or taken from
    # the annotations of the images pushed to it. `owner` is a principal, "user:x" or "team:y".
    sa.Column("owner", sa.Text),
    sa.Column("purpose", sa.Text),
    sa.Column("source_url", sa.Text),  # org.opencontainers.image.source of the last push
    sa.Column("described_by", sa.Text),  # "set:<account>" or "annotations" (the last writer)
    sa.Column("described_at", sa.Float),
)

blobs = sa.Table(
    "blobs",
    metadata,
    sa.Column("digest", DIGEST, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

repository_blobs = sa.Table(
    "repository_blobs",
    metadata,
    _repository_id(),
    sa.Column("digest", DIGEST, sa.ForeignKey("blobs.digest"), primary_key=True),
    # Linked, or linked again (an upload or mount renews it): the collector's grace counts
    # from here.
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_repository_blobs_digest", "digest"),
)

manifests = sa.Table(
    "manifests",
    metadata,
    sa.Column("digest", DIGEST, primary_key=True),
    sa.Column("media_type", sa.String(255), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("artifact_type", sa.String(255)),
    sa.Column("subject_digest", DIGEST),
    sa.Column("annotations", sa.Text),  # JSON object, for the referrers API
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_manifests_subject", "subject_digest"),
)

manifest_references = sa.Table(
    "manifest_references",
    metadata,
    sa.Column("parent_digest", DIGEST, sa.ForeignKey("manifests.digest"), primary_key=True),
    sa.Column("child_digest", DIGEST, primary_key=True),
    sa.Column("is_manifest", sa.Boolean, nullable=False, primary_key=True),
    sa.Index("ix_manifest_references_child", "child_digest"),
)

repository_manifests = sa.Table(
    "repository_manifests",
    metadata,
    _repository_id(),
    sa.Column("digest", DIGEST, sa.ForeignKey("manifests.digest"), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),  # linked here: a stage's soak starts
    # Who pushed it first (for a promoted image: who pushed it into the first stage), so a
    # promotion's approvers are never its author. NULL: linked before 0009.
    sa.Column("pushed_by", sa.Text),
    sa.Index("ix_repository_manifests_digest", "digest"),
)

tags = sa.Table(
    "tags",
    metadata,
    _repository_id(),
    sa.Column("name", _name(128), primary_key=True),
    sa.Column("digest", DIGEST, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    # Lifecycle metadata of the version (issue 12): it stays when the tag moves and goes with it.
    sa.Column("pushed_by", sa.Text),  # the account whose push last pointed it (NULL: before 0008)
    sa.Column("channel", sa.String(64)),  # stable, legacy, testing or the operator's own label
    sa.Column("deprecation", sa.Text),  # JSON: tag, message, sunset, replacement, by, at
    sa.Index("ix_tags_digest", "repository_id", "digest"),
)

uploads = sa.Table(
    "uploads",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    _repository_id(primary_key=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    # A request writing to the session holds it until lease_until; others get 416 meanwhile.
    sa.Column("lease_until", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("ix_uploads_updated", "updated_at"),
)

# -- identities and access (issue 3) ----------------------------------------------------------

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", _name(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("site_admin", sa.Boolean, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

teams = sa.Table(
    "teams",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", _name(64), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
)

team_members = sa.Table(
    "team_members",
    metadata,
    sa.Column(
        "team_id", sa.Integer, sa.ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    ),
)

robots = sa.Table(
    "robots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", _name(128), nullable=False, unique=True),
    sa.Column("secret_hash", sa.String(80), nullable=False),
    sa.Column("scopes", sa.Text, nullable=False),  # JSON: [{"pattern": ..., "actions": [...]}]
    sa.Column("expires_at", sa.Float),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

namespaces = sa.Table(
    "namespaces",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", _name(255), nullable=False, unique=True),
    sa.Column("public", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    # Attach each image's SBOM to it as an OCI referrer (off: the SBOM is served by the API only).
    sa.Column("sbom_referrer", sa.Boolean, nullable=False, server_default=sa.false()),
)

namespace_members = sa.Table(
    "namespace_members",
    metadata,
    sa.Column(
        "namespace_id",
        sa.Integer,
        sa.ForeignKey("namespaces.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("principal", sa.String(80), primary_key=True),  # "user:<name>" or "team:<name>"
    sa.Column("role", sa.Integer, nullable=False),
)

repository_grants = sa.Table(
    "repository_grants",
    metadata,
    sa.Column(
        "namespace_id",
        sa.Integer,
        sa.ForeignKey("namespaces.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("pattern", sa.String(255), primary_key=True),
    sa.Column("principal", sa.String(80), primary_key=True),
    sa.Column("actions", sa.String(64), nullable=False),  # comma-separated
    sa.Column("created_at", sa.Float, nullable=False),
)

login_failures = sa.Table(
    "login_failures",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),  # "account:<name>" or "address:<ip>"
    sa.Column("window_start", sa.Float, nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
)


def _event_columns() -> list[sa.Column[Any]]:
    """An audit event's columns (domain/audit.py `COLUMNS`), fresh for each table."""
    return [
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("address", sa.Text),
        sa.Column("user_agent", sa.Text),
        sa.Column("request_id", sa.Text),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("namespace", sa.Text),
        sa.Column("repository", sa.Text),
        sa.Column("reference", sa.Text),
        sa.Column("digest", sa.Text),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("detail", sa.Text),
    ]


# The audit log (see domain/audit.py). `seq` comes from audit_chain, whose single row is the
# chain's head: updating it serializes writers and carries the previous hash to the next row.
audit_events = sa.Table(
    "audit_events",
    metadata,
    # INTEGER on SQLite makes `seq` the rowid itself: one B-tree less to update per row.
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    *_event_columns(),
    sa.Column("hash", sa.String(64), nullable=False),
    # Every filter walks newest-first along one of these, so a filtered page reads only the
    # rows it returns (plus those other filters drop).
    sa.Index("ix_audit_events_repository", "repository", "seq"),
    sa.Index("ix_audit_events_namespace", "namespace", "seq"),
    sa.Index("ix_audit_events_actor", "actor", "seq"),
    sa.Index("ix_audit_events_action", "action", "seq"),
    sa.Index("ix_audit_events_at", "at"),
)

audit_chain = sa.Table(
    "audit_chain",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),  # always 1
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("archive_lease_until", sa.Float, nullable=False),
)

# Audit rows committed with the write they record but not chained yet: a write inserts here
# without waiting on the chain head, and a writer task chains them in batches
# (services/audit.py), so the table is normally empty within milliseconds.
audit_pending = sa.Table(
    "audit_pending",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    *_event_columns(),
)

audit_archives = sa.Table(
    "audit_archives",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("first_seq", sa.BigInteger, nullable=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False, unique=True),
    sa.Column("previous_hash", sa.String(64), nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("file_sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# -- vulnerability data (OSV, imported offline; see db/vulns.py) ------------------------------

# One row per OSV record, its JSON kept as imported; a re-import replaces a row whose
# `modified` differs. Withdrawn records stay (so re-imports see them unchanged) but never match.
vuln_records = sa.Table(
    "vuln_records",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("modified", sa.Text, nullable=False),
    sa.Column("withdrawn", sa.Text),
    sa.Column("record", sa.Text, nullable=False),
)

# Which (ecosystem key, normalized package name) each record affects, to load only the records
# for the ecosystems an inventory has.
vuln_packages = sa.Table(
    "vuln_packages",
    metadata,
    sa.Column(
        "record_id",
        sa.Text,
        sa.ForeignKey("vuln_records.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("ecosystem", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Index("ix_vuln_packages_ecosystem_name", "ecosystem", "name"),
)

# The single row (id 1) describing the imported data: `version` changes whenever an import
# changes a record, and scan reports name the version they were matched against.
vulndb_state = sa.Table(
    "vulndb_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("imported_at", sa.Float, nullable=False),
    sa.Column("records", sa.Integer, nullable=False),
)

# -- scanning (issue 5) -----------------------------------------------------------------------

# One row per (repository, manifest) ever queued: the job's state, and the SBOM referrer pushed
# for it. Pushing the same manifest again leaves a finished row alone; `scan run` requeues it.
scan_jobs = sa.Table(
    "scan_jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("repository", _name(255), nullable=False),
    sa.Column("digest", DIGEST, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # queued | running | done | failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("run_after", sa.Float, nullable=False),
    sa.Column("lease_until", sa.Float, nullable=False),
    sa.Column("worker", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("sbom_digest", DIGEST),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("repository", "digest", name="uq_scan_jobs_repository_digest"),
    sa.Index("ix_scan_jobs_state", "state", "run_after"),
)

# What one layer holds for the analyzers, keyed by its digest, so a layer shared by many images
# is read once. `fingerprint` names the analyzer version and rules that produced it.
layer_analyses = sa.Table(
    "layer_analyses",
    metadata,
    sa.Column("digest", DIGEST, primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("bytes_read", sa.BigInteger, nullable=False),
    sa.Column("analyzed_at", sa.Float, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),  # zlib-compressed JSON
)

# The report of one image manifest (content-addressed, so shared by every repository holding
# it). The inventory is kept so that a vulnerability-data import re-matches without layers.
scan_reports = sa.Table(
    "scan_reports",
    metadata,
    sa.Column("digest", DIGEST, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),  # complete | failed
    sa.Column("scanned_at", sa.Float, nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("vulndb_version", sa.Text),
    sa.Column("distro", sa.Text),
    sa.Column("packages", sa.Integer, nullable=False),
    sa.Column("critical", sa.Integer, nullable=False),
    sa.Column("high", sa.Integer, nullable=False),
    sa.Column("medium", sa.Integer, nullable=False),
    sa.Column("low", sa.Integer, nullable=False),
    sa.Column("unknown", sa.Integer, nullable=False),
    sa.Column("secrets", sa.Integer, nullable=False),
    sa.Column("malware", sa.Integer, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("inventory", sa.LargeBinary),  # zlib-compressed JSON
    sa.Column("vulnerabilities", sa.LargeBinary),  # zlib-compressed JSON, rewritten by re-matches
    sa.Column("findings", sa.LargeBinary),  # zlib-compressed JSON: secrets, malware, skipped
    sa.Column("sbom", sa.LargeBinary),  # zlib-compressed CycloneDX JSON
)

# -- lifecycle policy (issue 12) -------------------------------------------------------------

# The policy document in force per namespace; namespace "" is the site-wide default.
policies = sa.Table(
    "policies",
    metadata,
    sa.Column("namespace", _name(255), primary_key=True),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("updated_by", sa.Text, nullable=False),
)

# Every version a policy has had, for `seawall policy history`.
policy_revisions = sa.Table(
    "policy_revisions",
    metadata,
    sa.Column("namespace", _name(255), primary_key=True),
    sa.Column("revision", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
)

# Owned, expiring exceptions to the pull gate. Removed and expired ones stay, as a record.
gate_exceptions = sa.Table(
    "gate_exceptions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("namespace", _name(255), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # vulnerability | secret | unscanned
    sa.Column("target", sa.Text, nullable=False),  # advisory id or secret rule; "" for unscanned
    sa.Column("repository_pattern", sa.String(255), nullable=False),
    sa.Column("digest", DIGEST),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("removed_at", sa.Float),
    sa.Column("removed_by", sa.Text),
    # The sweep wrote its `exception:expired` audit row.
    sa.Column("expiry_recorded", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_gate_exceptions_namespace", "namespace", "id"),
)

# The pull gate's verdict per (repository, manifest), computed when its inputs change (a scan, a
# re-match, a policy or an exception) or on the first pull after, so that a pull reads it with
# the manifest in one query. Rows are dropped when an input changes; `gate_epoch` counts those
# changes, so a verdict worked out from inputs read before one is never stored after it.
pull_verdicts = sa.Table(
    "pull_verdicts",
    metadata,
    _repository_id(),
    sa.Column("digest", DIGEST, primary_key=True),
    sa.Column("outcome", sa.String(8), nullable=False),  # allow | warn | block
    sa.Column("rule", sa.Text),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("valid_until", sa.Float),  # judge again from then on (an exception expires)
    sa.Column("computed_at", sa.Float, nullable=False),
    sa.Index("ix_pull_verdicts_digest", "digest"),
)

gate_epoch = sa.Table(
    "gate_epoch",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),  # always 1
    sa.Column("n", sa.BigInteger, nullable=False),
)

# -- stages and promotion (issue 13) -----------------------------------------------------------

# Public keys signatures are verified with, per namespace ("" = site-wide). A revoked key stays
# (its name is never reused), so a gate that named it keeps refusing rather than trusting a new
# key registered under the old name.
trusted_keys = sa.Table(
    "trusted_keys",
    metadata,
    sa.Column("namespace", _name(255), primary_key=True),
    sa.Column("name", _name(64), primary_key=True),
    sa.Column("algorithm", sa.String(16), nullable=False),  # ecdsa-p256, ecdsa-p384, rsa, ed25519
    sa.Column("public_key", sa.Text, nullable=False),  # PEM, SubjectPublicKeyInfo
    sa.Column("fingerprint", sa.String(80), nullable=False),  # sha256 of the DER key, hex
    sa.Column("added_by", sa.Text, nullable=False),
    sa.Column("added_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float),
    sa.Column("revoked_by", sa.Text),
    sa.Column("revoke_reason", sa.Text),
)

# A promotion of one digest from a repository in one stage to one in the next: pending (waiting
# for approvals or gates), completed, rejected or expired. A promotion refused outright changes
# nothing and leaves only its audit row.
promotions = sa.Table(
    "promotions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source_repository", sa.String(255), nullable=False),
    sa.Column("target_repository", sa.String(255), nullable=False),
    sa.Column("digest", DIGEST, nullable=False),
    sa.Column("tags", sa.Text, nullable=False),  # JSON list
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("requested_by", sa.Text, nullable=False),
    sa.Column("requested_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("decided_at", sa.Float),
    sa.Column("policy_revision", sa.Integer, nullable=False),
    sa.Column("gates", sa.Text, nullable=False),  # JSON: the last evaluation, gate by gate
    sa.Column("reason", sa.Text),  # a rejection's, an expiry's
    sa.Column("receipt_digest", DIGEST),
    sa.Index("ix_promotions_digest", "digest"),
    sa.Index("ix_promotions_state", "state", "expires_at"),
)

# One approval or rejection per person and promotion.
promotion_votes = sa.Table(
    "promotion_votes",
    metadata,
    sa.Column(
        "promotion_id",
        sa.Integer,
        sa.ForeignKey("promotions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("voter", sa.String(255), primary_key=True),
    sa.Column("vote", sa.String(8), nullable=False),  # approve | reject
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("comment", sa.Text),
)

# A digest in a stage that no longer passes that stage's gates (new vulnerability data, a key
# revoked): flagged, never removed. `cleared_at` is set when it passes again.
stage_flags = sa.Table(
    "stage_flags",
    metadata,
    sa.Column("repository", sa.String(255), primary_key=True),
    sa.Column("digest", DIGEST, primary_key=True),
    sa.Column("flagged_at", sa.Float, nullable=False),
    sa.Column("cause", sa.Text, nullable=False),
    sa.Column("gates", sa.Text, nullable=False),  # JSON: the failing gates
    sa.Column("cleared_at", sa.Float),
)

# -- inventory (issue 14) ----------------------------------------------------------------------

# Pulls counted per repository, manifest, tag ("" for a pull by digest) and UTC day, written by
# the audit log's batches (never one write per pull); what inventory and retention read.
pull_counts = sa.Table(
    "pull_counts",
    metadata,
    _repository_id(),
    sa.Column("digest", DIGEST, primary_key=True),
    sa.Column("tag", _name(128), primary_key=True),
    sa.Column("day", sa.Integer, primary_key=True, autoincrement=False),  # days since 1970-01-01
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("last_at", sa.Float, nullable=False),
    sa.Index("ix_pull_counts_day", "day"),
)

# -- garbage collection, trash and schedules (issue 14) ----------------------------------------

# The garbage collector's review queue (services/gc.py): what may have lost its last reference,
# queued by the transaction that dropped the reference (or linked a blob that no manifest may
# ever reference), with the time it did. A pass reviews only what is queued and older than the
# grace period, so its cost grows with the candidates, not with the storage.
#   blob-link      (repository, blob)      does a manifest linked there still reference it?
#   manifest-link  (repository, manifest)  its link went (cascade to what it referenced), or it
#                                          is a referrer whose subject went, or a platform of an
#                                          index that went
#   blob           (0, blob)               does any repository still link it? (then the file)
#   manifest       (0, manifest)           does any repository still link it? (then its rows)
gc_reviews = sa.Table(
    "gc_reviews",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("repository_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("digest", DIGEST, primary_key=True),
    sa.Column("since", sa.Float, nullable=False),
    sa.Column("reason", sa.String(16)),
    sa.Index("ix_gc_reviews_due", "kind", "since"),
    sa.Index("ix_gc_reviews_digest", "digest"),
)

# Deleted tags, restorable until `expires_at` (`seawall tag restore`); the garbage collector
# keeps what a trashed tag points at until then.
tag_trash = sa.Table(
    "tag_trash",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "repository_id",
        sa.Integer,
        sa.ForeignKey("repositories.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", _name(128), nullable=False),
    sa.Column("digest", DIGEST, nullable=False),
    sa.Column("pushed_by", sa.Text),
    sa.Column("channel", sa.String(64)),
    sa.Column("deprecation", sa.Text),
    sa.Column("deleted_at", sa.Float, nullable=False),
    sa.Column("deleted_by", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),  # "api", "retention: <rule>", ...
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Index("ix_tag_trash_tag", "repository_id", "name"),
    sa.Index("ix_tag_trash_digest", "digest"),
    sa.Index("ix_tag_trash_expires", "expires_at"),
)

# Work that one process at a time runs on a schedule (a garbage collection pass, the inventory
# report, a namespace's retention): the lease that says who runs it now, and the last run.
schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("name", sa.String(300), primary_key=True),  # "gc", "inventory", "retention:<ns>"
    sa.Column("holder", sa.Text),
    sa.Column("lease_until", sa.Float, nullable=False),
    sa.Column("last_run_at", sa.Float),
    sa.Column("last_result", sa.Text),  # JSON summary of the last run
)

# Inventory reports written on schedule (or by `seawall inventory --save`), for `--since`.
inventory_reports = sa.Table(
    "inventory_reports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("generated_at", sa.Float, nullable=False),
    sa.Column("path", sa.Text, nullable=False),  # relative to the data directory, JSON file
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("findings", sa.Integer, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),  # JSON: counts per finding code
)


# -- the web console (issue 15) ------------------------------------------------------------------

# Signed-in browser sessions. The cookie holds a random token; only its SHA-256 is stored, so a
# copy of the database signs nobody in. Expiry is decided here (server-side), sign-out and
# disabling the account revoke.
console_sessions = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("account", sa.String(300), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float),
    sa.Column("address", sa.String(64)),
    sa.Index("ix_console_sessions_account", "account"),
    sa.Index("ix_console_sessions_expires", "expires_at"),
)


# -- several nodes (issue 17) --------------------------------------------------------------------

# The keys that sign bearer tokens (`purpose` "tokens") and promotion receipts ("receipts"), shared
# by every process and node. `signs_from` orders the keys that may sign (the greatest signs new
# tokens); NULL marks a key that only verifies (imported after keys already existed). A retired
# key neither signs nor verifies. `private_pem` is PKCS#8 PEM, encrypted with the setting
# `signing_key_passphrase` when `encrypted` (docs/access.md, "Keys").
signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("purpose", sa.String(16), primary_key=True),
    sa.Column("kid", sa.String(64), primary_key=True),  # RFC 7638 thumbprint of the public key
    sa.Column("algorithm", sa.String(8), nullable=False),  # ES256 or RS256
    sa.Column("public_pem", sa.Text, nullable=False),
    sa.Column("private_pem", sa.Text, nullable=False),
    sa.Column("encrypted", sa.Boolean, nullable=False),
    sa.Column("signs_from", sa.Float),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("retired_at", sa.Float),
    sa.Column("source", sa.Text, nullable=False),  # generated, rotated, imported:<file>
)

# Heartbeats: one row per server process of each node (`process`: its pid, or "start" while
# `seawall serve` prepares), refreshed while it runs and removed when it stops. On SQLite a
# `seawall serve` refuses to start while another node has a live row (SQLite is for one node).
nodes = sa.Table(
    "nodes",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("process", sa.String(32), primary_key=True),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("seen_at", sa.Float, nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Index("ix_nodes_seen", "seen_at"),
)
