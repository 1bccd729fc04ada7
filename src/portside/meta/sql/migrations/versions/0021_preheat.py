"""P2P preheat: the P2P systems (instances) Portside asks to fetch images ahead of pulls,
projects' preheat policies, their executions and tasks, and how far the scan-completed
preheats have read the event outbox. An instance's secret is
encrypted (sql/preheat.py).

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def _times() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("creation_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "p2p_instances",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("vendor", sa.String(32), nullable=False),
        sa.Column("endpoint", sa.String(1024), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("auth_mode", sa.String(16), nullable=False),
        sa.Column("auth_key", sa.String(1024), nullable=False),
        sa.Column("auth_secret", sa.Text, nullable=False),  # Fernet token (sql/secrets.py)
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("is_default", sa.Boolean, nullable=False),
        sa.Column("insecure", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
        *_times(),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "preheat_policies",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.project_id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("provider_id", sa.Integer, sa.ForeignKey("p2p_instances.id"), nullable=False),
        sa.Column("filters", sa.Text, nullable=False),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("extra_attrs", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("owner_kind", sa.String(16), nullable=False),
        sa.Column("owner_id", sa.Integer, nullable=False),
        *_times(),
        sa.UniqueConstraint("project_id", "name", name="uq_preheat_policy_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "preheat_executions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("policy_id", sa.Integer, sa.ForeignKey("preheat_policies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_message", sa.Text, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("extra_attrs", sa.Text, nullable=False),
        sa.Column("stop_requested", sa.Boolean, nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_preheat_executions_policy", "preheat_executions", ["policy_id", "id"])
    op.create_table(
        "preheat_tasks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "execution_id",
            sa.Integer,
            sa.ForeignKey("preheat_executions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_message", sa.Text, nullable=False),
        sa.Column("run_count", sa.Integer, nullable=False),
        sa.Column("extra_attrs", sa.Text, nullable=False),
        sa.Column("log", sa.Text, nullable=False),
        *_times(),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_preheat_tasks_execution", "preheat_tasks", ["execution_id", "id"])
    op.create_table(
        "preheat_cursors",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("preheat_cursors")
    op.drop_index("ix_preheat_tasks_execution", table_name="preheat_tasks")
    op.drop_table("preheat_tasks")
    op.drop_index("ix_preheat_executions_policy", table_name="preheat_executions")
    op.drop_table("preheat_executions")
    op.drop_table("preheat_policies")
    op.drop_table("p2p_instances")
