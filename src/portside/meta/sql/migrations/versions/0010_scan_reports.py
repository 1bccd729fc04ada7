"""Scan reports: each manifest's inventory, findings and their summary, and the reports of
artifacts' scans (which are also the scan queue).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)
DIGEST = sa.String(160)


def upgrade() -> None:
    op.create_table(
        "scan_inventories",
        sa.Column("digest", DIGEST, primary_key=True),
        sa.Column("inventory", sa.LargeBinary, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
    )
    op.create_table(
        "scan_summaries",
        sa.Column("digest", DIGEST, primary_key=True),
        sa.Column("severity", sa.Integer, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("fixable", sa.Integer, nullable=False),
        sa.Column("counts", sa.Text, nullable=False),
        sa.Column("db_generation", sa.BigInteger, nullable=False),
        sa.Column("matched_at", WHEN, nullable=False),
    )
    op.create_index("ix_scan_summaries_generation", "scan_summaries", ["db_generation"])
    op.create_table(
        "scan_findings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("digest", DIGEST, nullable=False),
        sa.Column("vulnerability_id", sa.String(128), nullable=False),
        sa.Column("advisory_id", sa.String(128), nullable=False),
        sa.Column("aliases", sa.Text, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("ecosystem", sa.String(32), nullable=False),
        sa.Column("package", sa.String(255), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("purl", sa.String(1024), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("layer", DIGEST, nullable=False),
        sa.Column("fixed_version", sa.String(255), nullable=True),
        sa.Column("severity", sa.Integer, nullable=False),
        sa.Column("cvss_score", sa.Float, nullable=True),
        sa.Column("cvss_vector", sa.String(255), nullable=True),
        sa.Column("cwe_ids", sa.Text, nullable=False),
        sa.Column("links", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_scan_findings_digest", "scan_findings", ["digest"])
    op.create_index("ix_scan_findings_vulnerability", "scan_findings", ["vulnerability_id", "digest"])
    op.create_index("ix_scan_findings_purl", "scan_findings", ["purl", "digest"])
    op.create_table(
        "scan_reports",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("digest", DIGEST, nullable=False),
        sa.Column("scan_type", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("stop_requested", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("sbom_digest", DIGEST, nullable=True),
        sa.Column("log", sa.Text, nullable=False, server_default=""),
        sa.Column("creation_time", WHEN, nullable=False),
        sa.Column("start_time", WHEN, nullable=True),
        sa.Column("end_time", WHEN, nullable=True),
        sa.Column("update_time", WHEN, nullable=False),
    )
    op.create_index("ix_scan_reports_artifact", "scan_reports", ["repository", "digest", "scan_type", "creation_time"])
    op.create_index("ix_scan_reports_status", "scan_reports", ["status", "creation_time"])


def downgrade() -> None:
    op.drop_table("scan_reports")
    op.drop_table("scan_findings")
    op.drop_table("scan_summaries")
    op.drop_table("scan_inventories")
