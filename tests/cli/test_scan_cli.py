"""`portside scan` and `portside sbom` against a live server, and `portside scan --local` on an
OCI layout directory and a `docker save` tarball with no server, on the vulnerability
fixtures imported with `portside vulndb import`."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api import oci
from tests.e2e.images import files_tar_bytes
from tests.scan.scanning import PYTHON_PACKAGE, scanning_server, vulnerable_image
from tests.scan.shared import VULNDB_FIXTURES
from tests.scan.test_api_scanning import ADMIN, _project
from tests.servers import Portside


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    with scanning_server(tmp_path_factory.mktemp("scan-cli") / "data") as started:
        yield started


def portside(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portside", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin"},
    )


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _oci_layout(root: Path, image: oci.Manifest) -> Path:
    (root / "blobs" / "sha256").mkdir(parents=True)
    for blob in [*image.blobs]:
        (root / "blobs" / "sha256" / blob.digest.split(":")[1]).write_bytes(blob.data)
    (root / "blobs" / "sha256" / image.digest.split(":")[1]).write_bytes(image.body)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = {
        "schemaVersion": 2,
        "manifests": [image.descriptor(annotations={"org.opencontainers.image.ref.name": "v1"})],
    }
    (root / "index.json").write_text(json.dumps(index))
    return root


def _docker_save(path: Path, layers: list[bytes]) -> Path:
    """The classic `docker save` layout: manifest.json naming uncompressed layer tars."""
    with tarfile.open(path, "w") as tar:
        names = []
        for number, data in enumerate(layers):
            name = f"{number:02d}{_sha(data)[7:19]}/layer.tar"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            names.append(name)
        manifest = json.dumps([{"Config": "config.json", "RepoTags": ["app:v1"], "Layers": names}]).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    return path


def _python_ids(report: dict[str, object]) -> set[str]:
    ids: set[str] = set()
    for v in report["vulnerabilities"]:  # type: ignore[attr-defined]
        if v["package"] == PYTHON_PACKAGE["package"]:
            ids |= {v["id"], v["advisory_id"], *v["aliases"]}
    return ids


def test_scan_local_layout_and_tarball(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert portside("migrate", "--data-dir", str(data)).returncode == 0
    imported = portside("vulndb", "import", str(VULNDB_FIXTURES / "osv" / "PyPI"), "--data-dir", str(data))
    assert imported.returncode == 0, imported.stderr
    image = vulnerable_image()
    layout = _oci_layout(tmp_path / "layout", image)
    status = (VULNDB_FIXTURES / "debian12-minbase-status.txt").read_bytes()
    metadata = f"Metadata-Version: 2.1\nName: {PYTHON_PACKAGE['package']}\nVersion: {PYTHON_PACKAGE['version']}\n"
    saved = _docker_save(
        tmp_path / "saved.tar",
        [
            files_tar_bytes(
                {
                    "etc/os-release": b"ID=debian\nVERSION_ID=12\nVERSION_CODENAME=bookworm\n",
                    "var/lib/dpkg/status": status,
                }
            ),
            files_tar_bytes({"usr/lib/python3.11/site-packages/requests-2.19.1.dist-info/METADATA": metadata.encode()}),
        ],
    )
    for path in (layout, saved):
        done = portside("scan", "--local", str(path), "--data-dir", str(data), "--json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["vulnerability_database"]["imported"] is True
        found = _python_ids(report)
        assert set(PYTHON_PACKAGE["affected"]) <= found, path
        assert not set(PYTHON_PACKAGE["not_affected"]) & found
    table = portside("scan", "--local", str(layout), "--data-dir", str(data))
    assert table.returncode == 0
    assert PYTHON_PACKAGE["package"] in table.stdout and "SEVERITY" in table.stdout


def test_scan_and_sbom_against_a_server(server: Portside) -> None:
    project = f"cli{uuid.uuid4().hex[:8]}"
    _project(server, project, {})
    image = vulnerable_image()
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        oci.push_manifest(registry, f"{project}/app", image, "v1")
    login = ["--url", server.url, "--username", ADMIN[0], "--password", ADMIN[1]]
    done = portside("scan", f"{project}/app:v1", *login, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    ids = set()
    for v in report["vulnerabilities"]:
        if v["package"] == PYTHON_PACKAGE["package"]:
            ids |= {v["id"], v["vendor_attributes"]["advisory_id"], *v["vendor_attributes"]["aliases"]}
    assert set(PYTHON_PACKAGE["affected"]) <= ids
    for format, key in (("spdx", "spdxVersion"), ("cyclonedx", "bomFormat")):
        done = portside("sbom", f"{project}/app@{image.digest}", "--format", format, *login)
        assert done.returncode == 0, done.stderr
        document = json.loads(done.stdout)
        assert key in document
    # Each generation replaced the SBOMs before it: one referrer of each format is left.
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        referrers = registry.get(f"/v2/{project}/app/referrers/{image.digest}").json()["manifests"]
    assert sorted(m["artifactType"] for m in referrers) == ["application/spdx+json", "application/vnd.cyclonedx+json"]
    refused = portside("scan", f"{project}/app:v1", "--url", server.url, "--username", "admin", "--password", "wrong")
    assert refused.returncode == 1 and "401" in refused.stderr


def test_cve_export_writes_the_projects_csv(server: Portside, tmp_path: Path) -> None:
    project = f"cli{uuid.uuid4().hex[:8]}"
    _project(server, project, {})
    image = vulnerable_image()
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        oci.push_manifest(registry, f"{project}/app", image, "v1")
    login = ["--url", server.url, "--username", ADMIN[0], "--password", ADMIN[1]]
    assert portside("scan", f"{project}/app:v1", *login).returncode == 0
    out = tmp_path / "export.csv"
    done = portside("cve-export", project, "--repositories", "app", "--tags", "v*", "-o", str(out), *login)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    found = {(r["Repository"], r["CVE"]) for r in rows if r["Package"] == PYTHON_PACKAGE["package"]}
    # requests 2.19.1's advisories by their CVE ids, as Harbor's CSV names them.
    assert {(f"{project}/app", "CVE-2018-18074"), (f"{project}/app", "CVE-2023-32681")} <= found
    assert all(r["Artifact Digest"] == image.digest for r in rows)
    # One CVE, to standard output.
    only = portside("cve-export", project, "--cve", "CVE-2018-18074", *login)
    assert only.returncode == 0, only.stderr
    assert {r["CVE"] for r in csv.DictReader(io.StringIO(only.stdout))} == {"CVE-2018-18074"}
    # Nothing matches: a header and no rows, still exit 0.
    none = portside("cve-export", project, "--tags", "release-*", *login)
    assert none.returncode == 0 and len(none.stdout.strip().splitlines()) == 1
    missing = portside("cve-export", f"no{project}", *login)
    assert missing.returncode == 1 and "no project" in missing.stderr
