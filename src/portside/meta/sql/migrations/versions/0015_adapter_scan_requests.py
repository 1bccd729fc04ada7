"""Scan requests of the scanner adapter API: Portside scanning for a Harbor (or another
Portside) that registered it as its scanner. One row per accepted request, its state and
result, so any process of any instance answers for the report; finished ones are purged
after a day. The registry's Authorization header is not stored.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "adapter_scan_requests",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("registry_url", sa.String(1024), nullable=False),
        sa.Column("repository", sa.String(1024), nullable=False),
        sa.Column("digest", sa.String(160), nullable=False),
        sa.Column("tag", sa.String(255), nullable=False),
        sa.Column("mime_type", sa.String(255), nullable=False),
        sa.Column("capabilities", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),  # pending, running, done, failed
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("findings", sa.Text, nullable=True),  # JSON, once done
        sa.Column("inventory", sa.LargeBinary, nullable=True),  # the encoded inventory, once done
        sa.Column("generated_at", WHEN, nullable=True),
        sa.Column("created", WHEN, nullable=False),
        sa.Column("updated", WHEN, nullable=False),  # the holding process's last heartbeat
    )
    op.create_index("ix_adapter_scan_requests_status", "adapter_scan_requests", ["status", "updated"])


def downgrade() -> None:
    op.drop_table("adapter_scan_requests")
