"""Scaling out: upload writer state, blob liveness for online GC, jobs, quotas.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        # The blob store's resumable writer state (multipart parts, running hash), saved
        # in the same statement as the acknowledged size so the two never disagree.
        batch.add_column(sa.Column("state", sa.LargeBinary, nullable=True))
    with op.batch_alter_table("blobs") as batch:
        # When something last needed the blob (upload, mount, manifest push): GC spares
        # blobs touched within its grace period, so pushes in flight never lose a layer.
        batch.add_column(sa.Column("touched_at", WHEN, nullable=True))
    op.execute("UPDATE blobs SET touched_at = created_at")
    op.create_index("ix_blobs_touched", "blobs", ["touched_at"])
    op.create_index("ix_repo_blobs_digest", "repo_blobs", ["digest"])
    op.create_index("ix_repo_manifests_digest", "repo_manifests", ["digest"])
    op.create_index("ix_uploads_updated", "uploads", ["updated_at"])

    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),  # "gc" or "scrub"
        sa.Column("status", sa.String(16), nullable=False),  # Harbor's: Pending Running Success Error Stopped
        sa.Column("trigger", sa.String(16), nullable=False),  # Manual or Schedule
        sa.Column("parameters", sa.Text, nullable=False),  # JSON
        sa.Column("result", sa.Text, nullable=True),  # JSON summary
        sa.Column("log", sa.Text, nullable=False, server_default=""),
        sa.Column("stop_requested", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("creation_time", WHEN, nullable=False),
        sa.Column("update_time", WHEN, nullable=False),
    )
    op.create_index("ix_jobs_kind_time", "jobs", ["kind", "creation_time"])
    op.create_table(
        "job_schedules",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("type", sa.String(16), nullable=False),  # Harbor's: Hourly Daily Weekly Custom None
        sa.Column("cron", sa.String(64), nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        # The next run no instance has claimed yet; claiming moves it (one winner).
        sa.Column("next_run", WHEN, nullable=True),
        sa.Column("creation_time", WHEN, nullable=False),
        sa.Column("update_time", WHEN, nullable=False),
    )
    # The token signing key, when instances share a database instead of a key file: the
    # first instance to start creates it, the others read it.
    op.create_table(
        "signing_keys",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("pem", sa.Text, nullable=False),
        sa.Column("creation_time", WHEN, nullable=False),
    )
    op.create_table(
        "quotas",
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.project_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("storage_limit", sa.BigInteger, nullable=False),  # bytes; -1 unlimited
        sa.Column("creation_time", WHEN, nullable=False),
        sa.Column("update_time", WHEN, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("quotas")
    op.drop_table("signing_keys")
    op.drop_table("job_schedules")
    op.drop_table("jobs")
    op.drop_index("ix_uploads_updated", "uploads")
    op.drop_index("ix_repo_manifests_digest", "repo_manifests")
    op.drop_index("ix_repo_blobs_digest", "repo_blobs")
    op.drop_index("ix_blobs_touched", "blobs")
    with op.batch_alter_table("blobs") as batch:
        batch.drop_column("touched_at")
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("state")
