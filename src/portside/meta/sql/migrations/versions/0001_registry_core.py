"""Registry core: repositories, blobs, manifests, tags, uploads.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

DIGEST = sa.String(160)
WHEN = sa.DateTime(timezone=True)


def _name(length: int) -> sa.types.TypeEngine[str]:
    # Names are compared and listed (catalog, tags) in byte order, SQLite's only order;
    # PostgreSQL's default would follow the database's locale, and its index would not
    # serve a byte-order page.
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "repositories",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", _name(255), nullable=False, unique=True),
        sa.Column("created_at", WHEN, nullable=False),
    )
    op.create_table(
        "blobs",
        sa.Column("digest", DIGEST, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
    )
    op.create_table(
        "repo_blobs",
        sa.Column("repo_id", sa.Integer, sa.ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("digest", DIGEST, sa.ForeignKey("blobs.digest"), primary_key=True),
        sa.Column("created_at", WHEN, nullable=False),
    )
    op.create_table(
        "manifests",
        sa.Column("digest", DIGEST, primary_key=True),
        sa.Column("media_type", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("artifact_type", sa.String(255), nullable=True),
        sa.Column("subject", DIGEST, nullable=True),
        sa.Column("annotations", sa.Text, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
    )
    op.create_index("ix_manifests_subject", "manifests", ["subject"])
    op.create_table(
        "manifest_refs",
        sa.Column("parent", DIGEST, sa.ForeignKey("manifests.digest", ondelete="CASCADE"), primary_key=True),
        sa.Column("child", DIGEST, primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
    )
    op.create_index("ix_manifest_refs_child", "manifest_refs", ["child", "kind"])
    op.create_table(
        "repo_manifests",
        sa.Column("repo_id", sa.Integer, sa.ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("digest", DIGEST, sa.ForeignKey("manifests.digest"), primary_key=True),
        sa.Column("pushed_at", WHEN, nullable=False),
    )
    op.create_table(
        "tags",
        sa.Column("repo_id", sa.Integer, sa.ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", _name(128), primary_key=True),
        sa.Column("digest", DIGEST, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
    )
    op.create_index("ix_tags_repo_digest", "tags", ["repo_id", "digest"])
    op.create_table(
        "uploads",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("started_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "uploads",
        "tags",
        "repo_manifests",
        "manifest_refs",
        "manifests",
        "repo_blobs",
        "blobs",
        "repositories",
    ):
        op.drop_table(table)
