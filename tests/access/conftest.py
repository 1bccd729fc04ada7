"""Fixtures of the access-control suite.

`acl` is one Portside server with access control on, shared by the session, holding the
cast of `accounts.py` and a few images pushed by the admin. Servers with other settings
(login throttling with a tiny limit, admins creating projects on push) are started by the
modules that need them. The real-client fixtures (dockerd, podman) are the e2e suite's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.access.accounts import ADMIN, HIDDEN, PRINCIPALS, PROJECTS, Seeded, seed_accounts
from tests.api import oci
from tests.servers import Portside

# Every account here fails logins on purpose (disabled and expired robots, wrong
# passwords); the shared server must not lock 127.0.0.1 out. Throttling is tested on a
# server of its own (test_throttling.py).
SHARED_ENV = {"PORTSIDE_LOGIN_FAILURE_LIMIT": "100000", "PORTSIDE_LOG_REQUESTS": "true"}


@dataclass
class AclServer:
    server: Portside
    seeded: Seeded
    seed_digests: dict[str, str]  # "project/seed" → manifest digest
    delete_targets: dict[tuple[str, str], tuple[str, str]]  # (principal, project) → (repo, digest)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir

    def admin(self) -> httpx.Client:
        """The admin with Basic credentials directly on /v2 (what the tests check against)."""
        return httpx.Client(base_url=self.url, timeout=60.0, auth=(ADMIN.username or "", ADMIN.password or ""))

    def repositories(self) -> set[str]:
        with self.admin() as c:
            r = c.get("/v2/_catalog", params={"n": "100000"})
        assert r.status_code == 200, oci.error_text(r)
        return set(r.json()["repositories"] or [])

    def tags(self, repo: str) -> list[str] | None:
        """The tags of `repo`, or None when the registry does not know the repository."""
        with self.admin() as c:
            r = c.get(f"/v2/{repo}/tags/list")
        if r.status_code == 404:
            return None
        assert r.status_code == 200, oci.error_text(r)
        return list(r.json().get("tags") or [])

    def has_manifest(self, repo: str, reference: str) -> bool:
        with self.admin() as c:
            r = c.head(f"/v2/{repo}/manifests/{reference}", headers={"Accept": oci.ACCEPT_ALL})
        assert r.status_code in (200, 404), f"HEAD {repo}:{reference} -> {r.status_code}"
        return r.status_code == 200


def start_portside(data_dir: Path, env: dict[str, str]) -> Portside:
    return Portside(data_dir=data_dir, open_registry=False, env=dict(env)).start()  # type: ignore[return-value]


@pytest.fixture(scope="session")
def acl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AclServer]:
    server = start_portside(tmp_path_factory.mktemp("acl") / "data", SHARED_ENV)
    try:
        seeded = seed_accounts(server.data_dir)
        digests: dict[str, str] = {}
        targets: dict[tuple[str, str], tuple[str, str]] = {}
        with httpx.Client(base_url=server.url, timeout=60.0, auth=(ADMIN.username or "", ADMIN.password or "")) as c:
            for project in (*PROJECTS, HIDDEN):
                digests[f"{project}/seed"] = oci.push_image(c, f"{project}/seed", "v1").digest
            for key in PRINCIPALS:
                for project in PROJECTS:
                    repo = f"{project}/del-{key}"
                    targets[(key, project)] = (repo, oci.push_image(c, repo, "v1").digest)
        yield AclServer(server, seeded, digests, targets)
    finally:
        server.stop()
