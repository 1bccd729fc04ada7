"""Harbor's scanning API on a live server: a Debian 12 image with a vulnerable Python package
is pushed, the fixtures are imported with `portside vulndb import`, the image is scanned
through the API and the results read back: the overview's counts are the report's, the
advisories EXPECTED.json says apply are found, the SBOM is an OCI referrer that the
referrers API and the `oras` client both find, and a guest of another project sees none of it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import oras.client
import pytest

from tests.api import oci
from tests.mgmt.harbor_schema import check
from tests.scan.scanning import (
    PYTHON_PACKAGE,
    REPORT_MIME,
    new_user,
    scanning_server,
    vulndb_import,
    vulnerable_image,
    wait_for_scan,
)
from tests.scan.shared import VULNDB_FIXTURES
from tests.servers import ADMIN_PASSWORD, Portside

ADMIN = ("admin", ADMIN_PASSWORD)
API = "/api/v2.0"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    with scanning_server(tmp_path_factory.mktemp("scan") / "data") as started:
        yield started


def api(server: Portside, who: tuple[str, str] | None = ADMIN) -> httpx.Client:
    return httpx.Client(base_url=server.url + API, auth=who, timeout=60)


def _user(server: Portside, name: str) -> tuple[str, str]:
    return new_user(server, name)


def _project(server: Portside, name: str, members: dict[str, int]) -> None:
    with api(server) as client:
        r = client.post("/projects", json={"project_name": name, "metadata": {"public": "false"}})
        assert r.status_code == 201, r.text
        for username, role in members.items():
            r = client.post(f"/projects/{name}/members", json={"role_id": role, "member_user": {"username": username}})
            assert r.status_code == 201, r.text


def _ids(vulnerability: dict[str, Any]) -> set[str]:
    attributes = vulnerability["vendor_attributes"]
    return {vulnerability["id"], attributes["advisory_id"], *attributes["aliases"]}


def test_scan_report_sbom_and_privacy(server: Portside) -> None:
    project = f"scan{uuid.uuid4().hex[:8]}"
    maintainer = _user(server, f"m{project}")
    outsider = _user(server, f"o{project}")
    _project(server, project, {maintainer[0]: 4})
    _project(server, f"other{project}", {outsider[0]: 3})
    repository = f"{project}/app"
    image = vulnerable_image()
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        oci.push_manifest(registry, repository, image, "v1")
    path = f"/projects/{project}/repositories/app/artifacts/{image.digest}"

    with api(server, maintainer) as client:
        # Before any scan: the addition is empty, the overview says nothing.
        assert client.get(f"{path}/additions/vulnerabilities").json() == {}
        r = client.post(f"{path}/scan", json={"scan_type": "sbom"})
        assert r.status_code == 202, r.text
        artifact = wait_for_scan(client, path, "sbom_overview")
        check(artifact, "Artifact")
        assert artifact["sbom_overview"]["scan_status"] == "Success", artifact
        overview = artifact["scan_overview"][REPORT_MIME]
        assert overview["scan_status"] == "Success"

        r = client.get(f"{path}/additions/vulnerabilities")
        assert r.status_code == 200
        report = r.json()[REPORT_MIME]
        vulnerabilities = report["vulnerabilities"]
        # The overview's counts are the report's findings.
        summary = overview["summary"]
        assert summary["total"] == len(vulnerabilities)
        assert summary["fixable"] == sum(1 for v in vulnerabilities if v["fix_version"])
        by_severity: dict[str, int] = {}
        for v in vulnerabilities:
            by_severity[v["severity"]] = by_severity.get(v["severity"], 0) + 1
        assert summary["summary"] == by_severity
        assert report["vulnerability_database"]["imported"] is True
        # Every advisory EXPECTED.json says applies to the Python package is found, none
        # it says does not.
        python_ids = set().union(*(_ids(v) for v in vulnerabilities if v["package"] == PYTHON_PACKAGE["package"]))
        assert set(PYTHON_PACKAGE["affected"]) <= python_ids
        assert not set(PYTHON_PACKAGE["not_affected"]) & python_ids
        assert any(v["vendor_attributes"]["source"] != "osv" for v in vulnerabilities) or all(
            v["package"] == PYTHON_PACKAGE["package"] for v in vulnerabilities
        )

        # The list answers with the same overview, for the whole page.
        listed = client.get(
            f"/projects/{project}/repositories/app/artifacts", params={"with_scan_overview": "true"}
        ).json()
        check(listed, "Artifact", array=True)
        mine = next(a for a in listed if a["digest"] == image.digest)
        assert mine["scan_overview"][REPORT_MIME]["summary"] == summary

        sbom_digest = artifact["sbom_overview"]["sbom_digest"]
        assert artifact["addition_links"]["sboms"]["href"].endswith(f"/{sbom_digest}/additions/sbom")
        r = client.get(f"/projects/{project}/repositories/app/artifacts/{sbom_digest}/additions/sbom")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/spdx+json")
        spdx = r.json()
        assert spdx["spdxVersion"] == "SPDX-2.3"
        names = {p["name"] for p in spdx["packages"]}
        assert PYTHON_PACKAGE["package"] in names

        log = client.get(f"{path}/scan/{artifact['sbom_overview']['report_id']}/log")
        assert log.status_code == 200 and "finished" in log.text

        # Portside's own question: which artifacts hold this advisory.
        held = client.get(f"/vulnerabilities/{PYTHON_PACKAGE['affected'][0]}/artifacts").json()
        assert {(h["repository_name"], h["digest"]) for h in held} >= {(repository, image.digest)}

    # The referrers API lists both SBOMs; oras, a client other than Portside's, finds them too.
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        index = registry.get(f"/v2/{repository}/referrers/{image.digest}").json()
    types = {m["artifactType"]: m["digest"] for m in index["manifests"]}
    assert types["application/spdx+json"] == sbom_digest
    assert "application/vnd.cyclonedx+json" in types
    client = oras.client.OrasClient(hostname=server.host, insecure=True)
    client.auth.set_basic_auth(*ADMIN)  # no login: it would write the credentials to ~/.docker
    found = client.do_request(f"{server.url}/v2/{repository}/referrers/{image.digest}", "GET")
    assert found.status_code == 200
    assert sbom_digest in {m["digest"] for m in found.json()["manifests"]}
    referrer = client.get_manifest(f"{server.host}/{repository}@{sbom_digest}")
    assert referrer["subject"]["digest"] == image.digest
    assert referrer["artifactType"] == "application/spdx+json"

    # A guest of another project: the artifact, its report and its findings are not there.
    with api(server, outsider) as other:
        assert other.get(path, params={"with_scan_overview": "true"}).status_code == 404
        assert other.get(f"{path}/additions/vulnerabilities").status_code == 404
        assert other.post(f"{path}/scan").status_code == 404
        held = other.get(f"/vulnerabilities/{PYTHON_PACKAGE['affected'][0]}/artifacts").json()
        assert all(h["repository_name"] != repository for h in held)
        purl = f"pkg:pypi/{PYTHON_PACKAGE['package'].lower()}"
        assert all(
            h["repository_name"] != repository for h in other.get("/packages/artifacts", params={"purl": purl}).json()
        )


def _report(client: httpx.Client, path: str) -> dict[str, Any]:
    r = client.get(f"{path}/additions/vulnerabilities")
    assert r.status_code == 200, r.text
    document: dict[str, Any] = r.json()
    return document.get(REPORT_MIME, {})


def test_scan_on_push_and_rematch_after_import(server: Portside) -> None:
    project = f"push{uuid.uuid4().hex[:8]}"
    _project(server, project, {})
    with api(server) as client:
        r = client.put(f"/projects/{project}", json={"metadata": {"auto_scan": "true"}})
        assert r.status_code == 200, r.text
    image = vulnerable_image()
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        oci.push_manifest(registry, f"{project}/app", image, "v1")
    path = f"/projects/{project}/repositories/app/artifacts/{image.digest}"
    with api(server) as client:
        # Nobody asked for a scan: the push queued it.
        artifact = wait_for_scan(client, path, "scan_overview")
        assert artifact["scan_overview"][REPORT_MIME]["scan_status"] == "Success"
        before = _report(client, path)
        database = before["vulnerability_database"]
        assert database["matched_generation"] == database["generation"]

        # An import moves the database's generation; the stored inventory is matched again
        # in the background, without a scan (no new report).
        vulndb_import(server, VULNDB_FIXTURES / "alpine-secdb" / "v3.18-main.json")
        deadline = time.monotonic() + 30
        while True:
            after = _report(client, path)
            database = after["vulnerability_database"]
            if database["generation"] > before["vulnerability_database"]["generation"] and (
                database["matched_generation"] == database["generation"]
            ):
                break
            assert time.monotonic() < deadline, after["vulnerability_database"]
            time.sleep(0.3)
        again = wait_for_scan(client, path, "scan_overview")["scan_overview"][REPORT_MIME]
        assert again["report_id"] == artifact["scan_overview"][REPORT_MIME]["report_id"]
        assert again["summary"]["total"] == len(after["vulnerabilities"])

        health = client.get("/health").json()
        check(health, "OverallHealthStatus")
        component = next(c for c in health["components"] if c["name"] == "vulnerability-database")
        # The fixtures' sources were imported just now: the database is current.
        assert component["status"] == "healthy", component


def test_scanners_scan_all_and_refusals(server: Portside) -> None:
    project = f"all{uuid.uuid4().hex[:8]}"
    developer = _user(server, f"d{project}")
    _project(server, project, {developer[0]: 2})
    image = vulnerable_image()
    chart = oci.image_manifest(oci.Blob(b"{}", "application/vnd.example.config+json"), [oci.layer(64)])
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        oci.push_manifest(registry, f"{project}/app", image, "v1")
        oci.push_manifest(registry, f"{project}/other", chart, "v1")
    with api(server) as client:
        scanners = client.get("/scanners").json()
        check(scanners, "ScannerRegistration", array=True)
        assert [s["is_default"] for s in scanners] == [True]
        builtin = scanners[0]["uuid"]
        check(client.get(f"/scanners/{builtin}").json(), "ScannerRegistration")
        check(client.get(f"/scanners/{builtin}/metadata").json(), "ScannerAdapterMetadata")
        assert client.get("/scanners/nope").status_code == 404
        assert client.get(f"/projects/{project}/scanner").json()["uuid"] == builtin
        assert client.put(f"/projects/{project}/scanner", json={"uuid": builtin}).status_code == 200

        # Nothing in an artifact that is no image can be scanned: Harbor's 422.
        r = client.post(f"/projects/{project}/repositories/other/artifacts/{chart.digest}/scan")
        assert r.status_code == 422 and r.json()["errors"][0]["code"] == "UNPROCESSABLE_ENTITY"
        assert client.post(f"/projects/{project}/repositories/app/artifacts/sha256:{'0' * 64}/scan").status_code == 404

        # Scan-all, run now as Harbor's schedule body asks, queues every image.
        r = client.post("/system/scanAll/schedule", json={"schedule": {"type": "Manual"}})
        assert r.status_code == 201, r.text
        path = f"/projects/{project}/repositories/app/artifacts/{image.digest}"
        assert wait_for_scan(client, path, "scan_overview")["scan_overview"][REPORT_MIME]["scan_status"] == "Success"
        metrics = client.get("/scans/all/metrics").json()
        check(metrics, "Stats")
        assert metrics["metrics"].get("Success", 0) >= 1 and metrics["total"] >= metrics["completed"]
        assert client.get("/system/scanAll/schedule").status_code == 200
        assert client.post("/system/scanAll/stop").status_code == 202

    # A developer may read the report, but starting or stopping a scan is a maintainer's.
    with api(server, developer) as client:
        path = f"/projects/{project}/repositories/app/artifacts/{image.digest}"
        assert client.get(f"{path}/additions/vulnerabilities").status_code == 200
        r = client.post(f"{path}/scan")
        assert r.status_code == 403 and r.json()["errors"][0]["code"] == "FORBIDDEN"
        assert client.post(f"{path}/scan/stop", json={"scan_type": "vulnerability"}).status_code == 403
        assert client.get("/scans/all/metrics").status_code == 403


def test_an_index_is_the_merge_of_its_images(server: Portside) -> None:
    project = f"ix{uuid.uuid4().hex[:8]}"
    _project(server, project, {})
    full = vulnerable_image()
    os_only = oci.image_manifest(oci.config_blob(platform=("linux", "arm64")), [full.blobs[1]])
    index = oci.index_manifest([full, os_only])
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        for child in (full, os_only):
            oci.push_manifest(registry, f"{project}/multi", child)
        oci.push_manifest(registry, f"{project}/multi", index, "v1")
    base = f"/projects/{project}/repositories/multi/artifacts"
    with api(server) as client:
        assert client.post(f"{base}/{index.digest}/scan").status_code == 202
        merged = wait_for_scan(client, f"{base}/{index.digest}", "scan_overview")["scan_overview"][REPORT_MIME]
        assert merged["scan_status"] == "Success"
        findings = _report(client, f"{base}/{index.digest}")["vulnerabilities"]
        keys = [(v["id"], v["vendor_attributes"]["purl"], v["version"]) for v in findings]
        assert len(keys) == len(set(keys)) == merged["summary"]["total"]
        python = {v["id"] for v in findings if v["package"] == PYTHON_PACKAGE["package"]}
        assert python, "the first image's Python findings are in the index's report"

        # The OS-only image on its own: the index's findings without the Python package's.
        assert client.post(f"{base}/{os_only.digest}/scan").status_code == 202
        alone = wait_for_scan(client, f"{base}/{os_only.digest}", "scan_overview")["scan_overview"][REPORT_MIME]
        os_findings = [v for v in findings if v["package"] != PYTHON_PACKAGE["package"]]
        assert alone["summary"]["total"] == len(os_findings)


def test_the_security_hub_counts_each_held_artifact_and_is_for_administrators(server: Portside) -> None:
    project = f"hub{uuid.uuid4().hex[:8]}"
    developer = _user(server, f"d{project}")
    _project(server, project, {developer[0]: 2})
    image = vulnerable_image()
    with api(server) as client:
        before = client.get("/security/summary").json()
        check(before, "SecuritySummary")
        with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
            oci.push_manifest(registry, f"{project}/one", image, "v1")
            oci.push_manifest(registry, f"{project}/two", image, "v1")
        for repository in ("one", "two"):
            path = f"/projects/{project}/repositories/{repository}/artifacts/{image.digest}"
            assert client.post(f"{path}/scan").status_code == 202
            wait_for_scan(client, path, "scan_overview")
        report = client.get(f"{path}/additions/vulnerabilities").json()[REPORT_MIME]["vulnerabilities"]
        everything = {"with_dangerous_cve": "true", "with_dangerous_artifact": "true"}
        after = client.get("/security/summary", params=everything)
        assert after.status_code == 200, after.text
        summary = after.json()
        check(summary, "SecuritySummary")
    # One image held by two repositories counts as two artifacts, each with every finding.
    assert summary["total_artifact"] == before["total_artifact"] + 2
    assert summary["scanned_cnt"] == before["scanned_cnt"] + 2
    assert summary["total_vuls"] == before["total_vuls"] + 2 * len(report)
    assert summary["fixable_cnt"] == before["fixable_cnt"] + 2 * sum(1 for v in report if v["fix_version"])
    counted = ("critical_cnt", "high_cnt", "medium_cnt", "low_cnt", "none_cnt", "unknown_cnt")
    assert sum(summary[key] for key in counted) == summary["total_vuls"]
    order = ["Unknown", "Negligible", "Low", "Medium", "High", "Critical"]
    ranks = [order.index(c["severity"]) for c in summary["dangerous_cves"]]
    assert ranks == sorted(ranks, reverse=True) and len(summary["dangerous_cves"]) <= 5
    # The worst of the registry is at least as bad as the worst of this image.
    assert report and ranks[0] >= max(order.index(v["severity"]) for v in report)
    # An artifact is dangerous for its Critical, High and Medium findings (Harbor's counts):
    # this image's copies are listed, named in full with their project's id, exactly when it
    # has such findings (the fixtures' PyPI records carry no severity: Unknown).
    held = [a for a in summary["dangerous_artifacts"] if a["digest"] == image.digest]
    severe = [v for v in report if v["severity"] in ("Critical", "High", "Medium")]
    assert bool(held) == bool(severe), summary
    assert all(a["project_id"] > 0 and "/" in a["repository_name"] for a in held)
    assert all(a["critical_cnt"] + a["high_cnt"] + a["medium_cnt"] > 0 for a in summary["dangerous_artifacts"])
    # Harbor's security hub is the system administrators'.
    with api(server, developer) as client:
        assert client.get("/security/summary").status_code == 403
    with api(server, None) as client:
        assert client.get("/security/summary").status_code == 401


def test_turning_scan_on_push_on_takes_effect_at_the_next_push(server: Portside) -> None:
    """What scan on push remembers of a project wanting nothing is forgotten when the project
    changes: pushes before the change queue no scan, the first push after it does."""
    project = f"late{uuid.uuid4().hex[:8]}"
    _project(server, project, {})
    before = oci.image_manifest(oci.config_blob(platform=("linux", "arm64")), vulnerable_image().blobs[1:])
    image = vulnerable_image()
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        # Twice: the second push finds the project's settings remembered.
        oci.push_manifest(registry, f"{project}/app", before, "v0")
        oci.push_manifest(registry, f"{project}/app", before, "v0-again")
        with api(server) as client:
            r = client.put(f"/projects/{project}", json={"metadata": {"auto_scan": "true"}})
            assert r.status_code == 200, r.text
        oci.push_manifest(registry, f"{project}/app", image, "v1")
    artifacts = f"/projects/{project}/repositories/app/artifacts"
    with api(server) as client:
        scanned = wait_for_scan(client, f"{artifacts}/{image.digest}", "scan_overview")
        assert scanned["scan_overview"][REPORT_MIME]["scan_status"] == "Success"
        # Queued in push order: by now the earlier pushes' scans would have ended too.
        r = client.get(f"{artifacts}/{before.digest}", params={"with_scan_overview": "true"})
        assert r.status_code == 200, r.text
        assert not r.json().get("scan_overview"), r.json()
