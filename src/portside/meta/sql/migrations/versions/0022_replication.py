"""Replication: policies, their executions, and the tasks that copy (or delete) one
artifact each, with their attempts, leases and logs.

Revision ID: 0022
Revises: 0021
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replication_policies",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("src_registry_id", sa.Integer, nullable=True),
        sa.Column("dest_registry_id", sa.Integer, nullable=True),
        sa.Column("dest_namespace", sa.String(255), nullable=False),
        sa.Column("dest_namespace_replace_count", sa.Integer, nullable=False),
        sa.Column("filters", sa.Text, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("cron", sa.String(64), nullable=False),
        sa.Column("next_run", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replicate_deletion", sa.Boolean, nullable=False),
        sa.Column("override", sa.Boolean, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("speed", sa.Integer, nullable=False),
        sa.Column("copy_by_chunk", sa.Boolean, nullable=False),
        sa.Column("single_active_replication", sa.Boolean, nullable=False),
        sa.Column("creation_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "replication_executions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "policy_id", sa.Integer, sa.ForeignKey("replication_policies.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_text", sa.Text, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("listed", sa.Boolean, nullable=False),
        sa.Column("stop_requested", sa.Boolean, nullable=False),
        sa.Column("listing_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("listing_failed", sa.Boolean, nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_replication_executions_policy", "replication_executions", ["policy_id", "id"])
    op.create_table(
        "replication_tasks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "execution_id",
            sa.Integer,
            sa.ForeignKey("replication_executions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("policy_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("resource_type", sa.String(16), nullable=False),
        sa.Column("src_repository", sa.String(1024), nullable=False),
        sa.Column("reference", sa.String(1024), nullable=False),
        sa.Column("dst_repository", sa.String(1024), nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("src_resource", sa.Text, nullable=False),
        sa.Column("dst_resource", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("unreachable", sa.Boolean, nullable=False),
        sa.Column("next_attempt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("worker", sa.String(64), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("log", sa.Text, nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_replication_tasks_execution", "replication_tasks", ["execution_id", "id"])
    op.create_index("ix_replication_tasks_due", "replication_tasks", ["status", "next_attempt"])


def downgrade() -> None:
    op.drop_table("replication_tasks")
    op.drop_table("replication_executions")
    op.drop_table("replication_policies")
