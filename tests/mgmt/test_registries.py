"""Registries (endpoints) through the API in-process: Harbor's shapes, paging and `q`, the
errors Harbor answers, the secret encrypted at rest and never sent back, system
administrators only (and system robots given `registry` permissions), and the audit log.
Reaching real registries is tests/mgmt/test_registries_live.py's subject."""

from __future__ import annotations

import logging
import sqlite3

import pytest

from portside.config import Settings
from tests.mgmt.conftest import Harbor
from tests.mgmt.harbor_schema import check
from tests.servers import free_port

SECRET = "s3cret-Registry-Password-7f2b"


def _registry(name: str, url: str | None = None, **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "type": "docker-registry",
        "url": url or f"http://127.0.0.1:{free_port()}",
        "credential": {"type": "basic", "access_key": "puller", "access_secret": SECRET},
        **extra,
    }


async def _create(harbor: Harbor, body: dict[str, object]) -> int:
    r = await harbor.call("POST", "/registries", json=body)
    assert r.status_code == 201, r.text
    return int(r.headers["Location"].rsplit("/", 1)[1])


async def test_create_read_list_update_delete(harbor: Harbor) -> None:
    rid = await _create(harbor, _registry("central", description="the centre", insecure=True))
    r = await harbor.call("GET", f"/registries/{rid}")
    assert r.status_code == 200
    body = r.json()
    check(body, "Registry")
    assert body["name"] == "central" and body["type"] == "docker-registry" and body["insecure"] is True
    assert body["credential"] == {"type": "basic", "access_key": "puller", "access_secret": "*****"}
    assert body["status"] == "unknown"  # not checked yet: the check runs in the background

    for n in range(3):
        await _create(harbor, _registry(f"edge-{n}"))
    r = await harbor.call("GET", "/registries", params={"page": 1, "page_size": 2})
    check(r.json(), "Registry", array=True)
    assert r.headers["X-Total-Count"] == "4" and 'rel="next"' in r.headers["Link"]
    assert [x["name"] for x in r.json()] == ["central", "edge-0"]
    r = await harbor.call("GET", "/registries", params={"q": "name=~edge", "sort": "-name"})
    assert [x["name"] for x in r.json()] == ["edge-2", "edge-1", "edge-0"]
    r = await harbor.call("GET", "/registries", params={"name": "dge-1"})
    assert [x["name"] for x in r.json()] == ["edge-1"]

    # RegistryUpdate: only what is given changes; the masked secret sent back keeps it.
    r = await harbor.call("PUT", f"/registries/{rid}", json={"description": "moved", "access_secret": "*****"})
    assert r.status_code == 200, r.text
    body = (await harbor.call("GET", f"/registries/{rid}")).json()
    assert body["description"] == "moved" and body["credential"]["access_secret"] == "*****"
    assert body["url"].startswith("http://127.0.0.1:")
    r = await harbor.call("PUT", f"/registries/{rid}", json={"access_key": "", "credential_type": ""})
    assert r.status_code == 200
    body = (await harbor.call("GET", f"/registries/{rid}")).json()
    assert body["credential"] == {"type": "", "access_key": "", "access_secret": ""}

    assert await harbor.status("DELETE", f"/registries/{rid}") == 200
    assert await harbor.status("GET", f"/registries/{rid}") == 404
    assert await harbor.status("DELETE", f"/registries/{rid}") == 404
    assert await harbor.status("PUT", f"/registries/{rid}", json={"name": "x"}) == 404


async def test_errors_name_the_field(harbor: Harbor) -> None:
    await _create(harbor, _registry("taken"))
    r = await harbor.call("POST", "/registries", json=_registry("taken"))
    assert r.status_code == 409 and "taken" in r.json()["errors"][0]["message"]
    cases = {
        "name": _registry(""),
        "type": {**_registry("t"), "type": "quay-but-not"},
        "url": _registry("u", url="ftp://example.com"),
        "credential.type": {**_registry("c"), "credential": {"type": "kerberos", "access_key": "a"}},
        "ca_certificate": _registry("ca", ca_certificate="not a certificate"),
    }
    for field, body in cases.items():
        r = await harbor.call("POST", "/registries", json=body)
        assert r.status_code == 400, (field, r.text)
        assert r.json()["errors"][0]["message"].startswith(field), (field, r.text)
    other = await _create(harbor, _registry("other"))
    r = await harbor.call("PUT", f"/registries/{other}", json={"name": "taken"})
    assert r.status_code == 409
    assert await harbor.status("GET", "/registries/0") == 400  # no id is 0
    r = await harbor.call("POST", "/registries", json={**_registry("long"), "name": "n" * 256})
    assert r.status_code == 400 and "name" in r.json()["errors"][0]["message"]
    r = await harbor.call("POST", "/registries", json=_registry("nul\u0000"))
    assert r.status_code == 400 and r.json()["errors"][0]["message"].startswith("name: NUL")
    assert await harbor.status("GET", "/registries/999999") == 404
    # A ping needs a type and a URL, or a stored registry's id.
    r = await harbor.call("POST", "/registries/ping", json={"url": "http://127.0.0.1:1"})
    assert r.status_code == 400 and r.json()["errors"][0]["message"].startswith("type")
    assert await harbor.status("POST", "/registries/ping", json={"id": 999999}) == 404


async def test_a_registry_in_use_cannot_be_deleted(harbor: Harbor) -> None:
    rid = await _create(harbor, _registry("used"))
    service = harbor.client._transport.app  # type: ignore[attr-defined]
    registries = _management(service).registries
    assert registries is not None

    async def used_by(endpoint: object) -> str | None:
        return "the proxy project hub"

    registries.in_use.append(used_by)
    r = await harbor.call("DELETE", f"/registries/{rid}")
    assert r.status_code == 412 and "the proxy project hub" in r.text
    registries.in_use.clear()
    assert await harbor.status("DELETE", f"/registries/{rid}") == 200


def _management(app: object) -> object:
    """The management services of the built app (the test reaches the composed service to
    register an `in_use` hook, as a proxy or replication module will)."""
    from portside.http.api.services import ManagementServices

    seen: set[int] = set()
    stack = [app]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        state = getattr(node, "state", None)
        found = getattr(state, "management", None)
        if isinstance(found, ManagementServices):
            return found
        for attr in ("app", "routes", "router", "_app", "middleware_stack"):
            child = getattr(node, attr, None)
            if isinstance(child, list):
                stack.extend(child)
            elif child is not None:
                stack.append(child)
    raise AssertionError("no management services in the app")


async def test_secret_is_encrypted_at_rest_and_never_shown(
    harbor: Harbor, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rid = await _create(harbor, _registry("vault"))
    await harbor.call("POST", "/registries/ping", json={"id": rid})  # nothing listens: unhealthy
    await harbor.call("PUT", f"/registries/{rid}", json={"access_secret": SECRET + "-2"})
    with sqlite3.connect(settings.data_dir / "portside.db") as db:
        row = db.execute("SELECT access_key, access_secret FROM registries WHERE id = ?", (rid,)).fetchone()
        everything = "\n".join(str(r) for r in db.execute("SELECT * FROM registries"))
    assert row[0] == "puller"
    assert row[1].startswith("gAAAA")  # a Fernet token
    assert SECRET not in everything
    for path in ("/registries", f"/registries/{rid}", "/audit-logs"):
        assert SECRET not in (await harbor.call("GET", path)).text
    assert SECRET not in caplog.text


async def test_only_system_administrators_and_registry_robots(harbor: Harbor) -> None:
    rid = await _create(harbor, _registry("guarded"))
    alice, _ = await harbor.user("alice")
    for method, path, body in (
        ("GET", "/registries", None),
        ("POST", "/registries", _registry("mine")),
        ("GET", f"/registries/{rid}", None),
        ("PUT", f"/registries/{rid}", {"description": "x"}),
        ("DELETE", f"/registries/{rid}", None),
        ("POST", "/registries/ping", {"id": rid}),
        ("GET", f"/registries/{rid}/info", None),
        ("GET", "/replication/adapters", None),
        ("GET", "/replication/adapterinfos", None),
    ):
        assert await harbor.status(method, path, who=alice, json=body) == 403, (method, path)
        assert await harbor.status(method, path, who=None, json=body) == 401, (method, path)

    robot = {
        "name": "replicator",
        "level": "system",
        "duration": -1,
        "permissions": [{"kind": "system", "namespace": "/", "access": [{"resource": "registry", "action": "*"}]}],
    }
    r = await harbor.call("POST", "/robots", json=robot)
    assert r.status_code == 201, r.text
    bot = (r.json()["name"], r.json()["secret"])
    assert await harbor.status("GET", "/registries", who=bot) == 200
    made = await harbor.call("POST", "/registries", who=bot, json=_registry("by-robot"))
    assert made.status_code == 201
    r = await harbor.call("GET", "/users/current/permissions", who=bot, params={"scope": "/system"})
    assert {"resource": "/system/registry", "action": "create"} in r.json()


async def test_adapters_info_and_audit(harbor: Harbor) -> None:
    r = await harbor.call("GET", "/replication/adapters")
    assert set(r.json()) >= {"docker-registry", "harbor", "docker-hub"}
    infos = (await harbor.call("GET", "/replication/adapterinfos")).json()
    for name in ("docker-registry", "harbor", "docker-hub"):
        check(infos[name], "RegistryProviderInfo")
    assert infos["docker-hub"]["endpoint_pattern"] == {
        "endpoint_type": "EndpointPatternTypeFix",
        "endpoints": [{"key": "hub.docker.com", "value": "https://hub.docker.com"}],
    }
    hub = await _create(harbor, {"name": "hub", "type": "docker-hub", "url": "docker.io"})
    body = (await harbor.call("GET", f"/registries/{hub}")).json()
    assert body["url"] == "https://hub.docker.com" and body["credential"]["access_secret"] == ""
    r = await harbor.call("POST", "/registries", json={"name": "hub2", "type": "docker-hub", "url": "https://quay.io"})
    assert r.status_code == 400 and r.json()["errors"][0]["message"].startswith("url")
    info = (await harbor.call("GET", f"/registries/{hub}/info")).json()
    check(info, "RegistryInfo")
    assert info["type"] == "docker-hub" and {f["type"] for f in info["supported_resource_filters"]} == {"name", "tag"}
    harbor_type = await _create(harbor, {"name": "peer", "type": "harbor", "url": "https://peer.example/"})
    info = (await harbor.call("GET", f"/registries/{harbor_type}/info")).json()
    assert "label" in {f["type"] for f in info["supported_resource_filters"]}
    assert (await harbor.call("GET", f"/registries/{harbor_type}")).json()["url"] == "https://peer.example"

    await harbor.call("DELETE", f"/registries/{hub}")
    logs = (await harbor.call("GET", "/audit-logs", params={"q": "resource_type=registry"})).json()
    assert [(x["operation"], x["resource"]) for x in logs][:3] == [
        ("delete", "hub"),
        ("create", "peer"),
        ("create", "hub"),
    ]


async def test_the_background_round_checks_only_what_is_due(harbor: Harbor) -> None:
    registries = _management(harbor.client._transport.app).registries  # type: ignore[attr-defined]
    assert registries is not None
    first = await _create(harbor, _registry("first"))
    await _create(harbor, _registry("second"))
    assert await registries.check_due() == 2
    assert await registries.check_due() == 0  # both checked within the interval
    shown = (await harbor.call("GET", f"/registries/{first}")).json()
    assert shown["status"] == "unhealthy" and "unreachable" in shown["last_error"]
    # A change drops what was found: the next round checks it again, and it alone.
    await harbor.call("PUT", f"/registries/{first}", json={"description": "changed"})
    assert (await harbor.call("GET", f"/registries/{first}")).json()["status"] == "unknown"
    assert await registries.check_due() == 1
