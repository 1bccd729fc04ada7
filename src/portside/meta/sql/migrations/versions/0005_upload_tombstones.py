"""Upload sessions without rows until their first bytes; tombstones for ended ones.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        # Completed and cancelled sessions leave their row behind, marked, so their ids
        # (which prove themselves without a row) stay unknown until they expire.
        batch.add_column(sa.Column("ended", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.execute("DELETE FROM uploads WHERE ended")
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("ended")
