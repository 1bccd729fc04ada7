"""Indexes for the listings of artifacts and of an artifact's tags.

A repository's artifacts are listed newest first by default, and each row of the list
shows an artifact's first few tags by name. Without these indexes both were sorts: every
artifact of the repository (the whole manifest rows, payloads included) sorted to show a
page of 20, and each row's tags found by walking the repository's tags in name order until
the artifact had enough, which for an artifact with fewer tags than asked for is all of the
repository's tags. With them, a page is a walk along (repository, push time) and a row's
tags the next entries of (repository, digest, name). The second replaces the index on
(repository, digest), which it starts with.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_repo_manifests_repo_pushed", "repo_manifests", ["repo_id", sa.text("pushed_at DESC"), "digest"])
    op.create_index("ix_tags_repo_digest_name", "tags", ["repo_id", "digest", "name"])
    op.drop_index("ix_tags_repo_digest", table_name="tags")


def downgrade() -> None:
    op.create_index("ix_tags_repo_digest", "tags", ["repo_id", "digest"])
    op.drop_index("ix_tags_repo_digest_name", table_name="tags")
    op.drop_index("ix_repo_manifests_repo_pushed", table_name="repo_manifests")
