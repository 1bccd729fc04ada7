"""Scanner registrations: the external scanner adapters Portside may hand artifacts to, as
Harbor's /scanners, beside the built-in scanner. The adapter's credential is stored
encrypted (meta/sql/scanners.py); exactly one registration is the default.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "scanner_registrations",
        sa.Column("uuid", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("url", sa.String(1024), nullable=False, unique=True),
        sa.Column("auth", sa.String(32), nullable=False),
        sa.Column("access_credential", sa.Text, nullable=False),  # encrypted; "" when none
        sa.Column("skip_cert_verify", sa.Boolean, nullable=False),
        sa.Column("use_internal_addr", sa.Boolean, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("is_default", sa.Boolean, nullable=False),
        sa.Column("creation_time", WHEN, nullable=False),
        sa.Column("update_time", WHEN, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("scanner_registrations")
