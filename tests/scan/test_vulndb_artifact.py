"""The air-gap path on a live server: a bundle made from the fixtures is pushed as an OCI
artifact (`application/vnd.portside.vulndb.v1`) with oras, imported with
`portside vulndb import oci://…` from the registry's own storage, shown by `vulndb status`,
and a scan then finds the advisories EXPECTED.json says apply; an artifact of another type
or with a tampered layer is refused and changes nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import oras.client
import pytest

from portside.scan.vulndb.artifact import ARTIFACT_TYPE, BUNDLE_TAR_GZIP
from portside.scan.vulndb.bundle import write_manifest
from tests.api import oci
from tests.scan.scanning import PYTHON_PACKAGE, vulnerable_image, wait_for_scan
from tests.scan.shared import VULNDB_FIXTURES
from tests.servers import ADMIN_PASSWORD, Portside

ADMIN = ("admin", ADMIN_PASSWORD)
API = "/api/v2.0"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    started = Portside(
        data_dir=tmp_path_factory.mktemp("airgap") / "data",
        open_registry=False,
        env={"PORTSIDE_JOB_POLL_SECONDS": "1"},
    ).start()
    try:
        yield started
    finally:
        started.stop()


def _bundle(where: Path, with_debian: bool) -> Path:
    """A bundle of the fixtures' PyPI advisories (and the Debian tracker sample), as a .tar.gz."""
    root = where / "bundle"
    shutil.copytree(VULNDB_FIXTURES / "osv" / "PyPI", root / "osv" / "PyPI")
    files = [("osv/PyPI", "osv")]
    if with_debian:
        (root / "debian").mkdir()
        shutil.copy(VULNDB_FIXTURES / "debian-tracker" / "tracker-json-sample.json", root / "debian" / "tracker.json")
        files.append(("debian/tracker.json", "debian-tracker"))
    write_manifest(root, files, "2026-12-01T00:00:00Z")
    target = where / "bundle.tar.gz"
    with tarfile.open(target, "w:gz") as archive:
        for item in sorted(root.iterdir()):
            archive.add(item, item.name)
    return target


def _push(server: Portside, target: str, layer: Path, media_type: str, config_type: str) -> str:
    """Push with oras (the CLI when installed, else its Python package); the manifest's digest."""
    config = layer.parent / "config.json"
    config.write_text("{}")
    oras_cli = shutil.which("oras")
    if oras_cli:
        done = subprocess.run(
            [oras_cli, "push", "--plain-http", "-u", ADMIN[0], "-p", ADMIN[1], "--artifact-type", config_type,
             f"{server.host}/{target}", f"{layer.name}:{media_type}"],
            cwd=layer.parent, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    else:
        client = oras.client.OrasClient(hostname=server.host, insecure=True)
        client.auth.set_basic_auth(*ADMIN)  # no login: it would write the credentials to ~/.docker
        # oras-py keeps the first token it gets (for the blob check: pull only) and offers it
        # to the upload too; hand it one for pull and push from the start.
        repository = target.rsplit(":", 1)[0]
        with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as tokens:
            answer = tokens.get("/service/token", params={"scope": f"repository:{repository}:pull,push"})
            assert answer.status_code == 200, answer.text
        client.auth.token = answer.json()["token"]
        # oras-py sets no artifactType: the type rides in the config's media type (older oras's way).
        response = client.push(
            target=f"{server.host}/{target}",
            files=[f"{layer}:{media_type}"],
            manifest_config=f"{config}:{config_type}",
            disable_path_validation=True,
            quiet=True,
        )
        assert response.status_code == 201, response.text
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        repository, tag = target.rsplit(":", 1)
        head = registry.head(f"/v2/{repository}/manifests/{tag}", headers={"Accept": oci.OCI_MANIFEST})
        assert head.status_code == 200
        return head.headers["Docker-Content-Digest"]


def _portside(server: Portside, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portside", "vulndb", *args, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin"},
    )


def _status(server: Portside) -> dict[str, Any]:
    done = _portside(server, "status", "--json")
    assert done.returncode == 0, done.stderr
    status: dict[str, Any] = json.loads(done.stdout)
    return status


def _project(server: Portside) -> str:
    name = f"sec{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=server.url + API, auth=ADMIN, timeout=60) as client:
        r = client.post("/projects", json={"project_name": name, "metadata": {"public": "false"}})
        assert r.status_code == 201, r.text
    return name


def test_import_from_artifact_then_scan(server: Portside, tmp_path: Path) -> None:
    project = _project(server)
    digest = _push(server, f"{project}/vulndb:v1", _bundle(tmp_path, True), BUNDLE_TAR_GZIP, ARTIFACT_TYPE)

    done = _portside(server, "import", f"oci://{project}/vulndb:v1")
    assert done.returncode == 0, done.stdout + done.stderr
    status = _status(server)
    origins = {source["name"]: source["origin"] for source in status["sources"]}
    assert origins["osv:PyPI"] == f"oci://{project}/vulndb@{digest}"
    assert "debian-tracker" in origins
    pypi = len(list((VULNDB_FIXTURES / "osv" / "PyPI").glob("*.json")))
    assert next(s for s in status["sources"] if s["name"] == "osv:PyPI")["record_count"] == pypi

    # The same digest again (by digest this time): nothing to do.
    again = _portside(server, "import", f"oci://{project}/vulndb@{digest}")
    assert again.returncode == 0 and "unchanged" in again.stdout, again.stdout + again.stderr
    assert _status(server)["generation"] == status["generation"]

    image = vulnerable_image()
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        oci.push_manifest(registry, f"{project}/app", image, "v1")
    path = f"/projects/{project}/repositories/app/artifacts/{image.digest}"
    with httpx.Client(base_url=server.url + API, auth=ADMIN, timeout=60) as client:
        assert client.post(f"{path}/scan").status_code == 202
        artifact = wait_for_scan(client, path, "scan_overview")
        report = next(iter(client.get(f"{path}/additions/vulnerabilities").json().values()))
    assert artifact["scan_overview"]
    found: set[str] = set()
    for v in report["vulnerabilities"]:
        if v["package"] == PYTHON_PACKAGE["package"]:
            found |= {v["id"], v["vendor_attributes"]["advisory_id"], *v["vendor_attributes"]["aliases"]}
    assert set(PYTHON_PACKAGE["affected"]) <= found
    assert not set(PYTHON_PACKAGE["not_affected"]) & found


def test_wrong_type_or_tampered_artifact_changes_nothing(server: Portside, tmp_path: Path) -> None:
    project = _project(server)
    bundle = _bundle(tmp_path, False)
    _push(server, f"{project}/other:v1", bundle, BUNDLE_TAR_GZIP, "application/vnd.example.thing.v1")
    digest = _push(server, f"{project}/vulndb:v2", bundle, BUNDLE_TAR_GZIP, ARTIFACT_TYPE)
    before = _status(server)

    wrong = _portside(server, "import", f"oci://{project}/other:v1")
    assert wrong.returncode == 1
    assert ARTIFACT_TYPE in wrong.stderr and "application/vnd.example.thing.v1" in wrong.stderr

    missing = _portside(server, "import", f"oci://{project}/vulndb:nope")
    assert missing.returncode == 1 and "no such artifact" in missing.stderr

    # Tamper with the layer where the registry keeps it: same size, other bytes.
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        manifest = registry.get(f"/v2/{project}/vulndb/manifests/{digest}", headers={"Accept": oci.OCI_MANIFEST})
    layer_hex = manifest.json()["layers"][0]["digest"].split(":", 1)[1]
    stored = [p for p in server.data_dir.rglob(f"*{layer_hex}*") if p.is_file()]
    assert stored, "the layer's file is not in the data directory"
    content = bytearray(stored[0].read_bytes())
    content[len(content) // 2] ^= 0xFF
    stored[0].write_bytes(bytes(content))
    tampered = _portside(server, "import", f"oci://{project}/vulndb:v2")
    assert tampered.returncode == 1 and "tampered" in tampered.stderr, tampered.stderr

    after = _status(server)
    assert after["generation"] == before["generation"]
    assert [(s["name"], s["origin"], s["record_count"]) for s in after["sources"]] == [
        (s["name"], s["origin"], s["record_count"]) for s in before["sources"]
    ]


def test_export_oci_layout_then_import(server: Portside, tmp_path: Path) -> None:
    """`vulndb export --oci` writes an OCI image layout; its blobs and manifest, pushed as
    they are (what `oras cp --from-oci-layout` does), import with the digest the export named."""
    project = _project(server)
    bundle = _bundle(tmp_path, False)
    layout = tmp_path / "layout"
    tag = "2026-12-01"
    done = subprocess.run(
        [sys.executable, "-m", "portside", "vulndb", "export", str(bundle), "--oci", str(layout), "--tag", tag],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    named = done.stdout.split()[-1]
    index = json.loads((layout / "index.json").read_text())
    (entry,) = index["manifests"]
    assert entry["digest"] == named and entry["annotations"]["org.opencontainers.image.ref.name"] == "2026-12-01"
    payload = (layout / "blobs" / "sha256" / named.split(":", 1)[1]).read_bytes()
    manifest = json.loads(payload)
    assert manifest["artifactType"] == ARTIFACT_TYPE
    repository = f"{project}/vulndb"
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        for descriptor in (manifest["config"], *manifest["layers"]):
            blob = (layout / "blobs" / "sha256" / descriptor["digest"].split(":", 1)[1]).read_bytes()
            assert oci.push_blob(registry, repository, blob) == descriptor["digest"]
        r = registry.put(
            f"/v2/{repository}/manifests/2026-12-01", content=payload, headers={"content-type": oci.OCI_MANIFEST}
        )
        assert r.status_code == 201, r.text
    imported = _portside(server, "import", f"oci://{repository}:2026-12-01")
    assert imported.returncode == 0, imported.stdout + imported.stderr
    origins = {source["origin"] for source in _status(server)["sources"]}
    assert f"oci://{repository}@{named}" in origins


def test_scheduled_update_follows_the_tag(tmp_path: Path) -> None:
    """With `vulndb_artifact` set, the scheduled update imports the artifact once it is
    pushed, and again when its tag moves to another digest."""
    project = "security"
    started = Portside(
        data_dir=tmp_path / "data",
        open_registry=False,
        env={"PORTSIDE_JOB_POLL_SECONDS": "1", "PORTSIDE_VULNDB_ARTIFACT": f"{project}/vulndb:latest"},
    ).start()
    try:
        with httpx.Client(base_url=started.url + API, auth=ADMIN, timeout=60) as client:
            r = client.post("/projects", json={"project_name": project, "metadata": {"public": "false"}})
            assert r.status_code == 201, r.text
        first = tmp_path / "first"
        first.mkdir()
        digest = _push(started, f"{project}/vulndb:latest", _bundle(first, True), BUNDLE_TAR_GZIP, ARTIFACT_TYPE)
        _wait_for_origin(started, f"oci://{project}/vulndb@{digest}")
        second = tmp_path / "second"
        second.mkdir()
        moved = _push(started, f"{project}/vulndb:latest", _bundle(second, False), BUNDLE_TAR_GZIP, ARTIFACT_TYPE)
        assert moved != digest
        _wait_for_origin(started, f"oci://{project}/vulndb@{moved}")
    finally:
        started.stop()


def _wait_for_origin(server: Portside, origin: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while origin not in {source["origin"] for source in _status(server)["sources"]}:
        assert time.monotonic() < deadline, f"{origin} was not imported: {_status(server)}"
        time.sleep(1)
