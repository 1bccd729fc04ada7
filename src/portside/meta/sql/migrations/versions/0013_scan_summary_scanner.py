"""Scan summaries name the scanner that produced them: empty for the built-in scanner,
else the external adapter's registration and its name, vendor and version (JSON), so a
report says whose findings it holds and re-matching leaves an adapter's findings alone.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scan_summaries") as batch:
        batch.add_column(sa.Column("scanner", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scan_summaries") as batch:
        batch.drop_column("scanner")
