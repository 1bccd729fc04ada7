"""Scan data follows its artifact, on a live server: deleting an artifact (Harbor's API or
the /v2 DELETE) removes its reports, and once no repository holds the digest its inventory,
package index, findings and summary too; the same image in another repository keeps its own.
The tables are read from the server's SQLite database after each deletion.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.api import oci
from tests.scan.scanning import REPORT_MIME, scanning_server, vulnerable_image, wait_for_scan
from tests.servers import ADMIN_PASSWORD, Portside

ADMIN = ("admin", ADMIN_PASSWORD)
API = "/api/v2.0"
CONTENT_TABLES = ("scan_inventories", "scan_packages", "scan_findings", "scan_summaries")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    with scanning_server(tmp_path_factory.mktemp("cleanup") / "data") as started:
        yield started


def _rows(server: Portside, digest: str) -> dict[str, int]:
    with sqlite3.connect(server.data_dir / "portside.db") as db:
        counts = {
            table: db.execute(f"SELECT count(*) FROM {table} WHERE digest = ?", (digest,)).fetchone()[0]
            for table in CONTENT_TABLES
        }
        for (repository,) in db.execute("SELECT DISTINCT repository FROM scan_reports WHERE digest = ?", (digest,)):
            counts[f"reports:{repository}"] = 1
    return counts


def test_deleting_artifacts_takes_their_scan_data(server: Portside) -> None:
    project = f"gone{uuid.uuid4().hex[:8]}"
    image = vulnerable_image()
    with httpx.Client(base_url=server.url + API, auth=ADMIN, timeout=60) as client:
        assert (
            client.post("/projects", json={"project_name": project, "metadata": {"public": "false"}}).status_code == 201
        )
        with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
            for name in ("one", "two"):
                oci.push_manifest(registry, f"{project}/{name}", image, "v1")
        for name in ("one", "two"):
            path = f"/projects/{project}/repositories/{name}/artifacts/{image.digest}"
            assert client.post(f"{path}/scan").status_code == 202
            overview = wait_for_scan(client, path, "scan_overview")["scan_overview"][REPORT_MIME]
            assert overview["scan_status"] == "Success"
        before = _rows(server, image.digest)
        assert all(before[table] > 0 for table in CONTENT_TABLES), before
        assert {f"reports:{project}/one", f"reports:{project}/two"} <= set(before)

        # One of two repositories deletes it: its reports go, the shared content and the
        # other repository's report stay.
        r = client.delete(f"/projects/{project}/repositories/one/artifacts/{image.digest}")
        assert r.status_code == 200, r.text
        after_one = _rows(server, image.digest)
        assert f"reports:{project}/one" not in after_one
        assert f"reports:{project}/two" in after_one
        assert {table: after_one[table] for table in CONTENT_TABLES} == {
            table: before[table] for table in CONTENT_TABLES
        }
        two = client.get(
            f"/projects/{project}/repositories/two/artifacts/{image.digest}", params={"with_scan_overview": "true"}
        ).json()
        assert two["scan_overview"][REPORT_MIME]["scan_status"] == "Success"

    # The last holder deletes it through /v2: nothing of its scans is left.
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        r = registry.delete(f"/v2/{project}/two/manifests/{image.digest}")
        assert r.status_code == 202, r.text
    assert _rows(server, image.digest) == {table: 0 for table in CONTENT_TABLES}
