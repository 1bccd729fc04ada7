"""The files of CVE exports (Harbor's `/export/cve`): each export job's CSV, compressed, kept
beside its job until it expires. Who asked is the job's kind (`cve:u<user id>`); the row
names it again so a download is checked without reading the job.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cve_export_files",
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("owner", sa.String(32), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),  # the CSV, gzip-compressed
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_cve_export_files_created", "cve_export_files", ["created"])


def downgrade() -> None:
    op.drop_table("cve_export_files")
