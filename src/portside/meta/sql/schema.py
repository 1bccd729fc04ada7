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
    Float,
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

# --- scan reports: inventories, findings and their summaries (0010) ----------------------
# Inventories, findings and summaries are the content's (keyed by manifest digest: the same
# image in two repositories is scanned once); reports are an artifact's (repository and
# digest), and double as the scan queue: a Pending report is a scan to run.

scan_inventories = Table(
    "scan_inventories",
    metadata,
    Column("digest", DIGEST, primary_key=True),
    Column("inventory", LargeBinary, nullable=False),  # scan/codec.py's encoding
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Every package of every stored inventory (0012), so "which artifacts hold this package"
# finds packages no advisory names too. `purl` is without qualifiers; `purl_name` is that
# purl without its version (a purl without a version names every version).
scan_packages = Table(
    "scan_packages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("digest", DIGEST, nullable=False),
    Column("ecosystem", String(32), nullable=False),
    Column("name", String(255), nullable=False),
    Column("version", String(255), nullable=False),
    Column("purl", String(1024), nullable=False),
    Column("purl_name", String(1024), nullable=False),
    Column("path", Text, nullable=False),
    Column("layer", DIGEST, nullable=False),
    Index("ix_scan_packages_digest", "digest"),
    Index("ix_scan_packages_purl_name", "purl_name", "digest"),
    Index("ix_scan_packages_name", "ecosystem", "name"),
    sqlite_autoincrement=True,
)

# One per scanned manifest: the counts an artifact list shows, kept beside the findings
# so that a list of any length reads them with one query.
scan_summaries = Table(
    "scan_summaries",
    metadata,
    Column("digest", DIGEST, primary_key=True),
    Column("severity", Integer, nullable=False),  # the worst finding's (Severity)
    Column("total", Integer, nullable=False),
    Column("fixable", Integer, nullable=False),
    Column("counts", Text, nullable=False),  # JSON: {"High": 3, ...}
    Column("db_generation", BigInteger, nullable=False),  # the database generation matched against
    Column("matched_at", DateTime(timezone=True), nullable=False),
    # JSON {uuid, name, vendor, version} of the external adapter whose findings these are
    # (0013); NULL: the built-in scanner's, which re-matching keeps current.
    Column("scanner", Text, nullable=True),
    Index("ix_scan_summaries_generation", "db_generation"),
)

scan_findings = Table(
    "scan_findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("digest", DIGEST, nullable=False),
    Column("vulnerability_id", String(128), nullable=False),
    Column("advisory_id", String(128), nullable=False),
    Column("aliases", Text, nullable=False),  # JSON list
    Column("source", String(32), nullable=False),
    Column("ecosystem", String(32), nullable=False),
    Column("package", String(255), nullable=False),
    Column("version", String(255), nullable=False),
    Column("purl", String(1024), nullable=False),
    Column("path", Text, nullable=False),
    Column("layer", DIGEST, nullable=False),
    Column("fixed_version", String(255), nullable=True),
    Column("severity", Integer, nullable=False),
    Column("cvss_score", Float, nullable=True),
    Column("cvss_vector", String(255), nullable=True),
    Column("cwe_ids", Text, nullable=False),  # JSON list
    Column("links", Text, nullable=False),  # JSON list
    Column("description", Text, nullable=False),
    Index("ix_scan_findings_digest", "digest"),
    Index("ix_scan_findings_vulnerability", "vulnerability_id", "digest"),
    Index("ix_scan_findings_purl", "purl", "digest"),
    sqlite_autoincrement=True,
)

scan_reports = Table(
    "scan_reports",
    metadata,
    Column("id", String(36), primary_key=True),  # a UUID, as Harbor's report ids
    Column("repository", String(255), nullable=False),
    Column("digest", DIGEST, nullable=False),
    Column("scan_type", String(16), nullable=False),  # vulnerability or sbom
    Column("status", String(16), nullable=False),  # Pending, Running, Success, Error, Stopped
    Column("trigger", String(16), nullable=False),  # Manual, Push, Schedule
    Column("stop_requested", Boolean, nullable=False, server_default=false()),
    Column("sbom_digest", DIGEST, nullable=True),
    Column("log", Text, nullable=False, server_default=""),
    Column("creation_time", DateTime(timezone=True), nullable=False),
    Column("start_time", DateTime(timezone=True), nullable=True),
    Column("end_time", DateTime(timezone=True), nullable=True),
    Column("update_time", DateTime(timezone=True), nullable=False),  # the heartbeat while Running
    Index("ix_scan_reports_artifact", "repository", "digest", "scan_type", "creation_time"),
    Index("ix_scan_reports_status", "status", "creation_time"),
)

# --- vulnerability database (0009) ------------------------------------------------------
# Advisories are keyed by (source, id) and replaced a source at a time; their affected
# entries are looked up by (ecosystem, package) for every name of an image at once. The
# rows carry no foreign keys: an import deletes and rewrites a source's rows in bulk, and
# the source column on both tables is what it deletes by.

vulndb_sources = Table(
    "vulndb_sources",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("record_count", Integer, nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False),
    Column("modified", DateTime(timezone=True), nullable=True),
    Column("origin", Text, nullable=False),
    Column("etag", Text, nullable=True),
    Column("last_modified", String(64), nullable=True),
    Column("generation", BigInteger, nullable=False),
)

vulndb_advisories = Table(
    "vulndb_advisories",
    metadata,
    Column("source", String(128), primary_key=True),
    Column("advisory_id", String(128), primary_key=True),
    Column("aliases", Text, nullable=False),  # JSON list
    Column("summary", Text, nullable=False),
    Column("details", Text, nullable=False),
    Column("refs", Text, nullable=False),  # JSON list of URLs
    Column("cvss_vector", String(255), nullable=True),
    Column("cvss_score", Float, nullable=True),
    Column("cwe_ids", Text, nullable=False),  # JSON list
    Column("severity", String(32), nullable=True),
    Column("modified", DateTime(timezone=True), nullable=True),
    Column("withdrawn", Boolean, nullable=False),
)

vulndb_affected = Table(
    "vulndb_affected",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("source", String(128), nullable=False),
    Column("advisory_id", String(128), nullable=False),
    Column("ecosystem", String(64), nullable=False),
    Column("package", String(512), nullable=False),
    Column("release", String(64), nullable=False),
    Column("ranges", Text, nullable=False),  # JSON: OSV affected[].ranges
    Column("versions", Text, nullable=False),  # JSON: OSV affected[].versions
    Column("fixed", String(255), nullable=True),
    Column("severity", String(32), nullable=True),
    Column("not_affected", Boolean, nullable=False),
    Index("ix_vulndb_affected_package", "ecosystem", "package"),
    Index("ix_vulndb_affected_source", "source", "advisory_id"),
)

# --- scanner registrations (0011) -------------------------------------------------------
# External scanner adapters; the built-in scanner is no row. `access_credential` is
# encrypted (sql/scanners.py), never the credential itself.
scanner_registrations = Table(
    "scanner_registrations",
    metadata,
    Column("uuid", String(64), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", Text, nullable=False),
    Column("url", String(1024), nullable=False, unique=True),
    Column("auth", String(32), nullable=False),
    Column("access_credential", Text, nullable=False),
    Column("skip_cert_verify", Boolean, nullable=False),
    Column("use_internal_addr", Boolean, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("is_default", Boolean, nullable=False),
    Column("creation_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
)

# --- the event outbox (0014) ------------------------------------------------------------
# Written in the transaction of the change an event reports (meta/events.py); read by id.
event_outbox = Table(
    "event_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_type", String(64), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("repository", String(255), nullable=True),
    Column("digest", DIGEST, nullable=True),
    Column("payload", Text, nullable=False),  # JSON
    Index("ix_event_outbox_occurred_at", "occurred_at"),
    sqlite_autoincrement=True,
)

# --- scan requests of the scanner adapter API (0015) -------------------------------------
# Portside as a Harbor scanner adapter: each accepted request, its state and result. The
# registry's Authorization is never stored (the scanning process holds it in memory).
adapter_scan_requests = Table(
    "adapter_scan_requests",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("registry_url", String(1024), nullable=False),
    Column("repository", String(1024), nullable=False),
    Column("digest", String(160), nullable=False),
    Column("tag", String(255), nullable=False),
    Column("mime_type", String(255), nullable=False),
    Column("capabilities", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("error", Text, nullable=False),
    Column("findings", Text, nullable=True),
    Column("inventory", LargeBinary, nullable=True),
    Column("generated_at", DateTime(timezone=True), nullable=True),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("updated", DateTime(timezone=True), nullable=False),
    Index("ix_adapter_scan_requests_status", "status", "updated"),
)

# CVE exports' files (Harbor's /export/cve): each export job's CSV, gzip-compressed, until
# it expires; `owner` is who asked ("u7": user 7, "r3": robot 3), as the job's kind says.
cve_export_files = Table(
    "cve_export_files",
    metadata,
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("owner", String(32), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Index("ix_cve_export_files_created", "created"),
)

# Harbor's CVE allowlists: the system's (scope "system", no project) and one per project
# (scope "p<id>"), whose findings the vulnerability pull policy leaves out until
# `expires_at` (seconds since the epoch; NULL: never). `cve_ids` is a JSON array.
cve_allowlists = Table(
    "cve_allowlists",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(32), nullable=False, unique=True),
    Column("project_id", Integer, ForeignKey("projects.project_id", ondelete="CASCADE"), nullable=True),
    Column("expires_at", BigInteger, nullable=True),
    Column("cve_ids", Text, nullable=False),
    Column("creation_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    sqlite_autoincrement=True,
)

trust_policies = Table(
    "trust_policies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(32), nullable=False, unique=True),
    Column("project_id", Integer, ForeignKey("projects.project_id", ondelete="CASCADE"), nullable=True),
    Column("document", Text, nullable=False),
    Column("creation_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    sqlite_autoincrement=True,
)

# --- registries (0019) ------------------------------------------------------------------
# The other registries Portside talks to (meta/registries.py). `access_secret` is
# encrypted (sql/registries.py), never the secret itself; `status`, `last_error` and
# `checked_at` are what the background health check last found ("unknown" and NULL before it).
registries = Table(
    "registries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("type", String(64), nullable=False),
    Column("url", String(1024), nullable=False),
    Column("description", Text, nullable=False),
    Column("insecure", Boolean, nullable=False),
    Column("ca_certificate", Text, nullable=True),
    Column("credential_type", String(16), nullable=False),
    Column("access_key", String(1024), nullable=False),
    Column("access_secret", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("last_error", Text, nullable=False),
    Column("checked_at", DateTime(timezone=True), nullable=True),
    Column("creation_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    sqlite_autoincrement=True,
)

# --- registry failover URLs (0020) ----------------------------------------------------------
# Where else a registry answers, in the order they are tried after its own URL
# (meta/failover.py). Removed with their registry.
registry_failover_urls = Table(
    "registry_failover_urls",
    metadata,
    Column("registry_id", Integer, ForeignKey("registries.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("url", String(1024), nullable=False),
)

# --- P2P preheat (0021) ---------------------------------------------------------
# The P2P systems asked to fetch images ahead of pulls (meta/preheat.py). `auth_secret` is
# encrypted (sql/preheat.py); `status` and `last_error` are what the last check found.
p2p_instances = Table(
    "p2p_instances",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("vendor", String(32), nullable=False),
    Column("endpoint", String(1024), nullable=False),
    Column("description", Text, nullable=False),
    Column("auth_mode", String(16), nullable=False),
    Column("auth_key", String(1024), nullable=False),
    Column("auth_secret", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("is_default", Boolean, nullable=False),
    Column("insecure", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("last_error", Text, nullable=False),
    Column("creation_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    sqlite_autoincrement=True,
)

# A project's preheat policies; filters, trigger and extra_attrs are Harbor's JSON texts.
preheat_policies = Table(
    "preheat_policies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.project_id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False),
    Column("provider_id", Integer, ForeignKey("p2p_instances.id"), nullable=False),
    Column("filters", Text, nullable=False),
    Column("trigger", Text, nullable=False),
    Column("extra_attrs", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("owner_kind", String(16), nullable=False),
    Column("owner_id", Integer, nullable=False),
    Column("creation_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    UniqueConstraint("project_id", "name", name="uq_preheat_policy_name"),
    sqlite_autoincrement=True,
)

preheat_executions = Table(
    "preheat_executions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("policy_id", Integer, ForeignKey("preheat_policies.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_message", Text, nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("extra_attrs", Text, nullable=False),
    Column("stop_requested", Boolean, nullable=False),
    Column("start_time", DateTime(timezone=True), nullable=False),
    Column("end_time", DateTime(timezone=True), nullable=True),
    Index("ix_preheat_executions_policy", "policy_id", "id"),
    sqlite_autoincrement=True,
)

preheat_tasks = Table(
    "preheat_tasks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("execution_id", Integer, ForeignKey("preheat_executions.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_message", Text, nullable=False),
    Column("run_count", Integer, nullable=False),
    Column("extra_attrs", Text, nullable=False),
    Column("log", Text, nullable=False),
    Column("creation_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    Column("start_time", DateTime(timezone=True), nullable=True),
    Column("end_time", DateTime(timezone=True), nullable=True),
    Index("ix_preheat_tasks_execution", "execution_id", "id"),
    sqlite_autoincrement=True,
)

# How far each reader of the event outbox has read (the scan-completed preheats): moved by
# a conditional update, so of several instances exactly one handles each batch.
preheat_cursors = Table(
    "preheat_cursors",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

# --- replication (0022) -------------------------------------------------------------------
# Replication policies, their executions and tasks (meta/replication.py). A registry id of
# NULL is this Portside. `filters` is the policy's filters as JSON; a task's `tags` is JSON.
replication_policies = Table(
    "replication_policies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("description", Text, nullable=False),
    Column("src_registry_id", Integer, nullable=True),
    Column("dest_registry_id", Integer, nullable=True),
    Column("dest_namespace", String(255), nullable=False),
    Column("dest_namespace_replace_count", Integer, nullable=False),
    Column("filters", Text, nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("cron", String(64), nullable=False),
    Column("next_run", DateTime(timezone=True), nullable=True),
    Column("replicate_deletion", Boolean, nullable=False),
    Column("override", Boolean, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("speed", Integer, nullable=False),
    Column("copy_by_chunk", Boolean, nullable=False),
    Column("single_active_replication", Boolean, nullable=False),
    Column("creation_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    sqlite_autoincrement=True,
)

replication_executions = Table(
    "replication_executions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("policy_id", Integer, ForeignKey("replication_policies.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_text", Text, nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("listed", Boolean, nullable=False),
    Column("stop_requested", Boolean, nullable=False),
    Column("listing_until", DateTime(timezone=True), nullable=True),  # the listing's lease
    Column("listing_failed", Boolean, nullable=False),
    Column("start_time", DateTime(timezone=True), nullable=False),
    Column("end_time", DateTime(timezone=True), nullable=True),
    Index("ix_replication_executions_policy", "policy_id", "id"),
    sqlite_autoincrement=True,
)

replication_tasks = Table(
    "replication_tasks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("execution_id", Integer, ForeignKey("replication_executions.id", ondelete="CASCADE"), nullable=False),
    Column("policy_id", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("operation", String(16), nullable=False),
    Column("resource_type", String(16), nullable=False),
    Column("src_repository", String(1024), nullable=False),
    Column("reference", String(1024), nullable=False),
    Column("dst_repository", String(1024), nullable=False),
    Column("tags", Text, nullable=False),
    Column("src_resource", Text, nullable=False),
    Column("dst_resource", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("unreachable", Boolean, nullable=False),  # it failed for good because a side was down
    Column("next_attempt", DateTime(timezone=True), nullable=False),
    Column("worker", String(64), nullable=False),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("log", Text, nullable=False),
    Column("start_time", DateTime(timezone=True), nullable=True),
    Column("end_time", DateTime(timezone=True), nullable=True),
    Index("ix_replication_tasks_execution", "execution_id", "id"),
    Index("ix_replication_tasks_due", "status", "next_attempt"),
    sqlite_autoincrement=True,
)
