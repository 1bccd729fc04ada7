"""Quotas on a live server with access control: a real client (skopeo) is refused with
DENIED naming the quota and succeeds once the limit is raised; clients pushing at once
cannot pass the limit together."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.clients import skopeo
from tests.e2e.images import busybox_layout
from tests.servers import ADMIN_PASSWORD, Portside
from tests.stacks import Backing

MiB = 1024 * 1024
ADMIN = ("admin", ADMIN_PASSWORD)


@pytest.fixture
def server(tmp_path: Path, stack: str, backing: Backing) -> Iterator[Portside]:
    """A Portside of the test's own (as `fresh_portside`), with access control on."""
    portside = Portside(data_dir=tmp_path / "data", env=backing.env(stack), open_registry=False)
    portside.start()
    yield portside
    portside.stop()


def _api(server: Portside) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/api/v2.0", auth=ADMIN, timeout=60.0)


def _project(server: Portside, name: str, storage_limit: int) -> int:
    with _api(server) as api:
        r = api.post("/projects", json={"project_name": name, "storage_limit": storage_limit})
        assert r.status_code == 201, r.text
        return int(r.headers["Location"].rsplit("/", 1)[1])


def _quota(server: Portside, project_id: int) -> dict[str, Any]:
    with _api(server) as api:
        r = api.get(f"/quotas/{project_id}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def _set_limit(server: Portside, project_id: int, limit: int) -> None:
    with _api(server) as api:
        r = api.put(f"/quotas/{project_id}", json={"hard": {"storage": limit}})
        assert r.status_code == 200, r.text


@pytest.mark.e2e
def test_skopeo_is_refused_over_the_limit_and_succeeds_once_raised(server: Portside, tmp_path: Path) -> None:
    layout, image = busybox_layout(tmp_path / "layout", tag="v1", marker="quota")
    total = image.manifest.size + image.config.size + sum(d.size for d in image.layers)
    project_id = _project(server, "team", total // 2)
    source, dest = f"oci:{layout.root}:v1", f"docker://{server.host}/team/busybox:v1"
    creds = ("--dest-tls-verify=false", "--dest-creds", f"admin:{ADMIN_PASSWORD}", "--retry-times", "0")

    refused = skopeo("copy", *creds, source, dest, check=False)
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0, out
    # skopeo's log quotes the registry's message with its quotes escaped
    assert re.search(r'denied: quota exceeded: project \\?"team\\?" would use .* of its .* storage limit', out), out
    assert _quota(server, project_id)["used"]["storage"] <= total // 2

    _set_limit(server, project_id, total)
    skopeo("copy", *creds, source, dest)
    quota = _quota(server, project_id)
    assert quota["used"]["storage"] == total and quota["hard"]["storage"] == total
    # at the limit exactly, a copy of the same image into another repository costs nothing
    skopeo("copy", *creds, source, f"docker://{server.host}/team/again:v1")
    assert _quota(server, project_id)["used"]["storage"] == total
    # one more byte of anything is refused
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60.0) as v2:
        data = b"x"
        r = v2.post("/v2/team/busybox/blobs/uploads/", params={"digest": _digest(data)}, content=data)
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "DENIED", r.text


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _push_blob(server: Portside, repo: str, data: bytes) -> int:
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=120.0) as v2:
        r = v2.post(f"/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, r.text
        r = v2.patch(r.headers["location"], content=data)
        assert r.status_code == 202, r.text
        r = v2.put(r.headers["location"], params={"digest": _digest(data)})
    assert r.status_code in (201, 403), r.text
    if r.status_code == 403:
        assert r.json()["errors"][0]["code"] == "DENIED" and "quota exceeded" in r.text, r.text
    return r.status_code


def _push_image(server: Portside, repo: str, layer: bytes) -> int:
    """Config, layer, manifest; the status of the first refusal, else of the manifest."""
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=120.0) as v2:
        for blob in (config, layer):
            r = v2.post(f"/v2/{repo}/blobs/uploads/", params={"digest": _digest(blob)}, content=blob)
            if r.status_code != 201:
                break
        else:
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {
                        "mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": _digest(config),
                        "size": len(config),
                    },
                    "layers": [
                        {
                            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": _digest(layer),
                            "size": len(layer),
                        }
                    ],
                }
            ).encode()
            r = v2.put(
                f"/v2/{repo}/manifests/v1",
                content=manifest,
                headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
            )
    assert r.status_code in (201, 403), r.text
    return r.status_code


def test_concurrent_pushes_cannot_pass_the_limit_together(server: Portside) -> None:
    project_id = _project(server, "race", 5 * MiB)
    blobs = [os.urandom(MiB) for _ in range(12)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda n: _push_blob(server, f"race/repo{n}", blobs[n]), range(12)))
    assert statuses.count(201) == 5 and statuses.count(403) == 7, statuses
    assert _quota(server, project_id)["used"]["storage"] == 5 * MiB

    # whole images at once: whatever got in, the project stays within its limit
    images_id = _project(server, "images", 3 * MiB + 4096)
    layers = [os.urandom(MiB) for _ in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda n: _push_image(server, f"images/app{n}", layers[n]), range(8)))
    assert 1 <= statuses.count(201) <= 3, statuses
    assert _quota(server, images_id)["used"]["storage"] <= 3 * MiB + 4096
