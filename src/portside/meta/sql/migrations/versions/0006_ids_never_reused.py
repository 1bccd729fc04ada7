"""Ids are never handed out twice: SQLite tables rebuilt with AUTOINCREMENT.

SQLite gives a new row the largest id in its table plus one, unless the table was made
AUTOINCREMENT: deleting the newest project and creating another gave the new one the old
id, and with it the old project's audit records. AUTOINCREMENT keeps the highest id ever
given in `sqlite_sequence` and never goes below it. SQLite cannot add it to a table in
place, so each table is rebuilt (copied, dropped, renamed; foreign keys are off while a
migration runs and checked before it commits, see migrate.py), and its sequence is then
seeded with the highest id still to be seen anywhere: for projects, that includes the
project ids of audit records whose project is gone, so not even the ids of rows deleted
before this upgrade come back where anything still names them.

PostgreSQL needs nothing: its serial columns draw from sequences that never go back (not
on rollback, not on delete), so no id was ever given twice there.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Table → its id column, and where else ids of it are written (table, column) that may
# outlive its rows.
_TABLES: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "repositories": ("id", ()),
    "users": ("user_id", (("projects", "owner_id"), ("project_members", "user_id"), ("web_sessions", "user_id"))),
    "projects": (
        "project_id",
        (
            ("audit_logs", "project_id"),
            ("project_members", "project_id"),
            ("project_metadata", "project_id"),
            ("robots", "project_id"),
            ("quotas", "project_id"),
        ),
    ),
    "project_members": ("id", ()),
    "robots": ("id", ()),
    "audit_logs": ("id", ()),
    "jobs": ("id", ()),
}


def _rebuild(autoincrement: bool) -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass  # the copy is the change: the new table is made with the option


def _seed(table: str, column: str, others: tuple[tuple[str, str], ...]) -> None:
    """Start the table's sequence after the highest id of it seen anywhere."""
    highest = " UNION ALL ".join(f"SELECT MAX({c}) AS id FROM {t}" for t, c in ((table, column), *others))
    seen = f"(SELECT COALESCE(MAX(id), 0) FROM ({highest}))"
    op.execute(f"UPDATE sqlite_sequence SET seq = MAX(seq, {seen}) WHERE name = '{table}'")
    op.execute(
        f"INSERT INTO sqlite_sequence (name, seq) SELECT '{table}', {seen}"
        f" WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = '{table}')"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _rebuild(autoincrement=True)
    for table, (column, others) in _TABLES.items():
        _seed(table, column, others)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _rebuild(autoincrement=False)  # a dropped table takes its row of sqlite_sequence along
