"""Failover URLs of registries: where else the same registry answers, tried in order when
its own URL does not (the pull-through cache's upstreams).

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_failover_urls",
        sa.Column("registry_id", sa.Integer, sa.ForeignKey("registries.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("url", sa.String(1024), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("registry_failover_urls")
