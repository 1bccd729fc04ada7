"""Harbor's project roles and what each may do: the one role → permission table.

Resources and actions follow Harbor's RBAC names (`repository:pull`, `artifact:delete`, ...).
A system administrator may do everything; anonymous callers may pull and read public
projects only (`public_permissions`).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "PROJECT_ADMIN",
    "DEVELOPER",
    "GUEST",
    "MAINTAINER",
    "LIMITED_GUEST",
    "ROLE_NAMES",
    "ROLE_PERMISSIONS",
    "PROJECT_PERMISSIONS",
    "SYSTEM_PERMISSIONS",
    "role_permits",
    "public_permits",
]

PROJECT_ADMIN, DEVELOPER, GUEST, MAINTAINER, LIMITED_GUEST = 1, 2, 3, 4, 5

ROLE_NAMES: Mapping[int, str] = {
    PROJECT_ADMIN: "projectAdmin",
    DEVELOPER: "developer",
    GUEST: "guest",
    MAINTAINER: "maintainer",
    LIMITED_GUEST: "limitedGuest",
}

Permission = tuple[str, str]


def _all(resource: str, *actions: str) -> set[Permission]:
    return {(resource, action) for action in actions}


_LIMITED_GUEST: set[Permission] = (
    _all("project", "read")
    | _all("repository", "list", "pull")
    | _all("artifact", "read", "list")
    | _all("artifact-addition", "read")
    | _all("tag", "list")
    | _all("metadata", "read")
)
_GUEST = (
    _LIMITED_GUEST
    | _all("repository", "read")
    | _all("member", "read", "list")
    | _all("log", "list")
    | _all("scan", "read")
    | _all("robot", "read", "list")
    | _all("label", "read", "list")
)
_DEVELOPER = (
    _GUEST
    | _all("repository", "push", "update")
    | _all("artifact", "create")
    | _all("tag", "create")
    | _all("label", "create")
    | _all("export-cve", "create", "read")
)
_MAINTAINER = (
    _DEVELOPER
    | _all("repository", "delete")
    | _all("artifact", "delete")
    | _all("tag", "delete")
    | _all("scan", "create", "stop")
    | _all("tag-retention", "read", "list", "create", "update", "delete", "operate")
    | _all("immutable-tag", "list", "create", "update", "delete")
    | _all("label", "update", "delete")
    | _all("preheat-policy", "read", "list")
)
_PROJECT_ADMIN = (
    _MAINTAINER
    | _all("project", "update", "delete")
    | _all("member", "create", "update", "delete")
    | _all("robot", "create", "update", "delete")
    | _all("metadata", "update", "create", "delete")
    | _all("log", "list")
    | _all("quota", "read")
    | _all("preheat-policy", "create", "read", "update", "delete", "list")
)

ROLE_PERMISSIONS: Mapping[int, frozenset[Permission]] = {
    PROJECT_ADMIN: frozenset(_PROJECT_ADMIN),
    MAINTAINER: frozenset(_MAINTAINER),
    DEVELOPER: frozenset(_DEVELOPER),
    GUEST: frozenset(_GUEST),
    LIMITED_GUEST: frozenset(_LIMITED_GUEST),
}

# Every permission a project has (what a role may be given): projectAdmin's, which holds
# every other role's.
PROJECT_PERMISSIONS: frozenset[Permission] = ROLE_PERMISSIONS[PROJECT_ADMIN]

# The system-level permissions Portside asks about (`Policy.system_permits`): system
# administrators hold them all; a system robot holds those it was given.
SYSTEM_PERMISSIONS: frozenset[Permission] = frozenset(
    _all("user", "read", "list", "create", "update", "delete")
    | _all("robot", "read", "list", "create", "update", "delete")
    | _all("audit-log", "list")
    | _all("quota", "read", "list", "update")
    | _all("garbage-collection", "read", "list", "create", "update", "stop")
    | _all("scrub", "read", "list", "create", "update", "stop")
    | _all("volumes", "read")
    | _all("system-cve-allowlist", "read", "update")
    | _all("system-trust", "read", "update")
    | _all("registry", "read", "list", "create", "update", "delete")
    # Harbor's: replication policies, and their executions (create: run; update: stop).
    | _all("replication-policy", "read", "list", "create", "update", "delete")
    | _all("replication", "read", "list", "create", "update")
    | _all("preheat-instance", "read", "list", "create", "update", "delete")
)

# What anyone, signed in or not, may do in a public project.
_PUBLIC: frozenset[Permission] = frozenset(
    _all("project", "read")
    | _all("repository", "list", "read", "pull")
    | _all("artifact", "read", "list")
    | _all("artifact-addition", "read")
    | _all("tag", "list")
    | _all("metadata", "read")
)


def role_permits(role_id: int | None, resource: str, action: str) -> bool:
    return role_id is not None and (resource, action) in ROLE_PERMISSIONS.get(role_id, frozenset())


def public_permits(resource: str, action: str) -> bool:
    return (resource, action) in _PUBLIC
