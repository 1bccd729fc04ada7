"""What a manifest GET asks before it answers: may this pull have this manifest? The rules
(a project's vulnerability policy, later its trust policy) live above the registry; the
registry only holds the one gate it is given, and asks nothing when it has none."""

from __future__ import annotations

from typing import Protocol

from portside.auth.access import Grant
from portside.meta.stores import ManifestRecord
from portside.oci.digest import Digest

__all__ = ["PullGate"]


class PullGate(Protocol):
    async def check(self, grant: Grant, repository: str, record: ManifestRecord) -> None:
        """Return when the pull is allowed; raise `PolicyViolation` (412) saying which rule
        refused it and what would satisfy it."""

    async def check_blob(self, grant: Grant, repository: str, digest: Digest) -> None:
        """The same for a blob: refused only when every image of `repository` that holds it
        is refused, so a pull of a blocked image's layers is no way around its policy."""
