"""Harbor's /system/gc and Portside's /system/scrub over HTTP on a live server: shapes per
the swagger, system admins only, Harbor-style errors, schedules that fire, stop."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from tests.api import oci
from tests.mgmt.harbor_schema import check
from tests.servers import Portside
from tests.upkeep.conftest import LIVE_GRACE_SECONDS, admin_client, run_job, wait_job

API = "/api/v2.0"


def _harbor_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["errors"][0]["code"] == code and body["errors"][0]["message"], body


def test_gc_over_the_api(live: Portside) -> None:
    with admin_client(live) as admin, httpx.Client(base_url=live.url, timeout=60) as anonymous:
        repo = "gcapi/app"
        kept = oci.push_image(anonymous, repo, "v1")
        untagged = oci.push_image(anonymous, repo, "old")
        r = anonymous.delete(f"/v2/{repo}/manifests/old")
        assert r.status_code == 202, r.text
        time.sleep(LIVE_GRACE_SECONDS + 0.5)

        # Who may: system administrators only.
        _harbor_error(anonymous.get(f"{API}/system/gc"), 401, "UNAUTHORIZED")
        r = admin.post(f"{API}/users", json={"username": "dev", "password": "Passw0rd1", "email": "d@x.io"})
        assert r.status_code == 201, r.text
        with httpx.Client(base_url=live.url, auth=("dev", "Passw0rd1"), timeout=60) as dev:
            _harbor_error(dev.get(f"{API}/system/gc"), 403, "FORBIDDEN")
            manual = {"schedule": {"type": "Manual"}, "parameters": {"delete_untagged": True}}
            _harbor_error(dev.post(f"{API}/system/gc/schedule", json=manual), 403, "FORBIDDEN")
            _harbor_error(dev.get(f"{API}/system/gc/schedule"), 403, "FORBIDDEN")

        # A dry run first: it reports, and everything is still there.
        dry = run_job(admin, "gc", {"delete_untagged": True, "dry_run": True})
        check(dry, "GCHistory")
        assert dry["job_status"] == "Success" and dry["job_name"] == "GARBAGE_COLLECTION"
        assert dry["job_kind"] == "MANUAL" and dry["schedule"]["type"] == "Manual"
        assert json.loads(dry["job_parameters"]) == {"delete_untagged": True, "dry_run": True}
        r = admin.get(f"{API}/system/gc/{dry['id']}/log")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        assert "eligible for deletion" in r.text
        assert f"would remove untagged manifest {repo}@{untagged.digest}" in r.text
        assert anonymous.get(f"/v2/{repo}/manifests/{untagged.digest}").status_code == 200

        real = run_job(admin, "gc", {"delete_untagged": True, "workers": 1})
        assert real["job_status"] == "Success"
        log = admin.get(f"{API}/system/gc/{real['id']}/log").text
        for blob in untagged.blobs:
            assert f"delete blob {blob.digest}" in log
        assert anonymous.get(f"/v2/{repo}/manifests/{untagged.digest}").status_code == 404
        assert anonymous.get(f"/v2/{repo}/manifests/v1", headers={"Accept": oci.OCI_MANIFEST}).status_code == 200
        for blob in kept.blobs:
            assert anonymous.get(f"/v2/{repo}/blobs/{blob.digest}").content == blob.data

        # History: newest first, paged like Harbor's other lists.
        r = admin.get(f"{API}/system/gc", params={"page_size": 1})
        assert r.status_code == 200, r.text
        check(r.json(), "GCHistory", array=True)
        assert [j["id"] for j in r.json()] == [real["id"]]
        assert r.headers["X-Total-Count"] == "2" and 'rel="next"' in r.headers["Link"]
        r = admin.get(f"{API}/system/gc", params={"q": "job_status=Success", "sort": "creation_time"})
        assert [j["id"] for j in r.json()] == [dry["id"], real["id"]]
        _harbor_error(admin.get(f"{API}/system/gc", params={"q": "job_status=Weird"}), 400, "BAD_REQUEST")

        # Stop: a finished job stays as it ended; unknown ids are Harbor's 404.
        assert admin.put(f"{API}/system/gc/{real['id']}").status_code == 200
        assert admin.get(f"{API}/system/gc/{real['id']}").json()["job_status"] == "Success"
        for method, path in (("GET", "/999999"), ("PUT", "/999999"), ("GET", "/999999/log")):
            _harbor_error(admin.request(method, f"{API}/system/gc{path}"), 404, "NOT_FOUND")

        # Bad bodies are Harbor's 400.
        bad_cron = {"schedule": {"type": "Custom", "cron": "0 3 * * *"}}
        _harbor_error(admin.put(f"{API}/system/gc/schedule", json=bad_cron), 400, "BAD_REQUEST")
        bad_type = {"schedule": {"type": "Sometimes"}}
        _harbor_error(admin.post(f"{API}/system/gc/schedule", json=bad_type), 400, "BAD_REQUEST")
        bad_parameter = {"schedule": {"type": "Manual"}, "parameters": {"dry_run": "maybe"}}
        _harbor_error(admin.post(f"{API}/system/gc/schedule", json=bad_parameter), 400, "BAD_REQUEST")


def test_gc_schedule_fires_and_stops(live: Portside) -> None:
    with admin_client(live) as admin:
        r = admin.get(f"{API}/system/gc/schedule")
        assert r.status_code == 200
        check(r.json(), "GCHistory")
        assert r.json()["schedule"]["type"] == "None"

        body: dict[str, Any] = {
            "schedule": {"type": "Custom", "cron": "*/1 * * * * *"},
            "parameters": {"delete_untagged": False},
        }
        check({"schedule": body["schedule"]}, "Schedule")
        r = admin.put(f"{API}/system/gc/schedule", json=body)
        assert r.status_code == 200, r.text
        r = admin.get(f"{API}/system/gc/schedule")
        check(r.json(), "GCHistory")
        schedule = r.json()
        assert schedule["schedule"]["type"] == "Custom" and schedule["schedule"]["cron"] == "*/1 * * * * *"
        assert schedule["schedule"]["next_scheduled_time"]
        assert json.loads(schedule["job_parameters"]) == {"delete_untagged": False}

        deadline = time.monotonic() + 60
        scheduled: list[dict[str, Any]] = []
        while not scheduled and time.monotonic() < deadline:
            time.sleep(0.2)
            scheduled = [j for j in admin.get(f"{API}/system/gc").json() if j["job_kind"] == "SCHEDULE"]
        assert scheduled, "the schedule did not fire"
        assert scheduled[0]["schedule"]["type"] == "Schedule"
        assert wait_job(admin, "gc", scheduled[0]["id"])["job_status"] == "Success"

        r = admin.put(f"{API}/system/gc/schedule", json={"schedule": {"type": "None"}})
        assert r.status_code == 200, r.text
        assert admin.get(f"{API}/system/gc/schedule").json()["schedule"]["type"] == "None"
        # Daily is Harbor's fixed cron.
        r = admin.post(f"{API}/system/gc/schedule", json={"schedule": {"type": "Daily"}})
        assert r.status_code == 201 and "Location" not in r.headers
        assert admin.get(f"{API}/system/gc/schedule").json()["schedule"]["cron"] == "0 0 0 * * *"
        admin.put(f"{API}/system/gc/schedule", json={"schedule": {"type": "None"}})

        # A run asked to stop ends Stopped, or Success when it finished first.
        r = admin.post(f"{API}/system/gc/schedule", json={"schedule": {"type": "Manual"}})
        assert r.status_code == 201, r.text
        job_id = int(r.headers["Location"].rsplit("/", 1)[1])
        assert r.headers["Location"] == f"{API}/system/gc/{job_id}"
        assert admin.put(f"{API}/system/gc/{job_id}").status_code == 200
        assert wait_job(admin, "gc", job_id)["job_status"] in ("Stopped", "Success")


def test_scrub_over_the_api(live: Portside) -> None:
    with admin_client(live) as admin, httpx.Client(base_url=live.url, timeout=60) as anonymous:
        image = oci.push_image(anonymous, "scrubapi/app", "v1")
        manual = {"schedule": {"type": "Manual"}}
        _harbor_error(anonymous.post(f"{API}/system/scrub/schedule", json=manual), 401, "UNAUTHORIZED")
        job = run_job(admin, "scrub", {"quarantine": True})
        check(job, "GCHistory")
        assert job["job_status"] == "Success" and job["job_name"] == "SCRUB"
        result = job["result"]
        assert result["checked"] >= len(image.blobs)
        assert (result["corrupted"], result["missing"], result["quarantined"]) == ([], [], [])
        assert "checked" in admin.get(f"{API}/system/scrub/{job['id']}/log").text
        r = admin.get(f"{API}/system/scrub")
        check(r.json(), "GCHistory", array=True)
        assert r.headers["X-Total-Count"] == "1"
        assert admin.get(f"{API}/system/gc").json() == []  # kinds keep their own histories
        _harbor_error(admin.get(f"{API}/system/gc/{job['id']}"), 404, "NOT_FOUND")
        r = admin.put(f"{API}/system/scrub/schedule", json={"schedule": {"type": "Weekly"}, "parameters": {}})
        assert r.status_code == 200
        assert admin.get(f"{API}/system/scrub/schedule").json()["schedule"]["cron"] == "0 0 0 * * 0"

        spec = admin.get(f"{API}/openapi.json").json()
        for path in ("/system/scrub/schedule", "/system/scrub", "/system/scrub/{job_id}", "/system/scrub/{job_id}/log"):
            assert path in spec["paths"], path
        assert "#/components/schemas/ScrubHistory" in json.dumps(spec["paths"]["/system/scrub/{job_id}"])
        assert "result" in spec["components"]["schemas"]["ScrubHistory"]["properties"]
