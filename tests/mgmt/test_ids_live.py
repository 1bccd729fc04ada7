"""No id is handed out twice, over HTTP on a live server of each stack: the newest project,
user, robot, member, repository or GC run deleted, the next one gets a new id, and a new
project never shows a deleted one's audit records."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from portside.config import Settings
from portside.meta.sql.engine import create_engine
from tests.api import oci
from tests.servers import ADMIN_PASSWORD, Portside
from tests.stacks import Backing
from tests.upkeep.conftest import run_job

API = "/api/v2.0"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, stack: str, backing: Backing) -> Iterator[Portside]:
    running = Portside(
        data_dir=tmp_path_factory.mktemp(f"ids-{stack}") / "data", open_registry=False, env=backing.env(stack)
    )
    running.start()
    yield running
    running.stop()


@pytest.fixture
def admin(server: Portside) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, auth=("admin", ADMIN_PASSWORD), timeout=60.0) as client:
        yield client


def _created_id(response: httpx.Response) -> int:
    assert response.status_code == 201, oci.error_text(response)
    return int(response.headers["location"].rsplit("/", 1)[1])


def _create_project(admin: httpx.Client, name: str) -> int:
    return _created_id(admin.post(f"{API}/projects", json={"project_name": name, "metadata": {"public": "false"}}))


def _logs(admin: httpx.Client, project: str) -> list[dict[str, Any]]:
    r = admin.get(f"{API}/projects/{project}/logs", params={"page_size": 100})
    assert r.status_code == 200, oci.error_text(r)
    return list(r.json())


def _eventually(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.1)


def test_a_new_project_gets_a_new_id_and_none_of_the_old_ones_records(admin: httpx.Client) -> None:
    old = _create_project(admin, "ids-old")  # the newest project
    oci.push_image(admin, "ids-old/app", "v1")
    _eventually(lambda: any("ids-old/app" in r["resource"] for r in _logs(admin, "ids-old")), "the push's record")
    assert admin.delete(f"{API}/projects/ids-old/repositories/app").status_code == 200
    assert admin.delete(f"{API}/projects/ids-old").status_code == 200

    new = _create_project(admin, "ids-new")
    assert new > old
    assert admin.get(f"{API}/projects/{new}").json()["name"] == "ids-new"
    assert [r for r in _logs(admin, "ids-new") if "ids-old" in r["resource"]] == []


def test_a_new_user_gets_a_new_id(admin: httpx.Client) -> None:
    def create(name: str) -> int:
        return _created_id(
            admin.post(f"{API}/users", json={"username": name, "password": "Passw0rd-ids", "email": f"{name}@x.io"})
        )

    old = create("ids-user-old")
    assert admin.delete(f"{API}/users/{old}").status_code == 200
    new = create("ids-user-new")
    assert new > old
    assert admin.get(f"{API}/users/{new}").json()["username"] == "ids-user-new"


def test_a_new_robot_gets_a_new_id(admin: httpx.Client) -> None:
    def create(name: str) -> int:
        r = admin.post(f"{API}/robots", json={"name": name, "level": "system", "duration": -1, "permissions": []})
        assert r.status_code == 201, oci.error_text(r)
        return int(r.json()["id"])

    old = create("ids-old")
    assert admin.delete(f"{API}/robots/{old}").status_code == 200
    new = create("ids-new")
    assert new > old
    assert admin.get(f"{API}/robots/{new}").json()["name"] == "robot$ids-new"


def test_a_new_member_gets_a_new_id(admin: httpx.Client) -> None:
    _create_project(admin, "ids-members")
    r = admin.post(f"{API}/users", json={"username": "ids-member", "password": "Passw0rd-ids", "email": "m@x.io"})
    assert r.status_code == 201, oci.error_text(r)

    def add() -> int:
        body = {"role_id": 3, "member_user": {"username": "ids-member"}}
        return _created_id(admin.post(f"{API}/projects/ids-members/members", json=body))

    old = add()
    assert admin.delete(f"{API}/projects/ids-members/members/{old}").status_code == 200
    new = add()
    assert new > old
    assert admin.get(f"{API}/projects/ids-members/members/{new}").json()["entity_name"] == "ids-member"


def test_a_repository_pushed_again_gets_a_new_id_and_so_do_its_artifacts(admin: httpx.Client) -> None:
    _create_project(admin, "ids-repos")

    def pushed() -> tuple[int, int]:
        oci.push_image(admin, "ids-repos/app", "v1")
        repo = admin.get(f"{API}/projects/ids-repos/repositories/app")
        artifact = admin.get(f"{API}/projects/ids-repos/repositories/app/artifacts/v1")
        assert repo.status_code == 200 and artifact.status_code == 200, oci.error_text(artifact)
        return int(repo.json()["id"]), int(artifact.json()["id"])

    old_repo, old_artifact = pushed()  # the newest repository
    assert admin.delete(f"{API}/projects/ids-repos/repositories/app").status_code == 200
    new_repo, new_artifact = pushed()
    assert new_repo > old_repo
    assert new_artifact != old_artifact


def _delete_jobs(server: Portside) -> None:
    """Prune the job history by hand, as an operator might: what the API cannot delete."""
    settings = Settings(data_dir=server.data_dir, database_url=server.env.get("PORTSIDE_DATABASE_URL"))

    async def prune() -> None:
        engine = create_engine(settings.sqlalchemy_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("DELETE FROM jobs"))
        finally:
            await engine.dispose()

    asyncio.run(prune())


def test_a_gc_run_gets_a_new_id_even_after_the_history_is_pruned(server: Portside, admin: httpx.Client) -> None:
    first = run_job(admin, "gc", {"delete_untagged": False})
    _delete_jobs(server)
    second = run_job(admin, "gc", {"delete_untagged": False})
    assert second["id"] > first["id"]
    assert admin.get(f"{API}/system/gc/{first['id']}").status_code == 404
