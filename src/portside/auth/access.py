"""Access requests and the policy that grants them.

An `Access` is what a request needs (Docker token auth's scope grammar:
`repository:<name>:pull`); an `Authorizer` grants all of them or raises
`Unauthorized` / `Denied`. Every `/v2` request passes through one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Access", "Credentials", "Grant", "Authorizer", "OpenRegistry"]


@dataclass(frozen=True, slots=True)
class Access:
    resource_type: str  # "repository" or "registry"
    name: str  # repository name, or "catalog"
    action: str  # "pull", "push", "delete", "*"

    @classmethod
    def pull(cls, repo: str) -> Access:
        return cls("repository", repo, "pull")

    @classmethod
    def push(cls, repo: str) -> Access:
        return cls("repository", repo, "push")

    @classmethod
    def delete(cls, repo: str) -> Access:
        return cls("repository", repo, "delete")

    @classmethod
    def catalog(cls) -> Access:
        return cls("registry", "catalog", "*")

    def scope(self) -> str:
        return f"{self.resource_type}:{self.name}:{self.action}"


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the client presented: an Authorization header's scheme and value, if any, and
    the address it came from (for login throttling and the audit log)."""

    scheme: str | None = None
    value: str | None = None
    client: str = ""


@dataclass(frozen=True, slots=True)
class Grant:
    subject: str | None
    granted: tuple[Access, ...]
    # For the catalog: the projects whose repositories the caller may list (None: all).
    visible_projects: frozenset[str] | None = None
    # The id of each project the grant is for, by name: writes check in their transaction
    # that the name still means this project (meta/stores.py). None: no projects (an open
    # registry), so writes are bound to none.
    project_ids: Mapping[str, int] | None = None
    # The accounts' generation the grant was checked at (None: not read), so what else the
    # request keeps per generation (projects' pull policies) need not read it again.
    generation: int | None = None

    def project_id(self, repository: str) -> int | None:
        """The id of `repository`'s project as granted (None without access control)."""
        if self.project_ids is None:
            return None
        return self.project_ids.get(repository.split("/", 1)[0])


class Authorizer(Protocol):
    async def authorize(self, credentials: Credentials, wanted: Sequence[Access]) -> Grant:
        """Grant every access in `wanted`, or raise `Unauthorized` (who are you?) or `Denied`."""


class OpenRegistry:
    """Every client may pull, push and delete anywhere: the policy of a registry run
    without accounts (for a private network or a CI cache). Access control replaces it."""

    async def authorize(self, credentials: Credentials, wanted: Sequence[Access]) -> Grant:
        return Grant(None, tuple(wanted))
