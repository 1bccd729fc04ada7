"""The adapter client over a real socket: the fake adapter served by Granian on 127.0.0.1,
every exchange still checked against the API's OpenAPI document."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from portside.scan.adapter import VULNERABILITY_REPORT, AdapterClient, VulnerabilityReport
from portside.scan.model import Severity
from tests.scan.test_adapter_client import (
    ADAPTER_AUTH,
    SpecTransport,
    adapter_spec,
    expected_debian_findings,
    scan_request,
)
from tests.servers import free_port, wait_http

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def adapter_url() -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-ws",
            "tests.scan.test_adapter_client:fake_app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/api/v1/metadata", process, timeout=30)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def test_scan_over_a_real_socket(adapter_url: str) -> None:
    spec = adapter_spec()
    spec.checked.clear()
    transport = SpecTransport(httpx.AsyncHTTPTransport(), spec)
    async with AdapterClient(adapter_url, authorization=ADAPTER_AUTH, transport=transport, timeout=10) as client:
        metadata = await client.metadata()
        assert metadata.produces(VULNERABILITY_REPORT)
        # The slow scan makes the client wait for real, as the 302's Refresh-After says (1s, twice).
        report = await client.scan_and_wait(scan_request("library/slow"), timeout=20)
    assert isinstance(report, VulnerabilityReport)
    expected = expected_debian_findings()
    assert [(v.id, v.package, v.severity) for v in report.vulnerabilities] == [
        (r["id"], r["source_package"], Severity.of(r["tracker_severity"])) for r in expected
    ]
    assert [status for _, _, status in spec.checked] == [200, 202, 302, 302, 200]
