"""scan/external.py against a live adapter (a small HTTP server speaking the adapter
API's scan and report endpoints): the request reaches the adapter with its registry
credential, a 302 is waited out, and the report becomes stored findings with their fixed
versions and the adapter's scanner; an adapter that is gone is an AdapterUnreachable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from portside.scan.adapter import AdapterClient, AdapterUnreachable, ScanRequest
from portside.scan.external import scan_with_adapter
from tests.scan.scanning import PYTHON_PACKAGE
from tests.scan.stub_adapters import running

SCANNER = {"name": "Stub", "vendor": "Tests", "version": "0.2"}
# The advisories the fixtures say apply to the package, as the adapter reports them.
VULNERABILITIES = [
    {
        "id": advisory,
        "package": PYTHON_PACKAGE["package"],
        "version": PYTHON_PACKAGE["version"],
        "fix_version": f"{index + 3}.0.0",
        "severity": "High",
        "description": f"{advisory} in {PYTHON_PACKAGE['package']}",
        "links": [f"https://osv.dev/{advisory}"],
    }
    for index, advisory in enumerate(PYTHON_PACKAGE["affected"])
]


class _Adapter(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    polls = 0

    def _send(self, status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers.get("Content-Length", "0"))
        _Adapter.received.append(json.loads(self.rfile.read(length)))
        self._send(202, {"id": "scan-1"})

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/api/v1/scan/scan-1/report"):
            _Adapter.polls += 1
            if _Adapter.polls == 1:
                self._send(302, None, {"Refresh-After": "0"})
                return
            report = {"scanner": SCANNER, "severity": "High", "vulnerabilities": VULNERABILITIES}
            self._send(200, report)
            return
        self._send(404, {"error": {"message": "no such path"}})

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def adapter() -> Iterator[str]:
    with running(_Adapter) as url:
        yield url


async def test_report_becomes_findings(adapter: str) -> None:
    request = ScanRequest("http://portside.example", "p/app", "sha256:" + "a" * 64, authorization="Bearer t")
    async with AdapterClient(adapter) as client:
        result = await scan_with_adapter(client, request, "Stub", timeout=10)
    assert _Adapter.received[-1]["registry"]["authorization"] == "Bearer t"
    assert _Adapter.received[-1]["artifact"]["repository"] == "p/app"
    assert (result.scanner_name, result.scanner_vendor, result.scanner_version) == tuple(SCANNER.values())
    fixed = {f.vulnerability_id: f.fixed_version for f in result.findings}
    assert fixed == {v["id"]: v["fix_version"] for v in VULNERABILITIES}
    assert all(f.package == PYTHON_PACKAGE["package"] for f in result.findings)


async def test_gone_adapter_is_unreachable() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Adapter)
    gone = f"http://127.0.0.1:{server.server_address[1]}"
    server.server_close()  # nothing listens there any more
    request = ScanRequest("http://portside.example", "p/app", "sha256:" + "b" * 64)
    async with AdapterClient(gone, timeout=2) as client:
        with pytest.raises(AdapterUnreachable):
            await scan_with_adapter(client, request, "Stub", timeout=5)
