"""Usage read through one server while another changes the project: two Portside servers
on one registry (one data directory on `fs`; one PostgreSQL, Redis and bucket on `scaled`).

The reader remembers each project's usage (sql/quotas.py's `UsageCache`); every push and
delete through the other server must show in the reader's very next answer: the quota
API, the project summary and the project list's meter alike."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.servers import ADMIN_PASSWORD, Portside
from tests.stacks import Backing

ADMIN = ("admin", ADMIN_PASSWORD)
LIMIT = 1024 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Pair:
    reader: Portside
    writer: Portside


@pytest.fixture
def pair(tmp_path: Path, stack: str, backing: Backing) -> Iterator[Pair]:
    if stack == "scaled":
        shared = backing.scaled_env()
        servers = [Portside(data_dir=tmp_path / name / "data", env=dict(shared)) for name in ("reader", "writer")]
    else:  # two processes of one machine: one database file, one generation file
        servers = [Portside(data_dir=tmp_path / "data") for _ in range(2)]
    for server in servers:
        server.open_registry = False
        server.start()
    yield Pair(*servers)
    for server in servers:
        server.stop()


class Reader:
    """What the reading server answers about one project, as the API and as the page."""

    def __init__(self, server: Portside, project: str):
        self.project = project
        self.api = httpx.Client(base_url=f"{server.url}/api/v2.0", auth=ADMIN, timeout=60.0)
        self.page = httpx.Client(base_url=server.url, timeout=60.0)
        r = self.page.post("/c/login", data={"principal": ADMIN[0], "password": ADMIN[1]})
        assert r.status_code < 400, r.text
        r = self.api.get(f"/projects/{project}")
        assert r.status_code == 200, r.text
        self.project_id = r.json()["project_id"]

    def used(self) -> int:
        """Every view's usage (each asked twice: the second may come from memory), which
        must agree."""
        seen = set()
        for _ in range(2):
            quota = self.api.get(f"/quotas/{self.project_id}")
            assert quota.status_code == 200, quota.text
            seen.add(quota.json()["used"]["storage"])
            summary = self.api.get(f"/projects/{self.project}/summary")
            assert summary.status_code == 200, summary.text
            seen.add(summary.json()["quota"]["used"]["storage"])
            listed = self.api.get("/quotas", params={"sort": "-used.storage", "page_size": 100})
            assert listed.status_code == 200, listed.text
            seen.update(q["used"]["storage"] for q in listed.json() if q["ref"]["id"] == self.project_id)
            html = self.page.get("/projects", params={"q": self.project})
            assert html.status_code == 200, html.text
            meter = re.search(r'<span class="quota-text">(\d+) B of 1\.0 MiB</span>', html.text)
            assert meter is not None, html.text
            seen.add(int(meter.group(1)))
        assert len(seen) == 1, seen
        return seen.pop()

    def close(self) -> None:
        self.api.close()
        self.page.close()


class Writer:
    def __init__(self, server: Portside):
        self.v2 = httpx.Client(base_url=f"{server.url}/v2", auth=ADMIN, timeout=60.0)

    def blob(self, repo: str, data: bytes) -> None:
        r = self.v2.post(f"/{repo}/blobs/uploads/", params={"digest": _digest(data)}, content=data)
        assert r.status_code == 201, r.text

    def manifest(self, repo: str, tag: str, config: bytes, layers: list[bytes]) -> bytes:
        def descriptor(media_type: str, data: bytes) -> dict[str, object]:
            return {"mediaType": media_type, "digest": _digest(data), "size": len(data)}

        payload = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor("application/vnd.oci.image.config.v1+json", config),
                "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer) for layer in layers],
            }
        ).encode()
        r = self.v2.put(f"/{repo}/manifests/{tag}", content=payload, headers={"Content-Type": OCI_MANIFEST})
        assert r.status_code == 201, r.text
        return payload

    def delete(self, repo: str, what: str, digest: str) -> None:
        r = self.v2.delete(f"/{repo}/{what}/{digest}")
        assert r.status_code == 202, r.text

    def close(self) -> None:
        self.v2.close()


def test_pushes_and_deletes_through_another_server_show_at_once(pair: Pair) -> None:
    with httpx.Client(base_url=f"{pair.reader.url}/api/v2.0", auth=ADMIN, timeout=60.0) as api:
        r = api.post("/projects", json={"project_name": "team", "storage_limit": LIMIT})
        assert r.status_code == 201, r.text
    reader, writer = Reader(pair.reader, "team"), Writer(pair.writer)
    try:
        assert reader.used() == 0
        config, layer, lone = b'{"os":"linux"}', os.urandom(300), os.urandom(200)

        # Blobs alone (the one change that moves no generation), then a manifest over them.
        writer.blob("team/app", config)
        assert reader.used() == len(config)
        writer.blob("team/app", layer)
        writer.blob("team/other", lone)
        assert reader.used() == len(config) + len(layer) + len(lone)
        manifest = writer.manifest("team/app", "v1", config, [layer])
        content = len(config) + len(layer) + len(lone)
        assert reader.used() == content + len(manifest)

        # Deletes: the manifest, then blobs no manifest needs any more.
        writer.delete("team/app", "manifests", _digest(manifest))
        assert reader.used() == content
        writer.delete("team/other", "blobs", _digest(lone))
        assert reader.used() == len(config) + len(layer)
        writer.delete("team/app", "blobs", _digest(layer))
        assert reader.used() == len(config)
    finally:
        reader.close()
        writer.close()
