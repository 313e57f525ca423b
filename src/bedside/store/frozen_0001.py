"""The store schema exactly as bedside 0.1 shipped it, frozen for migration ``0001_initial``.

A copy in SQLAlchemy Core with its own ``MetaData`` (never ``schema.metadata``): today's schema
grows through later named migrations, and a 0.1 workspace must be upgraded by exactly those
steps. Never edit this file; add a migration. The types are generic (JSON, Boolean, String...)
so the same DDL runs on SQLite and PostgreSQL. ``schema_migrations`` itself is created by
``migrations.migrate`` before any step runs.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# Key/value settings: workspace policy, owner token hash, publish flag.
settings = Table(
    "settings",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("value", JSON, nullable=False),
)

corpus_versions = Table(
    "corpus_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("hash", String(64), nullable=False, unique=True),
    Column("parent_id", Integer, ForeignKey("corpus_versions.id"), nullable=True),
    Column("created_at", String(40), nullable=False),
    Column("path", Text, nullable=False),  # relative to the workspace root
    Column("n_train", Integer, nullable=False),
    Column("n_holdout", Integer, nullable=False),
    Column("classes", JSON, nullable=False),  # [{"id", "name", "description"}]
    Column("split", JSON, nullable=False),  # how the split was made, its hash, seed
    Column("source", JSON, nullable=False),  # file names, columns, sizes (no content)
    Column("report", JSON, nullable=False),  # intake validation report (aggregate)
    Column("active", Boolean, nullable=False, default=False),
)

contributors = Table(
    "contributors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("token_salt", String(64), nullable=False),
    Column("token_hash", String(128), nullable=False),
    Column("token_prefix", String(16), nullable=False),  # public lookup key for a token
    Column("max_submissions", Integer, nullable=False),
    Column("budget_pflops", Float, nullable=False),
    Column("used_pflops", Float, nullable=False, default=0.0),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("created_at", String(40), nullable=False),
    Column("meta", JSON, nullable=False, default=dict),
)

submissions = Table(
    "submissions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("contributor_id", Integer, ForeignKey("contributors.id"), nullable=False),
    Column("bundle_hash", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(40), nullable=False),
    # accepted | running | done | failed | cancelled
    Column("status", String(40), nullable=False),
    Column("counted", Boolean, nullable=False, default=True),
    Column("corpus_version_id", Integer, ForeignKey("corpus_versions.id"), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("manifest", JSON, nullable=False),
    Column("estimate", JSON, nullable=False),  # pre-flight PFLOPs per phase
    Column("meta", JSON, nullable=False, default=dict),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("submission_id", Integer, ForeignKey("submissions.id"), nullable=True),
    Column("corpus_version_id", Integer, ForeignKey("corpus_versions.id"), nullable=False),
    Column("kind", String(40), nullable=False),  # phase1 | phase2 | baseline
    # queued | running | done | failed | cancelled
    Column("state", String(40), nullable=False),
    Column("depends_on", Integer, ForeignKey("jobs.id"), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False, default=3),
    Column("lease_owner", String(200), nullable=True),
    Column("lease_expires", Float, nullable=True),  # unix time
    Column("heartbeat_at", Float, nullable=True),
    Column("spec", JSON, nullable=False),
    Column("progress", JSON, nullable=False, default=dict),  # latest progress record
    Column("error_class", String(40), nullable=True),
    Column("error_message", Text, nullable=True),  # owner-only; never shown to contributors
    Column("created_at", String(40), nullable=False),
    Column("started_at", String(40), nullable=True),
    Column("finished_at", String(40), nullable=True),
)

# Progress records (step, loss, throughput, eta...) for training curves.
job_events = Table(
    "job_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", Integer, ForeignKey("jobs.id"), nullable=False),
    Column("ts", Float, nullable=False),
    Column("data", JSON, nullable=False),
)

results = Table(
    "results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("submission_id", Integer, ForeignKey("submissions.id"), nullable=True),  # NULL: baseline
    Column("job_id", Integer, ForeignKey("jobs.id"), nullable=True),
    Column("corpus_version_id", Integer, ForeignKey("corpus_versions.id"), nullable=False),
    Column("phase", Integer, nullable=False),  # 1, 2; baseline rows use 0
    Column("model_label", String(200), nullable=False),
    Column("macro_f1", Float, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("provenance", JSON, nullable=False),  # corpus hash, bundle hash, recipe, compute, tier
    Column("created_at", String(40), nullable=False),
    UniqueConstraint("job_id", name="uq_results_job"),  # a job is scored once
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", String(40), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
