"""The scheduled update of the vulnerability database on a live server: `vulndb_urls` names
a mirror (here a plain HTTP server on 127.0.0.1 holding the fixtures), and the server imports
from it by itself, as a job of its own, with no command run — what a site inside a network
with an internal mirror relies on."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.scan.shared import VULNDB_FIXTURES
from tests.servers import ADMIN_PASSWORD, Portside


class _Mirror(SimpleHTTPRequestHandler):
    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def mirror() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = functools.partial(
        type("Mirror", (_Mirror,), {"requests": seen}), directory=str(VULNDB_FIXTURES / "debian-tracker")
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/tracker-json-sample.json", seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_server_updates_its_database_from_the_configured_mirror(tmp_path, mirror) -> None:
    url, seen = mirror
    env = {"PORTSIDE_JOB_POLL_SECONDS": "1", "PORTSIDE_VULNDB_URLS": json.dumps([url])}
    server = Portside(data_dir=tmp_path / "data", open_registry=False, env=env).start()
    try:
        with httpx.Client(base_url=server.url + "/api/v2.0", auth=("admin", ADMIN_PASSWORD), timeout=30) as api:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                health = api.get("/health").json()
                component = next(c for c in health["components"] if c["name"] == "vulnerability-database")
                if component["status"] == "healthy":
                    break
                time.sleep(0.5)
            assert component["status"] == "healthy", component
        status = subprocess.run(
            [sys.executable, "-m", "portside", "vulndb", "status", "--json", "--data-dir", str(server.data_dir)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert status.returncode == 0, status.stderr
        [source] = json.loads(status.stdout)["sources"]
        assert (source["name"], source["origin"], source["record_count"]) == ("debian-tracker", url, 3), source
        time.sleep(2)  # more polls: the source is not due again, so nothing is fetched again
        assert seen == ["/tracker-json-sample.json"]
    finally:
        server.stop()
