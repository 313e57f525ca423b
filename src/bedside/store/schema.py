"""Tables of the workspace store (SQLAlchemy Core).

Key columns are real columns; everything else that later features may grow into lives in JSON
columns, so that most changes need no migration. Timestamps are UTC ISO-8601 strings.
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

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("applied_at", String(40), nullable=False),
)

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

# Baselines the owner registers (0003_evaluation_window): the hospital's current classifier, its
# predictions on the holdout scored like any model. One row per registration (a re-registration
# under the same name adds a row; the newest is shown).
baselines = Table(
    "baselines",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(40), nullable=False),  # "current": the classifier in use today
    Column("corpus_version_id", Integer, ForeignKey("corpus_versions.id"), nullable=False),
    Column("result_id", Integer, ForeignKey("results.id"), nullable=False, unique=True),
    Column("source", JSON, nullable=False),  # file name, sha256, rows, label column (no content)
    Column("created_at", String(40), nullable=False),
)

# Screening (0004_screening): a deployed model pinned to its bundle, corpus version and decision
# rule, with the owner's recall targets and the operating points picked for them; and each run of
# it on new abstracts. Per-abstract outputs live in owner-only files, never in these rows.
screening_models = Table(
    "screening_models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("submission_id", Integer, ForeignKey("submissions.id"), nullable=False),
    Column("result_id", Integer, ForeignKey("results.id"), nullable=False),
    Column("job_id", Integer, ForeignKey("jobs.id"), nullable=True),
    Column("name", String(200), nullable=False),
    Column("phase", Integer, nullable=False),
    Column("bundle_hash", String(64), nullable=False),
    Column("corpus_version_id", Integer, ForeignKey("corpus_versions.id"), nullable=False),
    Column("corpus_hash", String(64), nullable=False),
    Column("decision", JSON, nullable=False),  # {"rule", "offsets", "classes"}
    Column("path", Text, nullable=False),  # relative to the workspace root
    Column("targets", JSON, nullable=False, default=dict),  # {class name: target recall}
    Column("operating_points", JSON, nullable=False, default=dict),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", String(40), nullable=False),
    Column("meta", JSON, nullable=False, default=dict),
)

screening_runs = Table(
    "screening_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("screening_models.id"), nullable=False),
    Column("job_id", Integer, ForeignKey("jobs.id"), nullable=True),
    Column("state", String(40), nullable=False),  # queued | running | done | failed
    Column("input", JSON, nullable=False),  # file name, sha256, rows, columns (no content)
    Column("summary", JSON, nullable=False, default=dict),  # counts per class, flagged, shadow
    Column("error", Text, nullable=True),
    Column("created_at", String(40), nullable=False),
    Column("finished_at", String(40), nullable=True),
)

# Re-evaluation (0005_reevaluation): each time submissions are queued again on a corpus version
# (by itself when a version becomes active, or by hand), what was queued and what was skipped
# with the reason. The results stay in ``results``, one per (submission, phase, corpus version).
reevaluations = Table(
    "reevaluations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("corpus_version_id", Integer, ForeignKey("corpus_versions.id"), nullable=False),
    Column("trigger", String(40), nullable=False),  # activation | manual
    Column("policy", String(40), nullable=False),  # published | all | none | manual
    Column("actor", String(200), nullable=False),
    Column("queued", JSON, nullable=False),  # [{"submission_id", "jobs", "phases"}]
    Column("skipped", JSON, nullable=False),  # [{"submission_id", "reason"}]
    Column("created_at", String(40), nullable=False),
)
