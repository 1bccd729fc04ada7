"""Fixtures of the Harbor-parity suite: one live Portside per stack with access control on,
shared by the session, and a small Harbor client over plain httpx.

Every test makes its own projects and accounts with names no other test uses (`Live.name`),
so the tests share the server without seeing each other's content.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.api import oci
from tests.servers import ADMIN_PASSWORD, Portside
from tests.stacks import Backing

API = "/api/v2.0"
ADMIN = ("admin", ADMIN_PASSWORD)
PASSWORD = "Passw0rd-parity"

# Harbor's role ids.
PROJECT_ADMIN, DEVELOPER, GUEST, MAINTAINER, LIMITED_GUEST = 1, 2, 3, 4, 5


@dataclass
class Robot:
    name: str
    secret: str
    id: int

    @property
    def creds(self) -> tuple[str, str]:
        return (self.name, self.secret)


class Live:
    """The live server through /api/v2.0 and /v2, as the admin or anyone else."""

    def __init__(self, server: Portside):
        self.server = server

    @property
    def url(self) -> str:
        return self.server.url

    @staticmethod
    def name(prefix: str) -> str:
        """A project, user or repository name no other test uses."""
        return f"{prefix}{uuid.uuid4().hex[:8]}"

    def client(self, who: tuple[str, str] | None = ADMIN) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=who, timeout=60.0)

    def api(self, method: str, path: str, who: tuple[str, str] | None = ADMIN, **kwargs: Any) -> httpx.Response:
        with self.client(who) as c:
            return c.request(method, API + path, **kwargs)

    def ok(self, method: str, path: str, who: tuple[str, str] | None = ADMIN, **kwargs: Any) -> Any:
        """The JSON of a 2xx answer (asserted)."""
        r = self.api(method, path, who, **kwargs)
        assert r.is_success, f"{method} {path} -> {r.status_code} {r.text}"
        return r.json() if r.content else None

    def user(self, prefix: str = "u") -> tuple[tuple[str, str], int]:
        name = self.name(prefix)
        r = self.api("POST", "/users", json={"username": name, "password": PASSWORD, "email": f"{name}@example.com"})
        assert r.status_code == 201, r.text
        return (name, PASSWORD), int(r.headers["Location"].rsplit("/", 1)[1])

    def project(self, name: str, public: bool = False) -> int:
        r = self.api("POST", "/projects", json={"project_name": name, "metadata": {"public": str(public).lower()}})
        assert r.status_code == 201, r.text
        return int(r.headers["Location"].rsplit("/", 1)[1])

    def member(self, project: str, username: str, role: int) -> None:
        r = self.api(
            "POST", f"/projects/{project}/members", json={"role_id": role, "member_user": {"username": username}}
        )
        assert r.status_code == 201, r.text

    def robot(self, project: str, *actions: str, resource: str = "repository") -> Robot:
        """A project robot with `actions` on `resource` (and artifact read/list to browse)."""
        access = [{"resource": resource, "action": a} for a in actions]
        access += [{"resource": "artifact", "action": "read"}, {"resource": "artifact", "action": "list"}]
        r = self.api(
            "POST",
            "/robots",
            json={
                "name": self.name("r"),
                "level": "project",
                "duration": -1,
                "permissions": [{"kind": "project", "namespace": project, "access": access}],
            },
        )
        assert r.status_code == 201, r.text
        body = r.json()
        return Robot(body["name"], body["secret"], body["id"])

    def push(self, repo: str, tag: str | None = "v1", **kwargs: Any) -> oci.Manifest:
        """An image pushed by the admin through /v2 (Basic auth)."""
        with self.client() as c:
            return oci.push_image(c, repo, tag, **kwargs)

    def push_manifest(self, repo: str, manifest: oci.Manifest, tag: str | None = None) -> str:
        with self.client() as c:
            return oci.push_manifest(c, repo, manifest, tag)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, stack: str, backing: Backing) -> Iterator[Portside]:
    server = Portside(
        data_dir=tmp_path_factory.mktemp(f"parity-{stack}") / "data",
        env={**backing.env(stack), "PORTSIDE_LOGIN_FAILURE_LIMIT": "100000"},
        open_registry=False,
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def live(live_server: Portside) -> Live:
    return Live(live_server)
