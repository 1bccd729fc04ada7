"""Principal generations (tokens end with a credential change); single-use TOTP codes.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Tokens carry their principal's generation; existing principals start at 0, and the
    # tokens issued before this version carry none, so they are refused and fetched anew.
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("generation", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger, nullable=True))
    with op.batch_alter_table("robots") as batch:
        batch.add_column(sa.Column("generation", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("robots") as batch:
        batch.drop_column("generation")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("totp_last_step")
        batch.drop_column("generation")
