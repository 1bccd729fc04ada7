"""Tables. Manifests are content (one row per digest); repositories link to them.

repositories ─┬─ repo_blobs ──── blobs          (a repo reads only linked blobs)
              ├─ repo_manifests ─ manifests ─── manifest_refs (blobs and child manifests it needs)
              └─ tags ─────────── manifests
uploads                                         (sessions that survive restarts)
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
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
)

metadata = MetaData()

DIGEST = String(160)

repositories = Table(
    "repositories",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

blobs = Table(
    "blobs",
    metadata,
    Column("digest", DIGEST, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

repo_blobs = Table(
    "repo_blobs",
    metadata,
    Column("repo_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", DIGEST, ForeignKey("blobs.digest"), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
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
)

tags = Table(
    "tags",
    metadata,
    Column("repo_id", Integer, ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("digest", DIGEST, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_tags_repo_digest", "repo_id", "digest"),
)

uploads = Table(
    "uploads",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("repository", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
