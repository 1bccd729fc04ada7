"""Harbor's security hub list (`/security/vul`) and CVE export (`/export/cve`) on a live
server: a project's scanned images, listed worst first and narrowed by Harbor's `q` keys,
each item in Harbor's VulnerabilityItem shape; then exported as Harbor's CSV by a developer
of the project, the execution and file readable by that developer only; what the export
refuses and why."""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.mgmt.harbor_schema import check
from tests.scan.scanning import REPORT_MIME, new_user, scanned_project, scanning_server
from tests.servers import ADMIN_PASSWORD, Portside

ADMIN = ("admin", ADMIN_PASSWORD)
API = "/api/v2.0"
DATA_TYPE = {"X-Scan-Data-Type": REPORT_MIME}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    with scanning_server(tmp_path_factory.mktemp("hub") / "data") as started:
        yield started


def api(server: Portside, who: tuple[str, str] | None = ADMIN) -> httpx.Client:
    return httpx.Client(base_url=server.url + API, auth=who, timeout=60)


@pytest.fixture(scope="module")
def project(server: Portside) -> dict[str, Any]:
    return scanned_project(server)


def _list(client: httpx.Client, q: str | None = None, **params: Any) -> httpx.Response:
    return client.get("/security/vul", params={**({"q": q} if q else {}), **params})


def test_the_hub_lists_every_finding_worst_first_in_harbors_shape(server: Portside, project: dict[str, Any]) -> None:
    name, digest = project["name"], project["vulnerable"]
    mine = f"project_id={project['id']}"
    with api(server) as client:
        r = _list(client, mine, page_size=100, with_tag="true")
        assert r.status_code == 200, r.text
        items = r.json()
        for item in items:
            check(item, "VulnerabilityItem")
        # The fixed image has no requests finding; the vulnerable one has both, in each repository.
        requests_rows = {(i["repository_name"], i["cve_id"]) for i in items if i["package"] == "requests"}
        assert {
            (f"{name}/app", "CVE-2018-18074"),
            (f"{name}/app", "CVE-2023-32681"),
            (f"{name}/other", "CVE-2018-18074"),
            (f"{name}/other", "CVE-2023-32681"),
        } <= requests_rows
        assert all(i["project_id"] == project["id"] for i in items)
        assert int(r.headers["X-Total-Count"]) == len(items)
        order = ["Unknown", "Negligible", "Low", "Medium", "High", "Critical"]
        ranks = [order.index(i["severity"]) for i in items]
        assert ranks == sorted(ranks, reverse=True)
        cve = next(i for i in items if i["cve_id"] == "CVE-2018-18074" and i["repository_name"] == f"{name}/app")
        assert (cve["version"], cve["fixed_version"], cve["status"]) == ("2.19.1", "2.20.0", "fixed")
        assert cve["digest"] == digest and cve["tags"] == ["v1"] and cve["links"]
        other = next(i for i in items if i["repository_name"] == f"{name}/other")
        assert other["tags"] == ["copy"]
        # Without with_tag, no tags are read or sent.
        assert all("tags" not in i for i in _list(client, mine, page_size=100).json())

        def cves(q: str) -> list[tuple[str, str]]:
            answer = _list(client, f"{mine},{q}", page_size=100)
            assert answer.status_code == 200, answer.text
            return sorted((i["repository_name"], i["cve_id"]) for i in answer.json())

        assert cves("cve_id=CVE-2018-18074") == [(f"{name}/app", "CVE-2018-18074"), (f"{name}/other", "CVE-2018-18074")]
        assert cves(f"repository_name={name}/other,cve_id=CVE-2018-18074") == [(f"{name}/other", "CVE-2018-18074")]
        assert cves("tag=v1,package=requests") == [(f"{name}/app", "CVE-2018-18074"), (f"{name}/app", "CVE-2023-32681")]
        assert cves("tag=v2,package=requests") == []
        assert len(cves(f"digest={digest},package=requests")) == 4
        assert cves(f"digest={project['fixed']},package=requests") == []
        assert all(i["status"] == "fixed" for i in _list(client, f"{mine},status=fixed", page_size=100).json())
        severity = items[0]["severity"]
        assert {i["severity"] for i in _list(client, f"{mine},severity={severity}", page_size=100).json()} == {severity}
        assert _list(client, "project_id=999999").json() == []
        scored = [i for i in items if "cvss_v3_score" in i]
        if scored:
            top = max(i["cvss_v3_score"] for i in scored)
            ranged = _list(client, f"{mine},cvss_score_v3=[{top}~10]", page_size=100).json()
            assert ranged and all(i["cvss_v3_score"] >= top for i in ranged)

        # Paged as Harbor's lists; tune_count counts a small total exactly.
        first = _list(client, mine, page=1, page_size=2)
        assert len(first.json()) == 2 and 'rel="next"' in first.headers["Link"]
        assert _list(client, mine, tune_count="true").headers["X-Total-Count"] == str(len(items))

        # Bad conditions are refused with a reason, in Harbor's error shape.
        for bad in ("severity=Dreadful", "status=maybe", "cvss_score_v3=[high~]"):
            refused = _list(client, bad)
            assert refused.status_code == 400, (bad, refused.text)
            assert refused.json()["errors"][0]["code"] == "BAD_REQUEST"

    # The hub is the system administrators': a developer of the project may not read it.
    with api(server, project["developer"]) as client:
        assert _list(client).status_code == 403
    with api(server, None) as client:
        assert _list(client).status_code == 401


def _wait(client: httpx.Client, execution_id: int, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/export/cve/execution/{execution_id}")
        assert r.status_code == 200, r.text
        if r.json()["status"] not in ("Pending", "Running") or time.monotonic() > deadline:
            return r.json()
        time.sleep(0.2)


def _export(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/export/cve", json=body, headers=DATA_TYPE)
    assert r.status_code == 200, r.text
    check(r.json(), "ScanDataExportJob")
    execution = _wait(client, r.json()["id"])
    check(execution, "ScanDataExportExecution")
    return execution


def _rows(client: httpx.Client, execution_id: int) -> list[dict[str, str]]:
    r = client.get(f"/export/cve/download/{execution_id}")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == f'attachment; filename="scandata_export_{execution_id}.csv"'
    return list(csv.DictReader(io.StringIO(r.text)))


def test_a_developer_exports_the_projects_findings_as_harbors_csv(server: Portside, project: dict[str, Any]) -> None:
    name = project["name"]
    with api(server, project["developer"]) as client:
        everything = _export(client, {"job_name": "all", "projects": [project["id"]]})
        assert everything["status"] == "Success" and everything["file_present"] is True
        assert everything["user_name"] == project["developer"][0] and everything["trigger"] == "MANUAL"
        assert everything["start_time"].endswith("Z") and everything["end_time"].endswith("Z")
        rows = _rows(client, everything["id"])
        assert list(rows[0]) == [
            "Repository",
            "Artifact Digest",
            "CVE",
            "Package",
            "Current Version",
            "Fixed in version",
            "Severity",
            "CWE Ids",
            "Additional Data",
            "Scanner",
        ]
        assert str(len(rows)) in everything["status_text"]
        found = {(r["Repository"], r["CVE"], r["Fixed in version"]) for r in rows if r["Package"] == "requests"}
        assert {
            (f"{name}/app", "CVE-2018-18074", "2.20.0"),
            (f"{name}/other", "CVE-2023-32681", "2.31.0"),
        } <= found
        assert {r["Scanner"] for r in rows} == {"Portside"}
        assert all(r["Artifact Digest"] == project["vulnerable"] for r in rows if r["Package"] == "requests")
        with api(server) as admin:
            listed = _list(admin, f"project_id={project['id']}", page_size=100)
        assert len(rows) == int(listed.headers["X-Total-Count"])

        # Narrowed by repository and tag patterns and by CVE ids, as Harbor's criteria are.
        narrowed = _export(
            client,
            {"projects": [project["id"]], "repositories": "{app,nothing}", "tags": "v*", "cveIds": "CVE-2018-18074"},
        )
        assert [(r["Repository"], r["CVE"]) for r in _rows(client, narrowed["id"])] == [
            (f"{name}/app", "CVE-2018-18074")
        ]
        none = _export(client, {"projects": [project["id"]], "tags": "release-*"})
        assert none["status"] == "Success" and _rows(client, none["id"]) == []

        executions = client.get("/export/cve/executions")
        assert executions.status_code == 200
        check(executions.json(), "ScanDataExportExecutionList")
        assert [e["id"] for e in executions.json()["items"]] == [none["id"], narrowed["id"], everything["id"]]

    # Another person sees none of it: not in their list, refused one by one.
    with api(server, project["guest"]) as client:
        assert client.get("/export/cve/executions").json() == {"items": []}
        assert client.get(f"/export/cve/execution/{everything['id']}").status_code == 403
        assert client.get(f"/export/cve/download/{everything['id']}").status_code == 403
        # A guest may not export (Harbor's export-cve is developers' and up).
        r = client.post("/export/cve", json={"projects": [project["id"]]}, headers=DATA_TYPE)
        assert r.status_code == 403, r.text
    with api(server, None) as client:
        assert client.post("/export/cve", json={"projects": [project["id"]]}, headers=DATA_TYPE).status_code == 401
        assert client.get("/export/cve/executions").status_code == 401
    outsider = new_user(server, f"o{uuid.uuid4().hex[:8]}")
    with api(server, outsider) as client:
        # A private project is a missing one, as every other API answers.
        r = client.post("/export/cve", json={"projects": [project["id"]]}, headers=DATA_TYPE)
        assert r.status_code == 404, r.text
        assert client.get("/export/cve/execution/999999").status_code == 404


def test_what_an_export_refuses(server: Portside, project: dict[str, Any]) -> None:
    with api(server, project["developer"]) as client:
        for body, headers in (
            ({"projects": [project["id"]]}, {}),  # no data type
            ({"projects": [project["id"]]}, {"X-Scan-Data-Type": "application/spdx+json"}),
            ({"projects": []}, DATA_TYPE),
            ({"projects": [project["id"], project["id"]]}, DATA_TYPE),
            ({"projects": [project["id"]], "labels": [1]}, DATA_TYPE),
            ({"projects": [project["id"]], "tags": "x" * 2000}, DATA_TYPE),
            ({"projects": ["one"]}, DATA_TYPE),
        ):
            r = client.post("/export/cve", json=body, headers=headers)
            assert r.status_code in (400, 422), (body, headers, r.text)
            assert r.json()["errors"][0]["message"]
        assert client.get("/export/cve/download/1", params={"format": "pdf"}).status_code == 400
