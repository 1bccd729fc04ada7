"""Access control: users, projects, members, robots, audit log; repository details.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)
# Project names are listed in byte order, as on SQLite (see 0001).
PROJECT_NAME = sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql")
# The audit log gains a row per pull: PostgreSQL's 32-bit serial would run out. SQLite's
# ids are 64-bit already, and only INTEGER PRIMARY KEY makes them automatic there.
AUDIT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("repositories") as batch:
        batch.add_column(sa.Column("description", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("pull_count", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("updated_at", WHEN, nullable=True))
    with op.batch_alter_table("repo_manifests") as batch:
        batch.add_column(sa.Column("pulled_at", WHEN, nullable=True))
    op.create_table(
        "users",
        sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(255), nullable=False, unique=True),
        sa.Column("email", sa.String(255), nullable=True, unique=True),
        sa.Column("realname", sa.String(255), nullable=False),
        sa.Column("comment", sa.String(1024), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("sysadmin", sa.Boolean, nullable=False),
        sa.Column("totp_secret", sa.String(64), nullable=True),
        sa.Column("creation_time", WHEN, nullable=False),
        sa.Column("update_time", WHEN, nullable=False),
    )
    op.create_table(
        "projects",
        sa.Column("project_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", PROJECT_NAME, nullable=False, unique=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.user_id"), nullable=False),
        sa.Column("creation_time", WHEN, nullable=False),
        sa.Column("update_time", WHEN, nullable=False),
    )
    op.create_table(
        "project_metadata",
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.project_id", ondelete="CASCADE"), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(1024), nullable=False),
    )
    op.create_table(
        "project_members",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.project_id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False),
        sa.Column("role_id", sa.Integer, nullable=False),
        sa.Column("creation_time", WHEN, nullable=False),
        sa.Column("update_time", WHEN, nullable=False),
        sa.UniqueConstraint("project_id", "user_id", name="uq_project_members_project_user"),
    )
    op.create_table(
        "robots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("description", sa.String(1024), nullable=False),
        sa.Column("secret_hash", sa.String(255), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.project_id", ondelete="CASCADE"), nullable=True),
        sa.Column("duration", sa.Integer, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("permissions", sa.Text, nullable=False),
        sa.Column("creator", sa.String(255), nullable=False),
        sa.Column("creation_time", WHEN, nullable=False),
        sa.Column("update_time", WHEN, nullable=False),
    )
    op.create_table(
        "audit_logs",
        sa.Column("id", AUDIT_ID, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.Integer, nullable=True),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("resource", sa.String(1024), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("success", sa.Boolean, nullable=False),
        sa.Column("op_time", WHEN, nullable=False),
    )
    op.create_index("ix_audit_logs_project_time", "audit_logs", ["project_id", "op_time"])
    op.create_index("ix_audit_logs_time", "audit_logs", ["op_time"])


def downgrade() -> None:
    for table in ("audit_logs", "robots", "project_members", "project_metadata", "projects", "users"):
        op.drop_table(table)
    with op.batch_alter_table("repo_manifests") as batch:
        batch.drop_column("pulled_at")
    with op.batch_alter_table("repositories") as batch:
        batch.drop_column("updated_at")
        batch.drop_column("pull_count")
        batch.drop_column("description")
