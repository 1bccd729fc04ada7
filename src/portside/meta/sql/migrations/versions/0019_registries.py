"""Registries: the other registries Portside talks to (Harbor's /registries), with their
credential's secret encrypted and the health the background check last found.

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("url", sa.String(1024), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("insecure", sa.Boolean, nullable=False),
        sa.Column("ca_certificate", sa.Text, nullable=True),
        sa.Column("credential_type", sa.String(16), nullable=False),
        sa.Column("access_key", sa.String(1024), nullable=False),
        sa.Column("access_secret", sa.Text, nullable=False),  # Fernet token (sql/registries.py)
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("creation_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("registries")
