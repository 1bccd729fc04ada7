"""The event outbox: events written in the transaction of the change they report (scans
ended, Critical vulnerabilities found), for webhooks to deliver in order of id.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("repository", sa.String(255), nullable=True),
        sa.Column("digest", sa.String(160), nullable=True),
        sa.Column("payload", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_event_outbox_occurred_at", "event_outbox", ["occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_event_outbox_occurred_at", table_name="event_outbox")
    op.drop_table("event_outbox")
