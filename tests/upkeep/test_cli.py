"""`portside gc` and `portside scrub` beside a running server, on its stores."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from portside.oci.digest import Digest
from tests.api import oci
from tests.servers import Portside
from tests.upkeep.conftest import admin_client


def _portside(server: Portside, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portside", *args, "--data-dir", str(server.data_dir)],
        env={**os.environ, **server.env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_gc_and_scrub_commands(live: Portside) -> None:
    with httpx.Client(base_url=live.url, timeout=60) as client:
        kept = oci.push_image(client, "cli/app", "v1")
        dropped = oci.push_image(client, "cli/app", "v0")
        assert client.delete("/v2/cli/app/manifests/v0").status_code == 202

        dry = _portside(live, "gc", "--dry-run", "--delete-untagged", "--grace-seconds", "0")
        assert dry.returncode == 0, dry.stderr
        assert f"would remove untagged manifest cli/app@{dropped.digest}" in dry.stdout
        for blob in dropped.blobs:
            assert f"would delete blob {blob.digest}" in dry.stdout
        assert '"dry_run": true' in dry.stdout
        assert client.get(f"/v2/cli/app/manifests/{dropped.digest}").status_code == 200

        real = _portside(live, "gc", "--delete-untagged", "--grace-seconds", "0")
        assert real.returncode == 0, real.stderr
        assert client.get(f"/v2/cli/app/manifests/{dropped.digest}").status_code == 404
        for blob in kept.blobs:
            assert client.get(f"/v2/cli/app/blobs/{blob.digest}").content == blob.data
        with admin_client(live) as admin:
            history = admin.get("/api/v2.0/system/gc").json()
        assert [(j["job_kind"], j["job_status"]) for j in history] == [("MANUAL", "Success")] * 2

        clean = _portside(live, "scrub")
        assert clean.returncode == 0, clean.stderr
        assert "0 corrupted, 0 missing" in clean.stdout

        if "PORTSIDE_STORAGE_URL" in live.env:
            pytest.skip("corrupting a blob needs the filesystem store")
        layer = Digest.parse(kept.blobs[1].digest)
        path = live.data_dir / "blobs" / layer.algorithm / layer.hex[:2] / layer.hex
        path.write_bytes(b"x" * path.stat().st_size)
        found = _portside(live, "scrub")
        assert found.returncode == 2, found.stderr
        assert f"blob {layer} is corrupted" in found.stdout
        assert path.exists()
        quarantined = _portside(live, "scrub", "--quarantine")
        assert quarantined.returncode == 2
        assert f"blob {layer} quarantined" in quarantined.stdout
        assert not path.exists()
        # Pushing the layer again heals it.
        oci.push_blob(client, "cli/app", kept.blobs[1])
        assert client.get(f"/v2/cli/app/blobs/{layer}").content == kept.blobs[1].data
        assert _portside(live, "scrub").returncode == 0
