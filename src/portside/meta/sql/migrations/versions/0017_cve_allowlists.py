"""Harbor's CVE allowlists: the system's and each project's, which the vulnerability pull
policy leaves out until they expire.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cve_allowlists",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(32), nullable=False, unique=True),  # "system" or "p<project id>"
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.project_id", ondelete="CASCADE"), nullable=True),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("cve_ids", sa.Text, nullable=False),  # a JSON array
        sa.Column("creation_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("cve_allowlists")
