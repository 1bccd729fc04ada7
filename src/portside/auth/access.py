"""Access requests and the policy that grants them.

An `Access` is what a request needs (Docker token auth's scope grammar:
`repository:<name>:pull`); an `Authorizer` grants all of them or raises
`Unauthorized` / `Denied`. Every `/v2` request passes through one.
"""

from __future__ import annotations

from collections.abc import Sequence
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


class Authorizer(Protocol):
    async def authorize(self, credentials: Credentials, wanted: Sequence[Access]) -> Grant:
        """Grant every access in `wanted`, or raise `Unauthorized` (who are you?) or `Denied`."""


class OpenRegistry:
    """Every client may pull, push and delete anywhere: the policy of a registry run
    without accounts (for a private network or a CI cache). Access control replaces it."""

    async def authorize(self, credentials: Credentials, wanted: Sequence[Access]) -> Grant:
        return Grant(None, tuple(wanted))
