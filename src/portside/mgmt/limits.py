"""What the management services accept: numbers and text within what the databases store.

Numbers: every id, and every other integer column (a robot's duration), is an `Integer`,
64 bits in SQLite but 32 in PostgreSQL, where a larger value in a query is an error
rather than a miss. An id outside 1..`MAX_ID` names nothing and never reaches a store.

Text: the lengths are Harbor's (its API document gives 255 for user names, emails and
project names) or, where Harbor states none or a wider one, the column's. Lengths count
characters, as PostgreSQL's `varchar(n)` does. No stored text holds NUL, which PostgreSQL
cannot store in text at all.
"""

from __future__ import annotations

from portside.errors import BadRequest

__all__ = [
    "MAX_INTEGER",
    "MAX_ID",
    "is_id",
    "check_text",
    "USERNAME",
    "EMAIL",
    "REALNAME",
    "COMMENT",
    "PROJECT_NAME",
    "METADATA_KEY",
    "METADATA_VALUE",
    "METADATA_ENTRIES",
    "ROBOT_NAME",
    "ROBOT_DESCRIPTION",
    "ROBOT_PERMISSIONS",
    "PERMISSION_WORD",
    "REPOSITORY_DESCRIPTION",
]

MAX_INTEGER = 2**31 - 1  # PostgreSQL's `integer`
MAX_ID = MAX_INTEGER

USERNAME = 255
EMAIL = 255
REALNAME = 255
COMMENT = 1024
PROJECT_NAME = 255
METADATA_KEY = 64
METADATA_VALUE = 1024
METADATA_ENTRIES = 100  # Harbor's project metadata has about twenty keys
ROBOT_NAME = 255  # the full name, robot$<project>+<name>
ROBOT_DESCRIPTION = 1024
ROBOT_PERMISSIONS = 100  # permissions of a robot, and accesses of each permission
PERMISSION_WORD = 255  # a permission's kind, namespace, resource or action
# The column is unbounded text; a repository's description is prose (often Markdown), so
# this is generous, and it keeps a listing's page of descriptions a reasonable size.
REPOSITORY_DESCRIPTION = 65_535


def is_id(value: int) -> bool:
    """Whether `value` can be the id of a stored row."""
    return 1 <= value <= MAX_ID


def check_text(field: str, value: str, limit: int) -> str:
    """`value`, or BadRequest naming `field` and `limit` when it is longer or holds NUL."""
    if len(value) > limit:
        raise BadRequest(f"{field} must be at most {limit} characters long (it has {len(value)})")
    if "\0" in value:
        raise BadRequest(f"{field} must not contain NUL characters")
    return value
