"""Replication (Harbor's /replication API) between real registries over loopback HTTP,
each with auth: Portside (token auth) → CNCF Distribution (Debian's `docker-registry`,
htpasswd), Distribution → Portside (pull), and Portside → Portside. The copies are the copy
engine's; these tests are about policies, triggers, filters, naming, retries and statuses."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from portside.remote import referrers
from portside.remote.transfer import list_tags, manifest_digest
from tests.e2e.clients import Podman
from tests.e2e.images import busybox_layout
from tests.e2e.test_copy import DIST_PASSWORD, DIST_USER, HtpasswdDistribution, Peer, push_layout
from tests.mgmt.harbor_schema import check
from tests.servers import ADMIN_PASSWORD, Portside

pytestmark = pytest.mark.e2e

# Failed tasks come back quickly here: 0.5 s, then 1 s at most between runs.
_FAST = {
    "PORTSIDE_REPLICATION_POLL_SECONDS": "0.2",
    "PORTSIDE_REPLICATION_RETRY_SECONDS": "0.5",
    "PORTSIDE_REPLICATION_RETRY_MAX_SECONDS": "1",
    "PORTSIDE_REPLICATION_ATTEMPTS": "60",
}


@dataclass
class Site:
    server: Portside
    peer: Peer

    def api(self, user: str = "admin", password: str = ADMIN_PASSWORD) -> httpx.Client:
        return httpx.Client(base_url=f"{self.server.url}/api/v2.0", auth=(user, password), timeout=30.0)


@dataclass
class World:
    central: Site
    edge: Site
    dist: HtpasswdDistribution
    dist_peer: Peer
    dist_id: int  # the Distribution registry, as stored at central
    edge_id: int  # the edge Portside, as stored at central


def _registry(api: httpx.Client, name: str, kind: str, url: str, user: str, password: str) -> int:
    made = api.post(
        "/registries",
        json={
            "name": name,
            "type": kind,
            "url": url,
            "insecure": True,
            "credential": {"type": "basic", "access_key": user, "access_secret": password},
        },
    )
    assert made.status_code == 201, made.text
    return int(made.headers["Location"].rsplit("/", 1)[1])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("replication")
    central = Portside(data_dir=root / "central" / "data", open_registry=False, env=dict(_FAST)).start()
    edge = Portside(data_dir=root / "edge" / "data", open_registry=False).start()
    dist = HtpasswdDistribution(data_dir=root / "dist" / "data").start()
    assert isinstance(central, Portside) and isinstance(edge, Portside) and isinstance(dist, HtpasswdDistribution)
    c = Site(central, Peer("portside", central.host, central.port, "admin", ADMIN_PASSWORD, "library"))
    e = Site(edge, Peer("portside", edge.host, edge.port, "admin", ADMIN_PASSWORD, "library"))
    dist_peer = Peer("distribution", dist.host, dist.port, DIST_USER, DIST_PASSWORD, "mirror")
    with c.api() as api:
        dist_id = _registry(api, "dist", "docker-registry", dist.url, DIST_USER, DIST_PASSWORD)
        edge_id = _registry(api, "edge", "harbor", edge.url, "admin", ADMIN_PASSWORD)
    yield World(c, e, dist, dist_peer, dist_id, edge_id)
    for server in (central, edge, dist):
        server.stop()


def _policy(api: httpx.Client, **fields: Any) -> int:
    body = {"override": True, "enabled": True, "trigger": {"type": "manual"}, **fields}
    made = api.post("/replication/policies", json=body)
    assert made.status_code == 201, made.text
    return int(made.headers["Location"].rsplit("/", 1)[1])


def _run(api: httpx.Client, policy_id: int) -> int:
    started = api.post("/replication/executions", json={"policy_id": policy_id})
    assert started.status_code == 201, started.text
    return int(started.headers["Location"].rsplit("/", 1)[1])


def _until(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _ended(api: httpx.Client, execution_id: int, timeout: float = 60.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = api.get(f"/replication/executions/{execution_id}").json()
        return None if body["status"] == "InProgress" else body

    ended: dict[str, Any] = _until(done, f"execution {execution_id}", timeout)
    return ended


def _tags(peer: Peer, repo: str) -> list[str]:
    async def work() -> list[str]:
        async with peer.client() as registry:
            try:
                return sorted(await list_tags(registry, repo))
            except Exception:  # noqa: BLE001 (not there yet)
                return []

    return asyncio.run(work())


def _digest(peer: Peer, repo: str, reference: str) -> str | None:
    async def work() -> str | None:
        async with peer.client() as registry:
            return await manifest_digest(registry, repo, reference)

    return asyncio.run(work())


def _push(site_or_peer: Peer, repo: str, tmp: Path, tags: list[str], marker: str) -> str:
    layout, image = busybox_layout(tmp, tag=tags[0], marker=marker)
    asyncio.run(push_layout(site_or_peer, repo, layout.root, {image.manifest.digest: tags[1:]}))
    return image.manifest.digest


def test_push_to_distribution_carries_every_tag(world: World, tmp_path: Path) -> None:
    central, dist = world.central.peer, world.dist_peer
    digest = _push(central, "library/team/app", tmp_path / "a", ["v1", "v1.0", "latest"], "multi-tag")
    with world.central.api() as api:
        policy = _policy(
            api,
            name="to-dist",
            dest_registry={"id": world.dist_id},
            dest_namespace="mirror",
            dest_namespace_replace_count=1,
            filters=[{"type": "name", "value": "library/team/**"}],
        )
        dry = api.get(f"/replication/policies/{policy}/dry-run").json()
        assert dry["total"] == 1 and dry["artifacts"][0]["dst_repository"] == "mirror/team/app"
        execution = _ended(api, _run(api, policy))
        assert execution["status"] == "Succeed", execution
        assert (execution["total"], execution["succeed"], execution["failed"]) == (1, 1, 0)
        tasks = api.get(f"/replication/executions/{execution['id']}/tasks").json()
        assert tasks[0]["status"] == "Succeed" and tasks[0]["operation"] == "copy"
        assert tasks[0]["src_resource"] == "library/team/app:[latest,v1,v1.0]"
        log = api.get(f"/replication/executions/{execution['id']}/tasks/{tasks[0]['id']}/log")
        assert log.headers["content-type"].startswith("text/plain") and "copied library/team/app@" in log.text
        shown = api.get(f"/replication/policies/{policy}").json()
        check(shown, "ReplicationPolicy")
        check(api.get("/replication/policies").json(), "ReplicationPolicy", array=True)
        check(api.get("/replication/executions").json(), "ReplicationExecution", array=True)
        check(tasks, "ReplicationTask", array=True)
        assert shown["src_registry"]["id"] == 0 and shown["src_registry"]["name"] == "Local"
        assert (
            shown["dest_registry"]["id"] == world.dist_id
            and shown["dest_registry"]["credential"]["access_secret"] == "*****"
        )
        assert api.delete(f"/registries/{world.dist_id}").status_code == 412  # in use
    assert _tags(dist, "mirror/team/app") == ["latest", "v1", "v1.0"]
    assert _digest(dist, "mirror/team/app", "v1.0") == digest


def test_tag_filters_and_replace_count_zero(world: World, tmp_path: Path) -> None:
    central, dist = world.central.peer, world.dist_peer
    _push(central, "library/filtered", tmp_path / "a", ["v2", "v2-rc1"], "tag filters")
    _push(central, "library/filtered", tmp_path / "b", ["dev"], "not selected")
    with world.central.api() as api:
        policy = _policy(
            api,
            name="filtered",
            dest_registry={"id": world.dist_id},
            dest_namespace="zero",
            dest_namespace_replace_count=0,
            filters=[
                {"type": "name", "value": "library/filtered"},
                {"type": "tag", "decoration": "matches", "value": "v*"},
                {"type": "tag", "decoration": "excludes", "value": "*-rc*"},
                {"type": "resource", "value": "image"},
            ],
        )
        assert _ended(api, _run(api, policy))["status"] == "Succeed"
    assert _tags(dist, "zero/library/filtered") == ["v2"]


def test_event_based_push_replicates_within_seconds(world: World, tmp_path: Path) -> None:
    central, dist = world.central.peer, world.dist_peer
    with world.central.api() as api:
        _policy(
            api,
            name="events",
            dest_registry={"id": world.dist_id},
            dest_namespace="events",
            trigger={"type": "event_based"},
            filters=[{"type": "name", "value": "library/ev-*"}],
        )
    start = time.monotonic()
    _push(central, "library/ev-app", tmp_path / "a", ["t1", "t2"], "event")
    _until(lambda: _tags(dist, "events/ev-app") == ["t1", "t2"], "the event's copy with both tags", 20)
    assert time.monotonic() - start < 20
    with world.central.api() as api:
        executions = api.get("/replication/executions", params={"trigger": "event_based"}).json()
        assert executions and executions[0]["trigger"] == "event_based"

    # An SBOM added later, pushed by digest as an OCI 1.1 referrer, follows its image there
    # (Distribution has no referrers API: the fallback tag lists it).
    subject = _digest(central, "library/ev-app", "t1")
    assert subject is not None
    referrer = asyncio.run(_push_referrer(central, "library/ev-app", subject))
    fallback = "sha256-" + subject.split(":", 1)[1]
    _until(lambda: fallback in _tags(dist, "events/ev-app"), "the referrer at the destination", 20)

    async def listed() -> list[str]:
        async with dist.client() as registry:
            return [d["digest"] for d in await referrers.listed(registry, "events/ev-app", subject)]

    assert referrer in asyncio.run(listed())


async def _push_referrer(peer: Peer, repo: str, subject: str) -> str:
    """An SBOM-like artifact naming `subject`, pushed by digest."""
    async with peer.client() as registry:
        size = len((await registry.manifest(repo, subject)).body)
        empty = await registry.push_blob(repo, b"{}")
        layer = await registry.push_blob(repo, b'{"sbom": "of ev-app"}')
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": "application/vnd.example.sbom+json",
                "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
                "layers": [{"mediaType": "application/vnd.example.sbom+json", "digest": layer, "size": 21}],
                "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject, "size": size},
            }
        ).encode()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        await registry.put_manifest(repo, digest, body, "application/vnd.oci.image.manifest.v1+json")
        return digest


def test_target_down_then_back_catches_up(world: World, tmp_path: Path) -> None:
    central, dist = world.central.peer, world.dist_peer
    with world.central.api() as api:
        _policy(
            api,
            name="outage",
            dest_registry={"id": world.dist_id},
            dest_namespace="outage",
            trigger={"type": "event_based"},
            filters=[{"type": "name", "value": "library/down-*"}],
        )
        world.dist.stop()
        try:
            digests = [
                _push(central, f"library/down-{n}", tmp_path / str(n), [f"x{n}", "latest"], f"outage {n}")
                for n in range(3)
            ]

            def retried() -> bool:
                found = api.get("/replication/executions", params={"trigger": "event_based"}).json()
                mine = [e for e in found[:3]]
                return (
                    len(mine) == 3
                    and all(e["status"] == "InProgress" for e in mine)
                    and all(
                        t["attempts"] >= 2
                        for e in mine
                        for t in api.get(f"/replication/executions/{e['id']}/tasks").json()
                    )
                )

            _until(retried, "the tasks to fail and be retried while the target is down", 30)
            failing = api.get("/replication/executions", params={"trigger": "event_based"}).json()[0]
            task = api.get(f"/replication/executions/{failing['id']}/tasks").json()[0]
            log = api.get(f"/replication/executions/{failing['id']}/tasks/{task['id']}/log").text
            assert "trying again" in log
        finally:
            world.dist.start()
    for n, digest in enumerate(digests):
        _until(lambda n=n: _tags(dist, f"outage/down-{n}") == ["latest", f"x{n}"], f"down-{n} after the outage", 30)
        assert _digest(dist, f"outage/down-{n}", f"x{n}") == digest


def test_replicate_deletion(world: World, tmp_path: Path) -> None:
    central, dist = world.central.peer, world.dist_peer
    with world.central.api() as api:
        _policy(
            api,
            name="deletions",
            dest_registry={"id": world.dist_id},
            dest_namespace="gone",
            trigger={"type": "event_based"},
            replicate_deletion=True,
            filters=[{"type": "name", "value": "library/del"}],
        )
    digest = _push(central, "library/del", tmp_path / "a", ["v1"], "deleted later")
    _until(lambda: _tags(dist, "gone/del") == ["v1"], "the copy before the deletion", 20)

    async def delete() -> None:
        async with central.client() as registry:
            path = f"/v2/library/del/manifests/{digest}"
            response = await registry.request("DELETE", path, "library/del", {}, actions="delete")
            assert response.status_code == 202, response.text

    asyncio.run(delete())
    _until(lambda: _digest(dist, "gone/del", digest) is None, "the deletion at the destination", 20)


def test_pull_from_distribution_into_portside(world: World, tmp_path: Path, podman: Podman) -> None:
    dist, central = world.dist_peer, world.central.peer
    digest = _push(dist, "upstream/tools/box", tmp_path / "a", ["1.0", "stable"], "pulled and run")
    with world.central.api() as api:
        policy = _policy(
            api,
            name="from-dist",
            src_registry={"id": world.dist_id},
            dest_namespace="pulled",
            dest_namespace_replace_count=2,
            filters=[{"type": "name", "value": "upstream/tools/*"}],
        )
        assert _ended(api, _run(api, policy))["status"] == "Succeed"
        assert api.get("/projects/pulled").status_code == 200  # made for the pull, as Harbor does
    assert _tags(central, "pulled/box") == ["1.0", "stable"]
    assert _digest(central, "pulled/box", "stable") == digest
    ref = f"{central.host}/pulled/box:stable"
    podman("pull", "--tls-verify=false", "--creds", central.creds, ref)
    assert podman("run", "--rm", ref, "cat", "/etc/marker").stdout.strip() == "pulled and run"


def test_portside_to_portside(world: World, tmp_path: Path) -> None:
    central, edge = world.central.peer, world.edge.peer
    digest = _push(central, "library/p2p", tmp_path / "a", ["a", "b", "c"], "to the edge")
    with world.central.api() as api:
        policy = _policy(
            api,
            name="to-edge",
            dest_registry={"id": world.edge_id},
            dest_namespace="library",
            dest_namespace_replace_count=1,
            filters=[{"type": "name", "value": "library/p2p"}],
        )
        assert _ended(api, _run(api, policy))["status"] == "Succeed"
    assert _tags(edge, "library/p2p") == ["a", "b", "c"]
    assert _digest(edge, "library/p2p", "b") == digest
    with world.central.api() as api:  # a project the edge lacks is made there, as Harbor does
        policy = _policy(
            api,
            name="to-edge-fresh",
            dest_registry={"id": world.edge_id},
            dest_namespace="fresh",
            filters=[{"type": "name", "value": "library/p2p"}],
        )
        assert _ended(api, _run(api, policy))["status"] == "Succeed"
    with world.edge.api() as edge_api:
        assert edge_api.get("/projects/fresh").json()["metadata"]["public"] == "false"
    assert _tags(edge, "fresh/p2p") == ["a", "b", "c"]


def test_scheduled_trigger_fires(world: World, tmp_path: Path) -> None:
    central, dist = world.central.peer, world.dist_peer
    _push(central, "library/timed", tmp_path / "a", ["v1"], "scheduled")
    when = datetime.now(UTC) + timedelta(seconds=3)
    cron = f"{when.second} {when.minute} {when.hour} * * *"
    with world.central.api() as api:
        policy = _policy(
            api,
            name="timed",
            dest_registry={"id": world.dist_id},
            dest_namespace="timed",
            trigger={"type": "scheduled", "trigger_settings": {"cron": cron}},
            filters=[{"type": "name", "value": "library/timed"}],
        )
        assert api.get(f"/replication/policies/{policy}").json()["trigger"]["trigger_settings"]["cron"] == cron

        def fired() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = api.get("/replication/executions", params={"policy_id": policy}).json()
            return found

        execution = _until(fired, "the scheduled execution", 20)[0]
        assert execution["trigger"] == "scheduled"
        assert _ended(api, execution["id"])["status"] == "Succeed"
    assert _tags(dist, "timed/timed") == ["v1"]


def test_stop_an_execution(world: World, tmp_path: Path) -> None:
    central = world.central.peer
    for n in range(3):
        _push(central, f"library/stopme-{n}", tmp_path / str(n), ["v1"], f"stop {n}")
    with world.central.api() as api:
        policy = _policy(
            api,
            name="stopped",
            dest_registry={"id": world.dist_id},
            filters=[{"type": "name", "value": "library/stopme-*"}],
        )
        world.dist.stop()  # the tasks fail and wait to be tried again, so they are there to stop
        try:
            execution_id = _run(api, policy)
            _until(lambda: api.get(f"/replication/executions/{execution_id}").json()["total"] == 3, "the listing", 20)
            assert api.put(f"/replication/executions/{execution_id}").status_code == 200
            ended = _ended(api, execution_id, 20)
        finally:
            world.dist.start()
        assert ended["status"] == "Stopped" and ended["stopped"] == 3 and ended["in_progress"] == 0, ended
        time.sleep(2)  # nothing runs again once the target is back
        assert api.get(f"/replication/executions/{execution_id}").json()["stopped"] == 3
    assert _tags(world.dist_peer, "library/stopme-0") == []


def test_policy_rules_and_admins_only(world: World) -> None:
    with world.central.api() as api:
        both = api.post(
            "/replication/policies",
            json={"name": "bad", "src_registry": {"id": world.dist_id}, "dest_registry": {"id": world.dist_id}},
        )
        assert both.status_code == 400
        neither = api.post("/replication/policies", json={"name": "bad"})
        assert neither.status_code == 400
        too_many = api.post(
            "/replication/policies",
            json={
                "name": "bad",
                "dest_registry": {"id": world.dist_id},
                "dest_namespace": "n",
                "dest_namespace_replace_count": -2,
            },
        )
        assert too_many.status_code in (400, 422)
        _policy(api, name="dup", dest_registry={"id": world.dist_id})
        again = api.post("/replication/policies", json={"name": "dup", "dest_registry": {"id": world.dist_id}})
        assert again.status_code == 409
        made = api.post(
            "/users",
            json={"username": "dev", "email": "dev@example.org", "realname": "Dev", "password": "Dev-Pass-123"},
        )
        assert made.status_code == 201, made.text
    with world.central.api("dev", "Dev-Pass-123") as dev:
        assert dev.get("/replication/policies").status_code == 403
        assert dev.get("/replication/executions").status_code == 403
        assert dev.post("/replication/executions", json={"policy_id": 1}).status_code == 403
    with httpx.Client(base_url=f"{world.central.server.url}/api/v2.0") as anonymous:
        assert anonymous.get("/replication/policies").status_code == 401


def test_cli(world: World, tmp_path: Path) -> None:
    central = world.central.peer
    _push(central, "library/cli-app", tmp_path / "a", ["one", "two"], "by the command line")
    creds = ("--url", world.central.server.url, "-u", "admin", "--password", ADMIN_PASSWORD)
    policy = _portside(
        "replication",
        "create",
        "cli",
        "--to",
        "dist",
        "--name-filter",
        "library/cli-*",
        "--dest-namespace",
        "cli",
        *creds,
    ).stdout.strip()
    assert policy.isdigit()
    assert f"{policy}\tcli\tpush to dist\tmanual" in _portside("replication", "ls", *creds).stdout
    ran = _portside("replication", "run", "cli", "--wait", *creds).stdout.splitlines()
    execution = ran[0]
    assert "\tSucceed\tmanual\t" in ran[1] and "total 1, succeed 1, failed 0" in ran[1]
    assert ran[1] in _portside("replication", "executions", "cli", *creds).stdout
    tasks = _portside("replication", "executions", "--tasks", execution, *creds).stdout
    assert "Succeed\tcopy\tlibrary/cli-app:[one,two] -> cli/cli-app:[one,two]" in tasks
    assert "copied library/cli-app@" in _portside("replication", "log", execution, *creds).stdout
    assert _tags(world.dist_peer, "cli/cli-app") == ["one", "two"]


def _portside(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "portside", *args], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise AssertionError(f"portside {' '.join(args)} → {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_an_outage_longer_than_the_retries_still_loses_nothing(tmp_path: Path) -> None:
    """Two attempts only: the task fails for good while the target is down, and runs anew
    once the registries' background check finds the target healthy again."""
    env = {**_FAST, "PORTSIDE_REPLICATION_ATTEMPTS": "2", "PORTSIDE_REGISTRY_HEALTH_SECONDS": "10"}
    server = Portside(data_dir=tmp_path / "central" / "data", open_registry=False, env=env).start()
    dist = HtpasswdDistribution(data_dir=tmp_path / "dist" / "data").start()
    assert isinstance(server, Portside) and isinstance(dist, HtpasswdDistribution)
    try:
        site = Site(server, Peer("portside", server.host, server.port, "admin", ADMIN_PASSWORD, "library"))
        peer = Peer("distribution", dist.host, dist.port, DIST_USER, DIST_PASSWORD, "mirror")
        with site.api() as api:
            registry_id = _registry(api, "dist", "docker-registry", dist.url, DIST_USER, DIST_PASSWORD)
            _policy(api, name="long-outage", dest_registry={"id": registry_id}, trigger={"type": "event_based"})
            dist.stop()
            try:
                digest = _push(site.peer, "library/long", tmp_path / "img", ["v1", "v1.1"], "long outage")

                def failed() -> dict[str, Any] | None:
                    found: list[dict[str, Any]] = api.get("/replication/executions").json()
                    return found[0] if found and found[0]["status"] == "Failed" else None

                execution = _until(failed, "the task to run out of attempts", 30)
            finally:
                dist.start()
            _until(lambda: _tags(peer, "library/long") == ["v1", "v1.1"], "the catch-up after the outage", 90)
            assert _digest(peer, "library/long", "v1.1") == digest
            ended = _ended(api, execution["id"])
            assert ended["status"] == "Succeed" and ended["succeed"] == 1, ended
            task = api.get(f"/replication/executions/{execution['id']}/tasks").json()[0]
            log = api.get(f"/replication/executions/{execution['id']}/tasks/{task['id']}/log").text
            assert "no attempts left" in log and "answers again: tried anew" in log
    finally:
        server.stop()
        dist.stop()
