"""Tables. Manifests are content (one row per digest); repositories link to them.

repositories ─┬─ repo_blobs ──── blobs          (a repo reads only linked blobs)
              ├─ repo_manifests ─ manifests ─── manifest_refs (blobs and child manifests it needs)
              └─ tags ─────────── manifests
uploads                                         (sessions that hold bytes, and tombstones of ended ones)
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

# Ids are never handed out twice (0006): tables whose rows have integer ids are
# AUTOINCREMENT on SQLite, which would otherwise give a new row the largest id in the table
# plus one (a deleted project's id to the next project, and its audit records with it).
# PostgreSQL's serial sequences never go back.

DIGEST = String(160)

repositories = Table(
    "repositories",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("pull_count", BigInteger, nullable=False, default=0),
    Column("updated_at", DateTime(timezone=True), nullable=True),
    sqlite_autoincrement=True,
)

blobs = Table(
    "blobs",
    metadata,
    Column("digest", DIGEST, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # When something last needed the blob (upload, mount, manifest push); GC's grace
    # period counts from here.
    Column("touched_at", DateTime(timezone=True), nullable=True),
    Index("ix_blobs_touched", "touched_at"),
)

repo_blobs = Table(
    "repo_blobs",
    metadata,
    Column("repo_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", DIGEST, ForeignKey("blobs.digest"), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_repo_blobs_digest", "digest"),
)

manifests = Table(
    "manifests",
    metadata,
    Column("digest", DIGEST, primary_key=True),
    Column("media_type", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("artifact_type", String(255), nullable=True),
    Column("subject", DIGEST, nullable=True),
    Column("annotations", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_manifests_subject", "subject"),
)

manifest_refs = Table(
    "manifest_refs",
    metadata,
    Column("parent", DIGEST, ForeignKey("manifests.digest", ondelete="CASCADE"), primary_key=True),
    Column("child", DIGEST, primary_key=True),
    # "blob" (config, layer) or "manifest" (an index's child)
    Column("kind", String(16), primary_key=True),
    Index("ix_manifest_refs_child", "child", "kind"),
)

repo_manifests = Table(
    "repo_manifests",
    metadata,
    Column("repo_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", DIGEST, ForeignKey("manifests.digest"), primary_key=True),
    Column("pushed_at", DateTime(timezone=True), nullable=False),
    Column("pulled_at", DateTime(timezone=True), nullable=True),
    Index("ix_repo_manifests_digest", "digest"),
)
# A repository's artifacts newest first, as the listings show them by default (0008): a
# page of them is a walk along this index, and the newest push its first entry.
Index(
    "ix_repo_manifests_repo_pushed",
    repo_manifests.c.repo_id,
    repo_manifests.c.pushed_at.desc(),
    repo_manifests.c.digest,
)

tags = Table(
    "tags",
    metadata,
    Column("repo_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("digest", DIGEST, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # An artifact's tags in name order (0008): its first few are the index's next entries,
    # however many tags the repository or the artifact has.
    Index("ix_tags_repo_digest_name", "repo_id", "digest", "name"),
)

uploads = Table(
    "uploads",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("repository", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The blob store's resumable writer state, saved with the acknowledged size.
    Column("state", LargeBinary, nullable=True),
    # A tombstone: the session completed or was cancelled, and its id must stay unknown
    # (registry/uploadids.py) until it expires; purged with idle sessions.
    Column("ended", Boolean, nullable=False, default=False, server_default=false()),
    Index("ix_uploads_updated", "updated_at"),
)

# --- accounts, projects and audit (access control) -------------------------------------

users = Table(
    "users",
    metadata,
    Column("user_id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(255), nullable=False, unique=True),
    Column("email", String(255), nullable=True, unique=True),
    Column("realname", String(255), nullable=False, default=""),
    Column("comment", String(1024), nullable=False, default=""),
    Column("password_hash", String(255), nullable=False),
    Column("sysadmin", Boolean, nullable=False, default=False),
    Column("totp_secret", String(64), nullable=True),
    # The time step of the last TOTP code accepted: each code signs in once.
    Column("totp_last_step", BigInteger, nullable=True),
    Column("creation_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    # Moves when the password changes: tokens issued before carry the old one and stop working.
    Column("generation", Integer, nullable=False, default=0, server_default="0"),
    sqlite_autoincrement=True,
)

projects = Table(
    "projects",
    metadata,
    Column("project_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("owner_id", Integer, ForeignKey("users.user_id"), nullable=False),
    Column("creation_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    sqlite_autoincrement=True,
)

# Harbor's project metadata: a map of strings ("public": "true", ...).
project_metadata = Table(
    "project_metadata",
    metadata,
    Column("project_id", Integer, ForeignKey("projects.project_id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("value", String(1024), nullable=False),
)

project_members = Table(
    "project_members",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.project_id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False),
    Column("role_id", Integer, nullable=False),
    Column("creation_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    UniqueConstraint("project_id", "user_id", name="uq_project_members_project_user"),
    sqlite_autoincrement=True,
)

robots = Table(
    "robots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", String(1024), nullable=False, default=""),
    Column("secret_hash", String(255), nullable=False),
    Column("level", String(16), nullable=False),
    Column("project_id", Integer, ForeignKey("projects.project_id", ondelete="CASCADE"), nullable=True),
    Column("duration", Integer, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    # JSON list of {"kind", "namespace", "access": [{"resource", "action", "effect"}]}
    Column("permissions", Text, nullable=False),
    Column("creator", String(255), nullable=False, default=""),
    Column("creation_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    # Moves when the secret is refreshed or the robot disabled (see users.generation).
    Column("generation", Integer, nullable=False, default=0, server_default="0"),
    sqlite_autoincrement=True,
)

audit_logs = Table(
    "audit_logs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, nullable=True),
    Column("username", String(255), nullable=False),
    Column("operation", String(32), nullable=False),
    Column("resource_type", String(32), nullable=False),
    Column("resource", String(1024), nullable=False),
    Column("client", String(64), nullable=False, default=""),
    Column("success", Boolean, nullable=False, default=True),
    Column("op_time", DateTime(timezone=True), nullable=False),
    Index("ix_audit_logs_project_time", "project_id", "op_time"),
    Index("ix_audit_logs_time", "op_time"),
    sqlite_autoincrement=True,
)

# --- web UI sessions (management API) ---------------------------------------------------

# The cookie carries a random id; only its SHA-256 is stored, so a leaked table opens no session.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_web_sessions_user", "user_id"),
    Index("ix_web_sessions_expires", "expires_at"),
)

# --- background jobs (GC, scrub) and quotas ----------------------------------------------

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("parameters", Text, nullable=False),
    Column("result", Text, nullable=True),
    Column("log", Text, nullable=False, server_default=""),
    Column("stop_requested", Boolean, nullable=False, server_default=false()),
    Column("creation_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    Index("ix_jobs_kind_time", "kind", "creation_time"),
    sqlite_autoincrement=True,
)

job_schedules = Table(
    "job_schedules",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("type", String(16), nullable=False),
    Column("cron", String(64), nullable=False),
    Column("parameters", Text, nullable=False),
    Column("next_run", DateTime(timezone=True), nullable=True),
    Column("creation_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("pem", Text, nullable=False),
    Column("creation_time", DateTime(timezone=True), nullable=False),
)

# One per project (the quota's id is the project's): the limit only. Usage is computed
# from the links, so deletes and GC need no bookkeeping (sql/quotas.py); a writer that
# grows a limited project locks its row.
quotas = Table(
    "quotas",
    metadata,
    Column("project_id", Integer, ForeignKey("projects.project_id", ondelete="CASCADE"), primary_key=True),
    Column("storage_limit", BigInteger, nullable=False),  # bytes; -1 unlimited
    Column("creation_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
)
