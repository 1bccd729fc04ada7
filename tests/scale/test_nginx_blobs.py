"""One Portside behind deploy/nginx/portside-single.conf, with `nginx_blob_location` set:
Portside checks each blob GET and nginx sends the file (X-Accel-Redirect)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.api import oci
from tests.backing import Nginx
from tests.e2e.clients import skopeo
from tests.e2e.images import busybox_layout, sha256_digest
from tests.servers import Portside


@dataclass
class Fronted:
    portside: Portside
    nginx: Nginx


@pytest.fixture
def fronted(tmp_path: Path) -> Iterator[Fronted]:
    data_dir = tmp_path / "data"
    portside = Portside(data_dir=data_dir, env={"PORTSIDE_NGINX_BLOB_LOCATION": "/_portside/blobs/"})
    portside.start()
    nginx = Nginx(tmp_path / "nginx", [portside.host], blobs_dir=data_dir / "blobs")
    try:
        nginx.start()
        yield Fronted(portside, nginx)
    finally:
        nginx.stop()
        portside.stop()


def _push_blob(client: httpx.Client, repo: str, data: bytes) -> str:
    digest = sha256_digest(data)
    started = client.post(f"/v2/{repo}/blobs/uploads/")
    assert started.status_code == 202, started.text
    done = client.put(started.headers["location"], params={"digest": digest}, content=data)
    assert done.status_code == 201, done.text
    return digest


def test_nginx_sends_the_blob_with_the_registrys_headers(fronted: Fronted) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    repo = oci.unique("accel")
    with httpx.Client(base_url=fronted.nginx.url, timeout=60) as client:
        digest = _push_blob(client, repo, data)
        whole = client.get(f"/v2/{repo}/blobs/{digest}")
        assert whole.status_code == 200
        assert whole.content == data
        assert whole.headers["content-length"] == str(len(data))
        assert whole.headers["docker-content-digest"] == digest
        assert whole.headers["etag"] == f'"{digest}"'
        assert whole.headers["content-type"] == "application/octet-stream"
        assert "x-accel-redirect" not in whole.headers
        for name in ("docker-content-digest", "etag", "cache-control", "docker-distribution-api-version"):
            assert len(whole.headers.get_list(name)) == 1, (name, whole.headers)

        part = client.get(f"/v2/{repo}/blobs/{digest}", headers={"range": "bytes=1000-1999"})
        assert part.status_code == 206
        assert part.content == data[1000:2000]
        assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"

        head = client.head(f"/v2/{repo}/blobs/{digest}")  # answered by Portside itself
        assert head.status_code == 200 and head.headers["content-length"] == str(len(data))

        # Access is still Portside's: a blob this repository does not hold is refused by it.
        other = client.get(f"/v2/{oci.unique('elsewhere')}/blobs/{digest}")
        assert other.status_code == 404 and other.json()["errors"][0]["code"] == "BLOB_UNKNOWN"

    # Straight to Portside, the answer names the file and carries no bytes: only nginx may
    # be in front of a server with this setting.
    direct = httpx.get(f"{fronted.portside.url}/v2/{repo}/blobs/{digest}", timeout=30)
    assert direct.headers["x-accel-redirect"].startswith("/_portside/blobs/sha256/")
    assert direct.content == b""


@pytest.mark.e2e
def test_skopeo_pulls_through_nginx(fronted: Fronted, tmp_path: Path) -> None:
    layout, image = busybox_layout(tmp_path / "src", tag="v1", marker="accel")
    ref = f"docker://{fronted.nginx.host}/{oci.unique('accel')}:v1"
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout.root}:v1", ref)
    out = tmp_path / "out"
    skopeo("copy", "--src-tls-verify=false", ref, f"oci:{out}:v1")
    for d in [image.manifest, image.config, *image.layers]:
        assert sha256_digest((out / "blobs" / "sha256" / d.digest.split(":")[1]).read_bytes()) == d.digest
