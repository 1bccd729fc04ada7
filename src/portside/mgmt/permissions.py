"""What the caller may do: Harbor's `/users/current/permissions`.

A scope names a namespace: `/project/<id>` (or `/project/<name>`) or `/system`. The answer
lists the namespace's permissions the caller holds, each asked of the one policy
(`auth.policy`, over the role table in `auth.rbac` and robots' own permissions): nothing
here decides who may do what. Resources are paths (`/project/1/repository`), or relative
to the scope when asked (`repository`). A project the caller may not see, or none, holds
nothing for them, and says no more than that.
"""

from __future__ import annotations

from dataclasses import dataclass

from portside.auth.principal import Principal
from portside.auth.rbac import PROJECT_PERMISSIONS, SYSTEM_PERMISSIONS
from portside.errors import NotFound
from portside.mgmt.guard import Guard

__all__ = ["PermissionService", "Held"]

_LARGEST_ID = 2**31 - 1  # project ids are 32-bit integers; a larger one names no project


@dataclass(frozen=True, slots=True)
class Held:
    resource: str
    action: str


def _relative(resource: str, scope: str) -> str | None:
    """`resource` relative to `scope`, as Harbor's Resource.RelativeTo: None outside it."""
    if not resource.startswith(scope):
        return None
    return resource.removeprefix(scope).removeprefix("/") or "."


class PermissionService:
    def __init__(self, guard: Guard):
        self._guard = guard

    async def of(self, who: Principal, scope: str | None, relative: bool) -> list[Held]:
        self._guard.signed_in(who, "read your permissions")
        if not scope:
            return []
        held = await self._namespace(who, scope.rstrip("/"))
        if not relative:
            return [h for h in held if h.resource.startswith(scope.rstrip("/"))]
        out = []
        for h in held:
            resource = _relative(h.resource, scope.rstrip("/"))
            if resource is not None:
                out.append(Held(resource, h.action))
        return out

    async def _namespace(self, who: Principal, scope: str) -> list[Held]:
        parts = scope.split("/")  # "", "system" | "project", key, ...
        if len(parts) >= 2 and parts[0] == "" and parts[1] == "system":
            policy = self._guard.policy
            return [
                Held(f"/system/{resource}", action)
                for resource, action in sorted(SYSTEM_PERMISSIONS)
                if policy.system_permits(who, resource, action)
            ]
        if len(parts) >= 3 and parts[0] == "" and parts[1] == "project" and parts[2]:
            key = parts[2]
            numeric = key.isascii() and key.isdigit()
            if numeric and int(key) > _LARGEST_ID:
                return []
            try:
                project = await self._guard.project(int(key) if numeric else key)
            except NotFound:
                return []
            prefix = f"/project/{key}"
            return [
                Held(f"{prefix}/{resource}", action)
                for resource, action in sorted(PROJECT_PERMISSIONS)
                if await self._guard.policy.permits(who, project, resource, action)
            ]
        return []
