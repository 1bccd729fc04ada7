"""P2P preheat through the API in-process, against the Dragonfly manager stand-in on loopback
(tests/remote/dragonfly_server.py, which refuses any request its published API document
does not describe): instances (CRUD, ping healthy, unhealthy and with a wrong token, the
secret encrypted at rest and never sent back, one default), policies with Harbor's JSON-text
filters, trigger and extra_attrs, a manual run that posts a preheat job with the image's
URL and a pull token that really pulls the manifest from Portside, event-based preheat on
push that does not slow the push, images the project's pull policy would refuse skipped
with the reason in the task's log, executions, tasks and logs, scheduled runs through the
upkeep scheduler, and who may do what."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from portside.config import Settings
from portside.mgmt.preheat import PreheatService
from tests.mgmt.conftest import Harbor
from tests.mgmt.harbor_schema import check
from tests.mgmt.test_registries import _management
from tests.remote.dragonfly_server import DragonflyManager
from tests.servers import free_port

TOKEN = "dragonfly-personal-access-token-5e1f"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def dragonfly() -> Iterator[DragonflyManager]:
    with DragonflyManager(token=TOKEN, pending_polls=1) as manager:
        yield manager


def _service(harbor: Harbor) -> PreheatService:
    found = _management(harbor.client._transport.app).preheat  # type: ignore[attr-defined]
    assert isinstance(found, PreheatService)
    found.poll_seconds = 0.05
    return found


def _instance(name: str, endpoint: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "vendor": "dragonfly",
        "endpoint": endpoint,
        "auth_mode": "OAUTH",
        "auth_info": {"token": TOKEN},
        "enabled": True,
        **extra,
    }


async def _add_instance(harbor: Harbor, body: dict[str, Any]) -> int:
    r = await harbor.call("POST", "/p2p/preheat/instances", json=body)
    assert r.status_code == 201, r.text
    found = await harbor.call("GET", f"/p2p/preheat/instances/{body['name']}")
    return int(found.json()["id"])


def _policy(name: str, provider_id: int, trigger: str = "manual", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "provider_id": provider_id,
        "filters": json.dumps([{"type": "repository", "value": "app*"}, {"type": "tag", "value": "v1*"}]),
        "trigger": json.dumps({"type": trigger, "trigger_setting": {"cron": ""}}),
        "extra_attrs": json.dumps({"scope": "all_seed_peers", "cluster_ids": [1]}),
        "enabled": True,
        **extra,
    }


async def _finished(harbor: Harbor, path: str, timeout: float = 10.0) -> dict[str, Any]:
    """The newest execution at `path`/executions once it has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = (await harbor.call("GET", f"{path}/executions")).json()
        if found and found[0]["status"] not in ("Pending", "Running"):
            return dict(found[0])
        await asyncio.sleep(0.05)
    raise AssertionError(f"no execution of {path} ended within {timeout}s")


async def test_instances_crud_ping_and_the_secret(
    harbor: Harbor, dragonfly: DragonflyManager, settings: Settings
) -> None:
    r = await harbor.call("GET", "/p2p/preheat/providers")
    check(r.json(), "Metadata", array=True)
    assert [p["id"] for p in r.json()] == ["dragonfly", "kraken"]

    first = await _add_instance(harbor, _instance("df", dragonfly.url, default=True))
    body = (await harbor.call("GET", "/p2p/preheat/instances/df")).json()
    check(body, "Instance")
    assert body["vendor"] == "dragonfly" and body["auth_mode"] == "OAUTH" and body["default"] is True
    assert body["auth_info"] == {"token": "*****"} and body["status"] == "unknown"
    assert isinstance(body["setup_timestamp"], int) and body["id"] == first

    # Stored encrypted: the database holds no token.
    with sqlite3.connect(settings.data_dir / "portside.db") as db:
        (stored,) = db.execute("SELECT auth_secret FROM p2p_instances WHERE name = 'df'").fetchone()
    assert stored and TOKEN not in stored

    # Ping: the stored instance with its stored token; a described one; the wrong token.
    assert await harbor.status("POST", "/p2p/preheat/instances/ping", json={"id": first}) == 200
    assert await harbor.status("POST", "/p2p/preheat/instances/ping", json=_instance("new", dragonfly.url)) == 200
    dragonfly.healthy = False
    r = await harbor.call("POST", "/p2p/preheat/instances/ping", json={"id": first})
    assert r.status_code == 400 and "/healthy answered 500" in r.text
    assert (await harbor.call("GET", "/p2p/preheat/instances/df")).json()["status"] == "unhealthy"
    dragonfly.healthy = True
    gone = f"http://127.0.0.1:{free_port()}"
    r = await harbor.call("POST", "/p2p/preheat/instances/ping", json=_instance("x", gone))
    assert r.status_code == 400 and "could not be reached" in r.text

    # A second default takes over; PUT without auth_info keeps the token.
    await _add_instance(harbor, _instance("df2", dragonfly.url, default=True, auth_info={"token": "wrong"}))
    listed = (await harbor.call("GET", "/p2p/preheat/instances", params={"sort": "name"})).json()
    check(listed, "Instance", array=True)
    assert [(i["name"], i["default"]) for i in listed] == [("df", False), ("df2", True)]
    r = await harbor.call("PUT", "/p2p/preheat/instances/df", json={"description": "the fleet's", "insecure": True})
    assert r.status_code == 200, r.text
    body = (await harbor.call("GET", "/p2p/preheat/instances/df")).json()
    assert body["description"] == "the fleet's" and body["insecure"] is True and body["auth_info"] == {"token": "*****"}
    management = _management(harbor.client._transport.app)  # type: ignore[attr-defined]
    stored_instance = await management.preheat.instances.by_id(first)  # type: ignore[attr-defined]
    connection = await management.preheat.instances.connection(stored_instance)  # type: ignore[attr-defined]
    assert connection.auth_secret == TOKEN

    # Errors name the field; names are unique.
    assert (await harbor.call("POST", "/p2p/preheat/instances", json=_instance("df", dragonfly.url))).status_code == 409
    for field, bad in {
        "vendor": _instance("v", dragonfly.url, vendor="uber"),
        "endpoint": _instance("e", "ftp://x"),
        "auth_mode": _instance("a", dragonfly.url, auth_mode="KERBEROS"),
        "auth_info.username": _instance("b", dragonfly.url, auth_mode="BASIC", auth_info={"password": "p"}),
    }.items():
        r = await harbor.call("POST", "/p2p/preheat/instances", json=bad)
        assert r.status_code == 400 and r.json()["errors"][0]["message"].startswith(field), (field, r.text)

    # The background round records health without anyone asking.
    assert await management.preheat.instances.check_due() == 2  # type: ignore[attr-defined]
    listed = (await harbor.call("GET", "/p2p/preheat/instances", params={"sort": "name"})).json()
    assert [i["status"] for i in listed] == ["healthy", "healthy"]  # /healthy takes no token

    assert await harbor.status("DELETE", "/p2p/preheat/instances/df2") == 200
    assert await harbor.status("GET", "/p2p/preheat/instances/df2") == 404
    assert dragonfly.rejected == []


async def test_manual_run_posts_a_job_whose_token_pulls_the_image(harbor: Harbor, dragonfly: DragonflyManager) -> None:
    service = _service(harbor)
    provider = await _add_instance(harbor, _instance("df", dragonfly.url))
    await harbor.project("team")
    digest = await harbor.push("team/app", "v1.2")
    await harbor.push("team/app", "latest", layer=b"other")  # the tag filter leaves it out
    await harbor.push("team/other", "v1", layer=b"third")  # so does the repository filter

    r = await harbor.call("POST", "/projects/team/preheat/policies", json=_policy("nightly", provider))
    assert r.status_code == 201, r.text
    policy = (await harbor.call("GET", "/projects/team/preheat/policies/nightly")).json()
    check(policy, "PreheatPolicy")
    check((await harbor.call("GET", "/projects/team/preheat/policies")).json(), "PreheatPolicy", array=True)
    assert policy["provider_name"] == "df" and policy["project_id"] > 0
    assert json.loads(policy["filters"])[0] == {"type": "repository", "value": "app*"}
    assert json.loads(policy["extra_attrs"]) == {"scope": "all_seed_peers", "cluster_ids": [1]}
    providers = (await harbor.call("GET", "/projects/team/preheat/providers")).json()
    check(providers, "ProviderUnderProject", array=True)
    assert providers == [{"id": provider, "provider": "df", "enabled": True, "default": False}]

    path = "/projects/team/preheat/policies/nightly"
    r = await harbor.call("POST", path, json=policy)
    assert r.status_code == 201, r.text
    assert "/executions/" in r.headers["Location"]
    await service.wait()
    execution = await _finished(harbor, path)
    check(execution, "Execution")
    assert execution["status"] == "Success", execution
    assert execution["trigger"] == "MANUAL" and execution["vendor_type"] == "P2P_PREHEAT"
    assert execution["metrics"]["task_count"] == 1 and execution["metrics"]["success_task_count"] == 1

    (job,) = dragonfly.jobs
    assert dragonfly.rejected == []
    assert job.headers["authorization"] == f"Bearer {TOKEN}"
    assert job.body["type"] == "preheat" and job.body["scheduler_cluster_ids"] == [1]
    args = job.body["args"]
    assert args["type"] == "image" and args["scope"] == "all_seed_peers"
    assert args["url"] == "http://127.0.0.1:5000/v2/team/app/manifests/v1.2"
    # The token the P2P system was given pulls the manifest from Portside, and only that.
    pull = {"Authorization": args["headers"]["Authorization"], "Accept": OCI_MANIFEST}
    r = await harbor.client.get("/v2/team/app/manifests/v1.2", headers=pull)
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == digest
    r = await harbor.client.get("/v2/team/other/manifests/v1", headers=pull)
    assert r.status_code in (401, 403)
    r = await harbor.client.put("/v2/team/app/manifests/v9", headers=pull, content=b"{}")
    assert r.status_code in (401, 403)

    tasks = (await harbor.call("GET", f"{path}/executions/{execution['id']}/tasks")).json()
    check(tasks, "Task", array=True)
    (task,) = tasks
    assert task["status"] == "Success" and task["extra_attrs"]["artifact"] == "team/app:v1.2"
    assert task["extra_attrs"]["job_id"] == "1" and task["run_count"] == 1
    r = await harbor.call("GET", f"{path}/executions/{execution['id']}/tasks/{task['id']}/logs")
    assert r.status_code == 200 and "dragonfly job 1 created" in r.text and "preheated" in r.text
    assert await harbor.status("GET", f"{path}/executions/{execution['id']}/tasks/999/logs") == 404
    r = await harbor.call("GET", f"{path}/executions/{execution['id']}")
    assert r.json()["id"] == execution["id"]
    r = await harbor.call("PATCH", f"{path}/executions/{execution['id']}", json={"status": "Stopped"})
    assert r.status_code == 409  # it has ended

    # A failing job ends the task (and the execution) as Error, with Dragonfly's reason.
    dragonfly.fail_when = "team/app"
    assert (await harbor.call("POST", path, json=policy)).status_code == 201
    await service.wait()
    failed = await _finished(harbor, path)
    assert failed["status"] == "Error" and failed["metrics"]["error_task_count"] == 1
    (task,) = (await harbor.call("GET", f"{path}/executions/{failed['id']}/tasks")).json()
    log = (await harbor.call("GET", f"{path}/executions/{failed['id']}/tasks/{task['id']}/logs")).text
    assert "seed peer could not download the image" in log


async def test_policy_errors_and_instance_in_use(harbor: Harbor, dragonfly: DragonflyManager) -> None:
    provider = await _add_instance(harbor, _instance("df", dragonfly.url))
    await harbor.project("team")
    cases = {
        "filters": _policy("a", provider, filters="[{"),
        "trigger": {**_policy("b", provider), "trigger": json.dumps({"type": "sometimes"})},
        "extra_attrs": _policy("c", provider, extra_attrs=json.dumps({"scope": "everyone"})),
        "provider_id": _policy("d", 999),
        "name": _policy("", provider),
    }
    for field, body in cases.items():
        r = await harbor.call("POST", "/projects/team/preheat/policies", json=body)
        assert r.status_code == 400 and field in r.json()["errors"][0]["message"], (field, r.text)
    bad_cron = {
        **_policy("e", provider),
        "trigger": json.dumps({"type": "scheduled", "trigger_setting": {"cron": "daily"}}),
    }
    assert (await harbor.call("POST", "/projects/team/preheat/policies", json=bad_cron)).status_code == 400
    assert (
        await harbor.call("POST", "/projects/team/preheat/policies", json=_policy("p", provider))
    ).status_code == 201
    assert (
        await harbor.call("POST", "/projects/team/preheat/policies", json=_policy("p", provider))
    ).status_code == 409
    r = await harbor.call("DELETE", "/p2p/preheat/instances/df")
    assert r.status_code == 412 and "p" in r.text
    r = await harbor.call("PUT", "/projects/team/preheat/policies/p", json=_policy("p", provider, description="x"))
    assert r.status_code == 200
    assert (await harbor.call("GET", "/projects/team/preheat/policies/p")).json()["description"] == "x"
    assert await harbor.status("DELETE", "/projects/team/preheat/policies/p") == 200
    assert await harbor.status("GET", "/projects/team/preheat/policies/p") == 404
    assert await harbor.status("DELETE", "/p2p/preheat/instances/df") == 200


async def test_event_based_preheat_on_push_does_not_slow_the_push(harbor: Harbor, dragonfly: DragonflyManager) -> None:
    service = _service(harbor)
    provider = await _add_instance(harbor, _instance("df", dragonfly.url))
    await harbor.project("team")
    body = _policy("on-push", provider, trigger="event_based")
    assert (await harbor.call("POST", "/projects/team/preheat/policies", json=body)).status_code == 201

    # The manager answers slowly; the push must not wait for it.
    original = dragonfly.answer

    def slow(*args: Any) -> tuple[int, Any]:
        time.sleep(1.0)
        return original(*args)

    dragonfly.answer = slow  # type: ignore[method-assign]
    started = time.monotonic()
    await harbor.push("team/app", "v1.0")
    pushed_in = time.monotonic() - started
    assert pushed_in < 0.9, pushed_in
    await harbor.push("team/app", "latest", layer=b"no")  # no tag matches: nothing is sent
    deadline = time.monotonic() + 10
    while not dragonfly.jobs and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert dragonfly.jobs, "the push was not preheated within seconds"
    await service.wait()
    (job,) = dragonfly.jobs
    assert job.body["args"]["url"].endswith("/v2/team/app/manifests/v1.0")
    execution = await _finished(harbor, "/projects/team/preheat/policies/on-push")
    assert execution["trigger"] == "EVENT" and execution["status"] == "Success"
    assert dragonfly.rejected == []


async def test_images_the_pull_policy_refuses_are_skipped(harbor: Harbor, dragonfly: DragonflyManager) -> None:
    service = _service(harbor)
    provider = await _add_instance(harbor, _instance("df", dragonfly.url))
    r = await harbor.call(
        "POST",
        "/projects",
        json={"project_name": "signed", "metadata": {"public": "false", "enable_content_trust_cosign": "true"}},
    )
    assert r.status_code == 201, r.text
    r = await harbor.call(
        "POST",
        "/projects",
        json={"project_name": "scanned", "metadata": {"public": "false", "prevent_vul": "true", "severity": "low"}},
    )
    assert r.status_code == 201, r.text
    for project in ("signed", "scanned"):
        await harbor.push(f"{project}/app", "v1")
        body = _policy("all", provider)
        assert (await harbor.call("POST", f"/projects/{project}/preheat/policies", json=body)).status_code == 201
        assert (await harbor.call("POST", f"/projects/{project}/preheat/policies/all", json=body)).status_code == 201
    await service.wait()
    assert dragonfly.jobs == []  # nothing a pull would be refused was sent
    for project, rule in (("signed", "signature"), ("scanned", "vulnerability")):
        path = f"/projects/{project}/preheat/policies/all"
        execution = await _finished(harbor, path)
        assert execution["status"] == "Success" and "1 skipped" in execution["status_message"], execution
        (task,) = (await harbor.call("GET", f"{path}/executions/{execution['id']}/tasks")).json()
        assert task["status"] == "Stopped" and task["status_message"].startswith("skipped")
        log = (await harbor.call("GET", f"{path}/executions/{execution['id']}/tasks/{task['id']}/logs")).text
        assert f"skipped: the project's {rule} policy would refuse a pull" in log, log


async def test_scheduled_runs_through_the_upkeep_scheduler(harbor: Harbor, dragonfly: DragonflyManager) -> None:
    service = _service(harbor)
    provider = await _add_instance(harbor, _instance("df", dragonfly.url))
    await harbor.project("team")
    await harbor.push("team/app", "v1")
    trigger = json.dumps({"type": "scheduled", "trigger_setting": {"cron": "0 0 3 * * *"}})
    body = {**_policy("nightly", provider), "trigger": trigger}
    r = await harbor.call("POST", "/projects/team/preheat/policies", json=body)
    assert r.status_code == 201, r.text
    policy_id = (await harbor.call("GET", "/projects/team/preheat/policies/nightly")).json()["id"]
    scheduler = service._scheduler
    assert scheduler is not None
    schedule = await scheduler.get(f"preheat:{policy_id}")
    assert schedule is not None and schedule.cron == "0 0 3 * * *"
    fired = await scheduler.tick(datetime.now(UTC) + timedelta(days=1, minutes=1))
    assert [f.kind for f in fired] == [f"preheat:{policy_id}"]
    deadline = time.monotonic() + 10
    while not dragonfly.jobs and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    execution = await _finished(harbor, "/projects/team/preheat/policies/nightly")
    assert execution["trigger"] == "SCHEDULE" and execution["status"] == "Success"
    # Back to manual: the schedule goes.
    body = _policy("nightly", provider)
    assert (await harbor.call("PUT", "/projects/team/preheat/policies/nightly", json=body)).status_code == 200
    assert await scheduler.get(f"preheat:{policy_id}") is None


async def test_who_may_do_what(harbor: Harbor, dragonfly: DragonflyManager) -> None:
    provider = await _add_instance(harbor, _instance("df", dragonfly.url))
    await harbor.project("team")
    assert (
        await harbor.call("POST", "/projects/team/preheat/policies", json=_policy("p", provider))
    ).status_code == 201
    developer, _ = await harbor.user("dev")
    admin, _ = await harbor.user("owner")
    await harbor.member("team", "dev", 2)
    await harbor.member("team", "owner", 1)

    # Instances: system administrators only.
    assert await harbor.status("GET", "/p2p/preheat/instances", who=developer) == 403
    assert await harbor.status("POST", "/p2p/preheat/instances", who=admin, json=_instance("x", dragonfly.url)) == 403
    assert await harbor.status("POST", "/p2p/preheat/instances/ping", who=admin, json={"id": provider}) == 403
    assert await harbor.status("DELETE", "/p2p/preheat/instances/df", who=admin) == 403
    assert await harbor.status("GET", "/p2p/preheat/instances", who=None) == 401
    assert await harbor.status("GET", "/p2p/preheat/providers", who=developer) == 200

    # Project policies: the project's admins.
    path = "/projects/team/preheat/policies"
    assert await harbor.status("GET", path, who=developer) == 403
    assert await harbor.status("POST", path, who=developer, json=_policy("d", provider)) == 403
    assert await harbor.status("POST", f"{path}/p", who=developer, json={}) == 403
    assert await harbor.status("GET", "/projects/team/preheat/providers", who=developer) == 403
    assert await harbor.status("GET", path, who=admin) == 200
    assert await harbor.status("POST", path, who=admin, json=_policy("mine", provider)) == 201
    assert await harbor.status("POST", f"{path}/mine", who=admin, json={}) == 201
    stranger, _ = await harbor.user("stranger")
    assert await harbor.status("GET", path, who=stranger) == 404  # a private project is not seen
    await _service(harbor).wait()


async def test_scan_completion_fires_event_based_policies_where_it_matters(
    harbor: Harbor, dragonfly: DragonflyManager, settings: Settings
) -> None:
    service = _service(harbor)
    provider = await _add_instance(harbor, _instance("df", dragonfly.url))
    for name, metadata in (("plain", {}), ("guarded", {"prevent_vul": "true", "severity": "critical"})):
        body = {"project_name": name, "metadata": {"public": "false", **metadata}}
        assert (await harbor.call("POST", "/projects", json=body)).status_code == 201
        policy = _policy("on-event", provider, trigger="event_based")
        assert (await harbor.call("POST", f"/projects/{name}/preheat/policies", json=policy)).status_code == 201
    assert await service.scans_completed() == 0  # the first look starts at the end of the outbox
    digests = {name: await harbor.push(f"{name}/app", "v1.0") for name in ("plain", "guarded")}
    await service.wait()
    assert len(dragonfly.jobs) == 1  # plain's push; guarded's was skipped, not scanned yet

    with sqlite3.connect(settings.data_dir / "portside.db") as db:
        for name, digest in digests.items():
            db.execute(
                "INSERT INTO event_outbox (event_type, occurred_at, repository, digest, payload)"
                " VALUES ('SCANNING_COMPLETED', ?, ?, ?, '{}')",
                (datetime.now(UTC).isoformat(), f"{name}/app", digest),
            )
    assert await service.scans_completed() == 2
    assert await service.scans_completed() == 0  # read once
    await service.wait()
    # Only where the vulnerability policy is on does a completed scan preheat again.
    plain = (await harbor.call("GET", "/projects/plain/preheat/policies/on-event/executions")).json()
    guarded = (await harbor.call("GET", "/projects/guarded/preheat/policies/on-event/executions")).json()
    assert len(plain) == 1 and len(guarded) == 2
    assert guarded[0]["extra_attrs"]["event"] == "scan_completed" and guarded[0]["trigger"] == "EVENT"


async def test_a_running_execution_is_stopped(harbor: Harbor, dragonfly: DragonflyManager) -> None:
    service = _service(harbor)
    dragonfly.pending_polls = 1_000_000  # the job never ends by itself
    provider = await _add_instance(harbor, _instance("df", dragonfly.url))
    await harbor.project("team")
    await harbor.push("team/app", "v1")
    assert (
        await harbor.call("POST", "/projects/team/preheat/policies", json=_policy("p", provider))
    ).status_code == 201
    path = "/projects/team/preheat/policies/p"
    execution_id = (await harbor.call("POST", path, json={})).headers["Location"].rsplit("/", 1)[1]
    deadline = time.monotonic() + 10
    while not dragonfly.jobs and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    r = await harbor.call("PATCH", f"{path}/executions/{execution_id}", json={"status": "Running"})
    assert r.status_code == 400
    r = await harbor.call("PATCH", f"{path}/executions/{execution_id}", json={"status": "Stopped"})
    assert r.status_code == 200, r.text
    await service.wait()
    execution = (await harbor.call("GET", f"{path}/executions/{execution_id}")).json()
    assert execution["status"] == "Stopped" and execution["metrics"]["stopped_task_count"] == 1
