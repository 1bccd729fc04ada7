"""Harbor's vulnerability pull policy on a live server (`prevent_vul` + `severity` and the CVE
allowlists): an image without a successful scan, or holding a finding at the project's
severity or worse that no allowlist in force names, is refused 412 PROJECTPOLICYVIOLATION
with a message that names the rule and the vulnerabilities, through the API's clients and
skopeo; allowlisting them (the project's, or the system's when reused) lets it through
until the allowlist expires. Indexes, signatures and other artifacts pass, as do the robots
made for scanners (`scanner-pull`); projects without the policy are untouched."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api import oci
from tests.scan.scanning import REPORT_MIME, new_user, scanning_server, vulnerable_image, wait_for_scan
from tests.servers import ADMIN_PASSWORD, Portside

ADMIN = ("admin", ADMIN_PASSWORD)
ACCEPT = {"Accept": f"{oci.OCI_MANIFEST}, {oci.OCI_INDEX}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    with scanning_server(tmp_path_factory.mktemp("pull-policy") / "data") as started:
        yield started


def _api(server: Portside, who: tuple[str, str] = ADMIN) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/api/v2.0", auth=who, timeout=60)


def _registry(server: Portside, who: tuple[str, str] = ADMIN) -> httpx.Client:
    return httpx.Client(base_url=server.url, auth=who, timeout=60)


def _set(server: Portside, project: str, **body: Any) -> None:
    with _api(server) as client:
        r = client.put(f"/projects/{project}", json=body)
        assert r.status_code == 200, r.text


def _scan(server: Portside, project: str, repository: str, digest: str) -> dict[str, Any]:
    path = f"/projects/{project}/repositories/{repository}/artifacts/{digest}"
    with _api(server) as client:
        assert client.post(f"{path}/scan", json={"scan_type": "vulnerability"}).status_code == 202
        assert wait_for_scan(client, path, "scan_overview")["scan_overview"][REPORT_MIME]["scan_status"] == "Success"
        report: dict[str, Any] = client.get(f"{path}/additions/vulnerabilities").json()[REPORT_MIME]
    return report


def _pull(server: Portside, repository: str, reference: str, who: tuple[str, str] = ADMIN) -> httpx.Response:
    with _registry(server, who) as registry:
        return registry.get(f"/v2/{repository}/manifests/{reference}", headers=ACCEPT)


def _refused(response: httpx.Response) -> str:
    assert response.status_code == 412, response.text
    error = response.json()["errors"][0]
    assert error["code"] == "PROJECTPOLICYVIOLATION"
    message: str = error["message"]
    return message


def _skopeo_inspect(server: Portside, image: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "skopeo",
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            f"{ADMIN[0]}:{ADMIN[1]}",
            f"docker://{server.url.removeprefix('http://')}/{image}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _project(server: Portside, **metadata: str) -> str:
    name = f"gate{uuid.uuid4().hex[:8]}"
    with _api(server) as client:
        r = client.post("/projects", json={"project_name": name, "metadata": {"public": "false", **metadata}})
        assert r.status_code == 201, r.text
    return name


def test_a_vulnerable_image_is_refused_until_its_findings_are_allowlisted(server: Portside) -> None:
    project = _project(server, prevent_vul="true", severity="high")
    image = vulnerable_image()
    with _registry(server) as registry:
        oci.push_manifest(registry, f"{project}/app", image, "v1")

    # Not scanned: refused by tag and by digest; HEAD still answers (no content is given).
    for reference in ("v1", image.digest):
        message = _refused(_pull(server, f"{project}/app", reference))
        assert "without vulnerability scanning cannot be pulled" in message and "has not been scanned" in message
    with _registry(server) as registry:
        assert registry.head(f"/v2/{project}/app/manifests/v1", headers=ACCEPT).status_code == 200

    # The fixture's requests 2.19.1 holds two advisories with no CVSS: severity Unknown, which
    # only "none" (every finding) refuses.
    report = _scan(server, project, "app", image.digest)
    found = sorted({v["id"] for v in report["vulnerabilities"]})
    assert found == ["CVE-2018-18074", "CVE-2023-32681"], found
    assert _pull(server, f"{project}/app", "v1").status_code == 200  # nothing of "low" or worse
    _set(server, project, metadata={"severity": "none"})
    message = _refused(_pull(server, f"{project}/app", "v1"))
    assert "'Prevent images with vulnerability severity of \"None\" or higher from running.'" in message
    assert '"2 vulnerabilities"' in message and all(cve in message for cve in found)
    # A real client shows the same refusal.
    inspected = _skopeo_inspect(server, f"{project}/app:v1")
    assert inspected.returncode != 0 and "cannot be pulled due to configured policy" in inspected.stderr

    # The dry run says the same, and nothing of it to those who may not see the project.
    with _api(server) as client:
        dry = client.get(f"/projects/{project}/repositories/app/artifacts/v1/policy").json()
    assert dry["allowed"] is False and dry["digest"] == image.digest
    assert dry["rules"] == [
        {"rule": "vulnerability", "enabled": True, "allowed": False, "reason": message},
        {"rule": "signature", "enabled": False, "allowed": True, "reason": ""},
    ]
    stranger = new_user(server, f"s{uuid.uuid4().hex[:8]}")
    with _api(server, stranger) as client:
        assert client.get(f"/projects/{project}/repositories/app/artifacts/v1/policy").status_code == 404

    # One allowlisted: the other still refuses, and is the one named.
    _set(server, project, cve_allowlist={"items": [{"cve_id": "CVE-2018-18074"}]})
    message = _refused(_pull(server, f"{project}/app", "v1"))
    assert '"1 vulnerabilities"' in message and "CVE-2023-32681" in message and "CVE-2018-18074" not in message
    # Both (one by its advisory's alias, as the allowlist may name it): the pull goes through.
    advisory = next(v for v in report["vulnerabilities"] if v["id"] == "CVE-2023-32681")
    other_id = next(i for i in advisory["vendor_attributes"]["aliases"] if i != "CVE-2023-32681")
    _set(server, project, cve_allowlist={"items": [{"cve_id": "CVE-2018-18074"}, {"cve_id": other_id}]})
    assert _pull(server, f"{project}/app", "v1").status_code == 200
    inspected = _skopeo_inspect(server, f"{project}/app:v1")
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["config"]["digest"] == image.json["config"]["digest"]

    # An expired allowlist names nothing.
    expired = {"items": [{"cve_id": cve} for cve in found], "expires_at": int(time.time()) - 1}
    _set(server, project, cve_allowlist=expired)
    _refused(_pull(server, f"{project}/app", "v1"))

    # Reusing the system's allowlist: the project's own no longer counts.
    _set(server, project, cve_allowlist={"items": [{"cve_id": cve} for cve in found]})
    assert _pull(server, f"{project}/app", "v1").status_code == 200
    _set(server, project, metadata={"reuse_sys_cve_allowlist": "true"})
    _refused(_pull(server, f"{project}/app", "v1"))
    with _api(server) as client:
        assert client.put("/system/CVEAllowlist", json={"items": [{"cve_id": c} for c in found]}).status_code == 200
    assert _pull(server, f"{project}/app", "v1").status_code == 200
    with _api(server) as client:
        assert client.put("/system/CVEAllowlist", json={"items": []}).status_code == 200
    _refused(_pull(server, f"{project}/app", "v1"))

    # Turning the policy off lets everything through.
    _set(server, project, metadata={"prevent_vul": "false"})
    assert _pull(server, f"{project}/app", "v1").status_code == 200
    with _api(server) as client:
        dry = client.get(f"/projects/{project}/repositories/app/artifacts/{image.digest}/policy").json()
    assert dry["allowed"] is True and dry["rules"][0] == {
        "rule": "vulnerability",
        "enabled": False,
        "allowed": True,
        "reason": "",
    }


def test_what_the_policy_lets_through(server: Portside) -> None:
    project = _project(server, prevent_vul="true", severity="none")
    plain = _project(server)
    image = vulnerable_image()
    # A signature of the image (cosign's shape: a simple-signing layer, an image config).
    signature = oci.image_manifest(
        oci.config_blob(),
        [oci.Blob(b'{"critical": {}}', "application/vnd.dev.cosign.simplesigning.v1+json")],
    )
    sbom = oci.artifact_manifest("application/spdx+json", subject=image)
    index = oci.index_manifest([image])
    with _registry(server) as registry:
        for name in (f"{project}/app", f"{plain}/app"):
            oci.push_manifest(registry, name, image, "v1")
        oci.push_manifest(registry, f"{project}/app", signature, f"sha256-{image.digest[7:]}.sig")
        oci.push_manifest(registry, f"{project}/app", sbom)
        oci.push_manifest(registry, f"{project}/app", index, "multi")
    _scan(server, project, "app", image.digest)

    _refused(_pull(server, f"{project}/app", "v1"))
    assert _pull(server, f"{plain}/app", "v1").status_code == 200  # another project: no policy
    assert _pull(server, f"{project}/app", f"sha256-{image.digest[7:]}.sig").status_code == 200
    assert _pull(server, f"{project}/app", sbom.digest).status_code == 200
    # An index passes; the platform's manifest it leads to is asked on its own.
    assert _pull(server, f"{project}/app", "multi").status_code == 200
    _refused(_pull(server, f"{project}/app", image.digest))

    # A robot that pulls for a scanner passes; one that only pulls does not.
    def robot(name: str, *actions: str) -> tuple[str, str]:
        access = [{"resource": "repository", "action": action} for action in actions]
        body = {
            "name": name,
            "level": "project",
            "duration": -1,
            "permissions": [{"kind": "project", "namespace": project, "access": access}],
        }
        with _api(server) as client:
            r = client.post("/robots", json=body)
            assert r.status_code == 201, r.text
            return r.json()["name"], r.json()["secret"]

    scanner = robot("scanner", "pull", "scanner-pull")
    puller = robot("puller", "pull")
    assert _pull(server, f"{project}/app", "v1", scanner).status_code == 200
    _refused(_pull(server, f"{project}/app", "v1", puller))


def test_a_refused_images_blobs_are_refused_too(server: Portside) -> None:
    project = _project(server, prevent_vul="true", severity="none")
    image = vulnerable_image()
    # Another image shares its first layer (the OS) and is allowed: that layer stays readable.
    shared_os = image.blobs[1]
    clean = oci.image_manifest(oci.config_blob(platform=("linux", "arm64")), [shared_os])
    with _registry(server) as registry:
        oci.push_manifest(registry, f"{project}/app", image, "v1")
        oci.push_manifest(registry, f"{project}/app", clean, "clean")
        orphan = oci.Blob(b"not in any manifest", "application/octet-stream")
        oci.push_blob(registry, f"{project}/app", orphan)
    _scan(server, project, "app", image.digest)
    _scan(server, project, "app", clean.digest)
    python_layer, config = image.blobs[2], image.blobs[0]

    def blob(digest: str, who: tuple[str, str] = ADMIN) -> httpx.Response:
        with _registry(server, who) as registry:
            return registry.get(f"/v2/{project}/app/blobs/{digest}")

    message = _refused(blob(python_layer.digest))
    assert f"is part of {image.digest}" in message and "CVE-2018-18074" in message
    _refused(blob(config.digest))
    assert blob(shared_os.digest).content == shared_os.data
    assert blob(orphan.digest).status_code == 200
    with _registry(server) as registry:  # HEAD tells the size, not the content
        assert registry.head(f"/v2/{project}/app/blobs/{python_layer.digest}").status_code == 200
    _set(server, project, cve_allowlist={"items": [{"cve_id": "CVE-2018-18074"}, {"cve_id": "CVE-2023-32681"}]})
    assert blob(python_layer.digest).content == python_layer.data
