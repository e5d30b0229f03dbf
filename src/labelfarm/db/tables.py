"""The database tables, as SQLAlchemy Core.

Times are stored as epoch seconds (double precision): portable between SQLite and
PostgreSQL, cheap to compare on the hot path, converted to ISO-8601 at the edges.
JSON values are stored as text, encoded and decoded by the services (orjson).
"""

from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from labelfarm.db.project_settings import DEFAULTS, SETTING_NAMES, SETTING_TYPES
from labelfarm.db.tables_audio import audio_tables
from labelfarm.db.tables_jobs import job_tables
from labelfarm.db.tables_learning import learning_tables
from labelfarm.db.tables_quality import quality_tables

#: The largest value an Integer column holds on every database (32 bits on PostgreSQL): row
#: ids and counts. Inputs naming an id or a count are bounded by it before any query, so an
#: out-of-range number is refused as invalid instead of failing in the driver.
MAX_INT = 2**31 - 1

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
)

sites = Table(
    "sites",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(150), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=True),
    Column("display_name", String(200), nullable=False),
    Column("pseudonym", String(32), nullable=False, unique=True),
    Column("site_id", Integer, ForeignKey("sites.id"), nullable=True),
    Column("locale", String(16), nullable=False, server_default="en"),
    Column("is_superuser", Boolean, nullable=False, server_default=text("false")),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", Float, nullable=False),
)

memberships = Table(
    "memberships",
    metadata,
    Column("workspace_id", Integer, ForeignKey("workspaces.id"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_memberships_user", "user_id"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(12), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    Column("expires_at", Float, nullable=True),  # None: until revoked
)

sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)


def _setting_column(name: str) -> Column[Any]:
    """A column of ``projects`` for one declared setting, its default kept by the database too."""
    kind, default = SETTING_TYPES[name], DEFAULTS[name]
    sql_type: Any = {int: Integer, float: Float, bool: Boolean, str: String(32)}[kind]
    if kind is bool:
        server_default: Any = text("true" if default else "false")
    else:
        server_default = f"{default:g}" if kind is float else str(default)
    return Column(name, sql_type, nullable=False, server_default=server_default)


# Workflow and quality settings (gold, qualification, pausing, adaptive overlap) are declared
# in labelfarm.db.project_settings; services/tasks/ applies them.
projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("workspace_id", Integer, ForeignKey("workspaces.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("guidelines", Text, nullable=False, server_default=""),
    Column("schema_version", Integer, nullable=False),
    Column("n_items", Integer, nullable=False, server_default="0"),
    *(_setting_column(name) for name in SETTING_NAMES),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("workspace_id", "name", name="uq_projects_workspace_name"),
)

schema_versions = Table(
    "schema_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("schema", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("project_id", "version", name="uq_schema_versions_project_version"),
)

media = Table(
    "media",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", Integer, nullable=False),
    Column("mime", String(100), nullable=False),  # the type it is served as
    # inline: its content decoded as an allowed image/audio type (services/media_check.py);
    # otherwise served as an attachment. checked_at NULL: stored before checks, not yet checked
    Column("inline", Boolean, nullable=False, server_default=text("false")),
    Column("checked_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Index(
        "ix_media_unchecked",
        "sha256",
        sqlite_where=text("checked_at IS NULL"),
        postgresql_where=text("checked_at IS NULL"),
    ),
)

imports = Table(
    "imports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False, index=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("format", String(32), nullable=False),
    Column("filename", String(500), nullable=False),
    Column("status", String(16), nullable=False),  # staging | publishing | done | failed
    Column("n_items", Integer, nullable=False, server_default="0"),
    Column("n_errors", Integer, nullable=False, server_default="0"),
    Column("errors", Text, nullable=False, server_default="[]"),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    # what the file held beside its items (COCO info, a CVAT <meta>...): ExportContext.file_meta
    Column("file_meta", Text, nullable=True),
    # JSON [{reason, count}]: what the file held that the import left out on purpose
    Column("notes", Text, nullable=True),
    Column("job_id", Integer, nullable=True),  # the import job running it (jobs.id)
)

# An item is open (visible to `next`) while n_leased + n_submitted < overlap.
# n_leased counts leases not yet submitted, skipped or reclaimed as expired.
items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("import_id", Integer, ForeignKey("imports.id"), nullable=True),
    Column("external_id", String(500), nullable=True),
    Column("data", Text, nullable=False),
    Column("media_sha256", String(64), ForeignKey("media.sha256"), nullable=True),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("deadline", Float, nullable=True),
    Column("deadline_key", Float, nullable=False, server_default="1e18"),
    Column("is_open", Boolean, nullable=False),
    Column("status", String(16), nullable=False),  # staged | ready
    Column("n_leased", Integer, nullable=False, server_default="0"),
    Column("n_submitted", Integer, nullable=False, server_default="0"),
    # gold: a known answer, mixed in blind; never open in the ordinary queue
    Column("is_gold", Boolean, nullable=False, server_default=text("false")),
    Column("gold", Text, nullable=True),
    # training (answer shown, while qualifying) | control (never shown; measures); NULL: control
    Column("gold_kind", String(16), nullable=True),
    # a review decision closes the item for good (services/tasks/openness.py)
    Column("is_reviewed", Boolean, nullable=False, server_default=text("false")),
    # the image's size in pixels: decoded from its media at import, or given by the source
    Column("image_width", Float, nullable=True),
    Column("image_height", Float, nullable=True),
    # JSON: what the source file said of it beyond what labelfarm holds, for an export to it
    Column("source_meta", Text, nullable=True),
    # the derived label, cached when it is recomputed (aggregation / review)
    Column("label_confidence", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("score", Float, nullable=False, server_default="0"),  # "score" ordering: docs/scores.md
    Index("ix_items_fifo", "project_id", "is_open", "id"),
    # partial indexes: rows not concerned (most of them) cost nothing to insert or update
    Index(
        "ix_items_gold",
        "project_id",
        "id",
        sqlite_where=text("is_gold"),
        postgresql_where=text("is_gold"),
    ),
    Index(
        "ix_items_priority",
        "project_id",
        "is_open",
        text("priority DESC"),
        "deadline_key",
        "id",
    ),
    Index("ix_items_score", "project_id", "is_open", text("score DESC"), "id"),
    Index(
        "ix_items_import",
        "import_id",
        sqlite_where=text("status = 'staged'"),
        postgresql_where=text("status = 'staged'"),
    ),
    Index(
        "uq_items_project_external",
        "project_id",
        "external_id",
        unique=True,
        sqlite_where=text("external_id IS NOT NULL"),
        postgresql_where=text("external_id IS NOT NULL"),
    ),
)

# assignments and annotations carry their item's project_id without a foreign key to
# projects: each check would lock the project's one row and serialise busy projects
# (migration 0006 says more). The key to items stands.
assignments = Table(
    "assignments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, nullable=False),
    Column("item_id", Integer, ForeignKey("items.id"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("state", String(12), nullable=False),  # leased | submitted | skipped | expired
    Column("leased_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("finished_at", Float, nullable=True),
    Column("skip_reason", String(500), nullable=True),
    UniqueConstraint("item_id", "user_id", name="uq_assignments_item_user"),
    Index("ix_assignments_expiry", "project_id", "state", "expires_at"),
    Index("ix_assignments_user", "user_id", "project_id", "state"),
)

# One row per (project, annotator) that has asked for tasks: a version every ``next`` bumps.
# Two calls of one annotator at the same moment on PostgreSQL notice each other through it,
# so neither leases past the project's cap on live leases (services/tasks/lease.py).
lease_gates = Table(
    "lease_gates",
    metadata,
    Column("project_id", Integer, primary_key=True),
    Column("user_id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)

annotations = Table(
    "annotations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, nullable=False),
    Column("item_id", Integer, ForeignKey("items.id"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("client_id", String(64), nullable=False),
    Column("value", Text, nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("status", String(12), nullable=False),  # accepted | late
    Column("late_reason", String(32), nullable=True),
    # left out of labels: paused | failed (the annotator's standing then) | relabel; NULL: counts
    Column("excluded", String(16), nullable=True),
    Column("corrects_id", Integer, ForeignKey("annotations.id"), nullable=True),
    Column("from_prediction", Boolean, nullable=False, server_default=text("false")),
    Column("verified", Boolean, nullable=False, server_default=text("false")),  # verify mode
    Column("duration_ms", Integer, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("source_meta", Text, nullable=True),  # see items.source_meta
    UniqueConstraint("user_id", "client_id", name="uq_annotations_user_client"),
    Index("ix_annotations_item", "item_id"),
    Index("ix_annotations_project", "project_id", "id"),
)

predictions = Table(
    "predictions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("item_id", Integer, ForeignKey("items.id"), nullable=False),
    Column("model", String(200), nullable=False),
    Column("value", Text, nullable=False),
    Column("score", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("source_meta", Text, nullable=True),  # see items.source_meta
    Column("model_version", String(200), nullable=True),  # "3"; a backend's as answered
    Index("ix_predictions_item", "item_id"),
    Index("ix_predictions_project", "project_id"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ts", Float, nullable=False),
    Column("workspace_id", Integer, nullable=True),
    Column("actor_id", Integer, nullable=True),
    Column("action", String(64), nullable=False),
    Column("target", String(200), nullable=False),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # 1: hmac-sha256 with the audit key; 0: sha256, rows from before the chain was keyed
    Column("scheme", SmallInteger, nullable=False, server_default=text("0")),
)

# Each scored answer to a control gold item the annotator was given (answered or skipped):
# the evidence behind annotator accuracy estimates. Training items are not scored.
gold_results = Table(
    "gold_results",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("item_id", Integer, ForeignKey("items.id"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    # NULL: the leased item was skipped, a miss (score 0)
    Column("annotation_id", Integer, ForeignKey("annotations.id"), nullable=True),
    Column("gold_class", String(200), nullable=True),  # for choice fields: per-class accuracy
    Column("score", Float, nullable=False),
    Column("qualification", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", Float, nullable=False),
    Index("ix_gold_results_user", "project_id", "user_id"),
)

# One row: the hash and id of the newest audit entry, so a deleted tail is detected too.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("last_id", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

# Signed anchors of the audit chain's head (services/audit_anchor.py), newest last: kept so
# that managers and clients can fetch them; their value is in the copies kept elsewhere.
audit_anchors = Table(
    "audit_anchors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("last_id", Integer, nullable=False),
    Column("anchor", Text, nullable=False),
)

# Fitted annotator models, annotators' standing and its history, reviewers' decisions
# (db/tables_quality.py).
annotator_models, annotator_status, standing_events, reviews = quality_tables(metadata)

# Jobs, model versions and external model servers (db/tables_jobs.py).
jobs, model_versions, ml_backends = job_tables(metadata)
# Audio facts, peaks and listening copies; pre-fill error per language (db/tables_audio.py).
media_audio, asr_measurements = audio_tables(metadata)
# The learning loop: model outputs, correction rounds, auto-accept thresholds and labels,
# suspected label errors, confidence calibrators (db/tables_learning.py names each).
learning = learning_tables(metadata)
model_outputs, correction_rounds, auto_thresholds = learning[:3]
auto_labels, label_issues, confidence_calibrators = learning[3:]
