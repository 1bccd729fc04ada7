"""Harbor's /scanners on a live server: registering, changing and removing adapters, ping
and health against a live adapter (a small HTTP server answering the adapter API's
metadata), one default at a time, each project's scanner, who may do what, and the
credential masked in every answer and encrypted in the database file."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.mgmt.harbor_schema import check
from tests.scan.scanning import new_user
from tests.scan.stub_adapters import metadata_adapter, running
from tests.servers import ADMIN_PASSWORD, Portside

ADMIN = ("admin", ADMIN_PASSWORD)
API = "/api/v2.0"
BUILTIN = "portside-builtin"
SECRET = "adapter-key-" + uuid.uuid4().hex


_Adapter = metadata_adapter(SECRET, "Stub", "Tests", "0.1")


@pytest.fixture(scope="module")
def adapter() -> Iterator[str]:
    with running(_Adapter) as url:
        yield url


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    started = Portside(data_dir=tmp_path_factory.mktemp("scanners") / "data", open_registry=False).start()
    try:
        yield started
    finally:
        started.stop()


def api(server: Portside, who: tuple[str, str] | None = ADMIN) -> httpx.Client:
    return httpx.Client(base_url=server.url + API, auth=who, timeout=30)


def _user(server: Portside, name: str) -> tuple[str, str]:
    return new_user(server, name)


def _registration(adapter: str, name: str) -> dict[str, object]:
    return {
        "name": name,
        "url": adapter,
        "description": "a stub adapter",
        "auth": "X-ScannerAdapter-API-Key",
        "access_credential": SECRET,
    }


def _database(server: Portside) -> Path:
    found = sorted(Path(server.data_dir).rglob("*.db"))
    assert found, f"no SQLite file under {server.data_dir}"
    return found[0]


def test_crud_ping_default_and_masking(server: Portside, adapter: str) -> None:
    name = f"stub-{uuid.uuid4().hex[:6]}"
    with api(server) as client:
        assert client.post("/scanners/ping", json=_registration(adapter, name)).status_code == 200
        wrong = client.post("/scanners/ping", json={**_registration(adapter, name), "access_credential": "nope"})
        assert wrong.status_code == 400 and "wrong API key" in wrong.text
        assert client.post("/scanners", json={**_registration(adapter, name), "url": "not a url"}).status_code == 400

        made = client.post("/scanners", json=_registration(adapter, name))
        assert made.status_code == 201, made.text
        scanner_id = made.headers["Location"].rsplit("/", 1)[-1]
        assert client.post("/scanners", json=_registration(adapter, name)).status_code == 409
        assert client.post("/scanners", json={**_registration(adapter, name + "x")}).status_code == 409

        listed = client.get("/scanners")
        assert listed.status_code == 200
        by_id = {s["uuid"]: s for s in listed.json()}
        assert int(listed.headers["X-Total-Count"]) == len(by_id)
        assert by_id[BUILTIN]["is_default"] and not by_id[scanner_id]["is_default"]
        check(listed.json(), "ScannerRegistration", array=True)
        ours = by_id[scanner_id]
        assert ours["health"] == "healthy" and ours["vendor"] == "Tests" and ours["adapter"] == "Stub"
        assert ours["access_credential"] == "*****"
        assert SECRET not in listed.text

        metadata = client.get(f"/scanners/{scanner_id}/metadata")
        assert metadata.status_code == 200 and metadata.json()["scanner"]["name"] == "Stub"
        check(metadata.json(), "ScannerAdapterMetadata")

        # The masked credential sent back keeps the stored one: health stays good.
        shown = client.get(f"/scanners/{scanner_id}").json()
        changed = {
            **_registration(adapter, name),
            "description": "changed",
            "access_credential": shown["access_credential"],
        }
        assert client.put(f"/scanners/{scanner_id}", json=changed).status_code == 200
        assert client.get(f"/scanners/{scanner_id}").json()["description"] == "changed"
        assert client.get(f"/scanners/{scanner_id}/metadata").status_code == 200

        assert client.patch(f"/scanners/{scanner_id}", json={"is_default": True}).status_code == 200
        defaults = [s["uuid"] for s in client.get("/scanners").json() if s["is_default"]]
        assert defaults == [scanner_id]
        assert client.patch(f"/scanners/{BUILTIN}", json={"is_default": True}).status_code == 200
        defaults = [s["uuid"] for s in client.get("/scanners").json() if s["is_default"]]
        assert defaults == [BUILTIN]

        assert client.delete(f"/scanners/{BUILTIN}").status_code == 400
        assert client.get(f"/scanners/{uuid.uuid4()}").status_code == 404

    with sqlite3.connect(_database(server)) as db:
        stored = db.execute("SELECT access_credential FROM scanner_registrations WHERE uuid = ?", (scanner_id,))
        encrypted = stored.fetchone()[0]
    assert encrypted and SECRET not in encrypted
    assert SECRET.encode() not in _database(server).read_bytes()

    with api(server) as client:
        assert client.delete(f"/scanners/{scanner_id}").status_code == 200
        assert client.get(f"/scanners/{scanner_id}").status_code == 404


def test_permissions_and_project_scanner(server: Portside, adapter: str) -> None:
    project = f"scn{uuid.uuid4().hex[:8]}"
    owner = _user(server, f"a{project}")
    guest = _user(server, f"g{project}")
    with api(server) as client:
        assert (
            client.post("/projects", json={"project_name": project, "metadata": {"public": "false"}}).status_code == 201
        )
        for (username, _), role in ((owner, 1), (guest, 3)):
            r = client.post(
                f"/projects/{project}/members", json={"role_id": role, "member_user": {"username": username}}
            )
            assert r.status_code == 201, r.text
        made = client.post("/scanners", json=_registration(adapter, f"p-{project}"))
        assert made.status_code == 201, made.text
        scanner_id = made.headers["Location"].rsplit("/", 1)[-1]

    with api(server, None) as anonymous:
        assert anonymous.get("/scanners").status_code == 401
    with api(server, owner) as client:
        assert client.get("/scanners").status_code == 200
        assert client.post("/scanners", json=_registration(adapter, f"q-{project}")).status_code == 403
        assert client.patch(f"/scanners/{scanner_id}", json={"is_default": True}).status_code == 403
        assert client.delete(f"/scanners/{scanner_id}").status_code == 403
        assert client.get(f"/projects/{project}/scanner").json()["uuid"] == BUILTIN
        assert client.put(f"/projects/{project}/scanner", json={"uuid": scanner_id}).status_code == 200
        assert client.get(f"/projects/{project}/scanner").json()["uuid"] == scanner_id
        assert client.put(f"/projects/{project}/scanner", json={"uuid": "no-such"}).status_code == 404
    with api(server, guest) as client:
        assert client.put(f"/projects/{project}/scanner", json={"uuid": BUILTIN}).status_code == 403
        assert client.get(f"/projects/{project}/scanner").json()["uuid"] == scanner_id

    with api(server) as client:
        assert client.delete(f"/scanners/{scanner_id}").status_code == 200
        # A project whose scanner is gone has the default again.
        assert client.get(f"/projects/{project}/scanner").json()["uuid"] == BUILTIN
