"""`portside vulndb import` and `status`, run as the real command on a data directory."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.scan.shared import VULNDB_FIXTURES


def portside(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portside", *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("registry") / "data"
    made = portside("migrate", "--data-dir", str(path))
    assert made.returncode == 0, made.stderr
    return path


def test_import_and_status(data_dir: Path) -> None:
    pypi = portside("vulndb", "import", str(VULNDB_FIXTURES / "osv" / "PyPI"), "--data-dir", str(data_dir))
    assert pypi.returncode == 0, pypi.stderr
    assert pypi.stdout.startswith("osv:PyPI: 150 records")
    alpine = portside(
        "vulndb", "import", str(VULNDB_FIXTURES / "alpine-secdb" / "v3.18-main.json"), "--data-dir", str(data_dir)
    )
    assert alpine.returncode == 0 and "alpine-secdb:v3.18-main: 87 records" in alpine.stdout

    table = portside("vulndb", "status", "--data-dir", str(data_dir))
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["SOURCE", "RECORDS", "IMPORTED", "NEWEST", "RECORD", "AGE"]
    assert [row.split()[:2] for row in rows] == [["alpine-secdb:v3.18-main", "87"], ["osv:PyPI", "150"]]

    report = json.loads(portside("vulndb", "status", "--json", "--data-dir", str(data_dir)).stdout)
    assert report["stale"] is False and report["record_count"] == 237
    pypi_source = next(s for s in report["sources"] if s["name"] == "osv:PyPI")
    newest = max(json.loads(f.read_text())["modified"] for f in (VULNDB_FIXTURES / "osv" / "PyPI").glob("*.json"))
    assert pypi_source["newest_record"].startswith(newest.rstrip("Z")[:19])


def test_import_from_a_url(data_dir: Path) -> None:
    handler = functools.partial(_Quiet, directory=str(VULNDB_FIXTURES / "debian-tracker"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/tracker-json-sample.json"
        done = portside("vulndb", "import", url, "--data-dir", str(data_dir))
        assert done.returncode == 0, done.stderr
        assert "debian-tracker: 3 records" in done.stdout
        missing = portside("vulndb", "import", url + ".gone", "--data-dir", str(data_dir))
        assert missing.returncode == 1 and "HTTP 404" in missing.stderr
    finally:
        server.shutdown()
        server.server_close()
    origins = {
        s["name"]: s["origin"]
        for s in json.loads(portside("vulndb", "status", "--json", "--data-dir", str(data_dir)).stdout)["sources"]
    }
    assert origins["debian-tracker"] == url


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def test_errors_are_said_plainly(tmp_path: Path, data_dir: Path) -> None:
    nowhere = portside("vulndb", "status", "--data-dir", str(tmp_path / "none"))
    assert nowhere.returncode == 1 and "no Portside registry" in nowhere.stderr
    missing = portside("vulndb", "import", str(tmp_path / "absent.zip"), "--data-dir", str(data_dir))
    assert missing.returncode == 1 and "no such file" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = portside("vulndb", "import", str(tmp_path / "empty"), "--data-dir", str(data_dir))
    assert empty.returncode == 1 and "no advisories found" in empty.stderr
