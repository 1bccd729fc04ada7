"""Scan packages: every stored inventory's packages, one row each, so "which artifacts hold
this package" is answered for packages with no advisory too.

Inventories stored before this revision are indexed here by decoding them (the stored
format is zlib-compressed JSON, format version 1; read inline so this revision does not
depend on code that may change after it).

Revision ID: 0012
Revises: 0011
"""

import json
import zlib
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

DIGEST = sa.String(160)
_BATCH = 500


def upgrade() -> None:
    packages = op.create_table(
        "scan_packages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("digest", DIGEST, nullable=False),
        sa.Column("ecosystem", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("purl", sa.String(1024), nullable=False),
        sa.Column("purl_name", sa.String(1024), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("layer", DIGEST, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_scan_packages_digest", "scan_packages", ["digest"])
    op.create_index("ix_scan_packages_purl_name", "scan_packages", ["purl_name", "digest"])
    op.create_index("ix_scan_packages_name", "scan_packages", ["ecosystem", "name"])
    _backfill(packages)


def downgrade() -> None:
    op.drop_table("scan_packages")


def _backfill(packages: sa.Table) -> None:
    inventories = sa.table("scan_inventories", sa.column("digest"), sa.column("inventory"))
    bind = op.get_bind()
    rows: list[dict[str, Any]] = []
    for digest, data in bind.execute(sa.select(inventories.c.digest, inventories.c.inventory)):
        rows.extend(_rows(digest, data))
        if len(rows) >= _BATCH:
            bind.execute(sa.insert(packages), rows)
            rows = []
    if rows:
        bind.execute(sa.insert(packages), rows)


def _rows(digest: str, data: bytes) -> list[dict[str, Any]]:
    try:
        envelope = json.loads(zlib.decompress(data))
        items = envelope["body"].get("packages", []) if envelope.get("version") == 1 else []
    except (zlib.error, ValueError, KeyError, AttributeError):
        return []  # not readable here: the next scan of the artifact stores it again
    rows = []
    for item in items:
        purl = item.get("purl", "").split("#", 1)[0].split("?", 1)[0]
        rows.append(
            {
                "digest": digest,
                "ecosystem": item["ecosystem"],
                "name": item["name"],
                "version": item["version"],
                "purl": purl,
                "purl_name": purl.rsplit("@", 1)[0],
                "path": item.get("path", ""),
                "layer": item.get("layer", ""),
            }
        )
    return rows
