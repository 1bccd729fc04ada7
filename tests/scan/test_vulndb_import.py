"""The importers, on the shared fixtures as they are: OSV (zip, directory, file), the
Debian tracker's two shapes, Alpine's secdb (whole and per package), bundles, and the
HTTP path (conditional requests, OSV's modified_id.csv) against a local server."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import threading
import zipfile
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from portside.meta.sql.engine import create_engine
from portside.meta.sql.migrate import upgrade
from portside.meta.sql.vulndb import SqlVulnerabilities
from portside.scan.vulndb.bundle import write_manifest
from portside.scan.vulndb.load import read_path
from portside.scan.vulndb.records import package_key
from portside.scan.vulndb.update import due_urls, import_path, import_url, update_from_urls, update_if_due
from tests.scan.shared import VULNDB_FIXTURES

OSV = VULNDB_FIXTURES / "osv"
DEBIAN = VULNDB_FIXTURES / "debian-tracker"
ALPINE = VULNDB_FIXTURES / "alpine-secdb"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlVulnerabilities]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'meta.db'}")
    await upgrade(engine)
    yield SqlVulnerabilities(engine)
    await engine.dispose()


def _zip(folder: Path, target: Path, only: list[str] | None = None) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for file in sorted(folder.glob("*.json")):
            if only is None or file.stem in only:
                archive.write(file, file.name)
    return target


def _counts(path: Path) -> dict[str, int]:
    return {parsed.name: len(parsed.advisories) for parsed in read_path(path)}


def test_osv_directory_zip_and_file_read_alike(tmp_path: Path) -> None:
    files = {ecosystem: len(list((OSV / ecosystem).glob("*.json"))) for ecosystem in ("PyPI", "npm", "Go")}
    assert _counts(OSV) == {f"osv:{ecosystem}": count for ecosystem, count in files.items()}
    assert _counts(_zip(OSV / "PyPI", tmp_path / "all.zip")) == {"osv:PyPI": files["PyPI"]}
    assert _counts(OSV / "npm" / "GHSA-29mw-wpgm-hmr9.json") == {"osv:npm": 1}


def test_osv_records_keep_what_matching_and_reports_need() -> None:
    (parsed,) = read_path(OSV / "npm" / "GHSA-29mw-wpgm-hmr9.json")
    (advisory,) = parsed.advisories
    raw = json.loads((OSV / "npm" / "GHSA-29mw-wpgm-hmr9.json").read_text())
    assert advisory.aliases == tuple(raw["aliases"])
    assert advisory.cvss_vector == raw["severity"][0]["score"]
    assert advisory.cwe_ids == tuple(raw["database_specific"]["cwe_ids"])
    assert advisory.severity == raw["database_specific"]["severity"]
    assert [entry.package for entry in advisory.affected] == [a["package"]["name"] for a in raw["affected"]]
    assert json.loads(advisory.affected[0].ranges) == raw["affected"][0]["ranges"]
    assert advisory.references == tuple(ref["url"] for ref in raw["references"])


def test_pypi_names_are_pep_503_normalised() -> None:
    (parsed,) = read_path(OSV / "PyPI")
    names = {entry.package for advisory in parsed.advisories for entry in advisory.affected}
    assert names == {"requests", "urllib3", "jinja2", "pyyaml", "django", "setuptools", "pip"}
    assert package_key("PyPI", "Jinja2") == "jinja2" and package_key("PyPI", "zope.interface") == "zope-interface"
    assert package_key("Go", "golang.org/x/net") == "golang.org/x/net"


def test_go_git_ranges_are_dropped_and_stdlib_kept() -> None:
    (parsed,) = read_path(OSV / "Go")
    entries = [entry for advisory in parsed.advisories for entry in advisory.affected]
    assert {json.loads(entry.ranges)[0]["type"] for entry in entries} == {"SEMVER"}
    assert "stdlib" in {entry.package for entry in entries}


async def test_withdrawn_records_are_kept_out_of_matching(store: SqlVulnerabilities, tmp_path: Path) -> None:
    record = json.loads((OSV / "npm" / "GHSA-29mw-wpgm-hmr9.json").read_text())
    record["withdrawn"] = "2024-01-01T00:00:00Z"
    (tmp_path / "withdrawn.json").write_text(json.dumps(record))
    await import_path(store, tmp_path / "withdrawn.json")
    assert await store.candidates("npm", [""], ["lodash"]) == []
    assert (await store.sources())[0].record_count == 1


def test_debian_tracker_export() -> None:
    document = json.loads((DEBIAN / "tracker-json-sample.json").read_text())
    (parsed,) = read_path(DEBIAN / "tracker-json-sample.json")
    assert parsed.name == "debian-tracker"
    assert {a.id for a in parsed.advisories} == {cve for cves in document.values() for cve in cves}
    by_id = {a.id: a for a in parsed.advisories}
    for package, cves in document.items():
        for cve, facts in cves.items():
            entries = {e.release: e for e in by_id[cve].affected if e.package == package}
            assert set(entries) == set(facts["releases"])
            for release, state in facts["releases"].items():
                entry = entries[release]
                assert entry.not_affected == (state["fixed_version"] == "0")
                if state["fixed_version"] != "0":
                    assert entry.fixed == state["fixed_version"]
                urgency = state["urgency"].rstrip("*")
                assert entry.severity == (None if urgency == "not yet assigned" else urgency)


def test_debian_tracker_list_entries() -> None:
    (parsed,) = read_path(DEBIAN / "vuln-list-debian")
    assert parsed.name == "debian-tracker-list"
    assert len(parsed.advisories) == len(list((DEBIAN / "vuln-list-debian").rglob("*.json")))
    by_id = {a.id: a for a in parsed.advisories}
    # DSAs name their CVEs and carry per-release fixes
    dsa = json.loads((DEBIAN / "vuln-list-debian/DSA/DSA-5514-1.json").read_text())
    assert by_id["DSA-5514-1"].aliases == tuple(dsa["Annotations"][0]["Bugs"])
    assert {(e.release, e.fixed) for e in by_id["DSA-5514-1"].affected} == {
        (a["Release"], a["Version"]) for a in dsa["Annotations"] if a["Type"] == "package"
    }
    # the unstable line stands for releases without their own; experimental is ignored
    tar = {(e.release, e.severity) for e in by_id["CVE-2005-2541"].affected}
    assert ("", "unimportant") in tar
    assert all(e.release != "experimental" for a in parsed.advisories for e in a.affected)


def test_alpine_secdb_and_per_package_files_agree() -> None:
    (whole,) = read_path(ALPINE / "v3.18-main.json")
    (split,) = read_path(ALPINE / "vuln-list")
    assert whole.name == split.name == "alpine-secdb:v3.18-main"

    def facts(parsed: Any) -> set[tuple[str, str, str | None, bool]]:
        return {(a.id, e.package, e.fixed, e.not_affected) for a in parsed.advisories for e in a.affected}

    assert facts(whole) == facts(split)
    zlib = json.loads((ALPINE / "vuln-list/alpine/3.18/main/zlib.json").read_text())
    expected = {(i, "zlib", None if v == "0" else v, v == "0") for v, ids in zlib["secfixes"].items() for i in ids}
    assert {fact for fact in facts(whole) if fact[1] == "zlib"} == expected


def test_alpine_malformed_entries_are_skipped_and_said(tmp_path: Path) -> None:
    document = json.loads((ALPINE / "v3.18-main.json").read_text())
    document["packages"].append({"pkg": {"name": "broken", "secfixes": {"1.0-r0": "CVE-1"}}})
    document["packages"].append({"pkg": {"name": "worse", "secfixes": {"not a version!": ["CVE-2"]}}})
    document["packages"].append("nonsense")
    (tmp_path / "main.json").write_text(json.dumps(document))
    (parsed,) = read_path(tmp_path / "main.json")
    assert {e.package for a in parsed.advisories for e in a.affected} == {"busybox", "musl", "openssl", "zlib"}
    assert len(parsed.skipped) == 3


def _bundle(root: Path) -> Path:
    shutil.copytree(OSV / "npm", root / "osv" / "npm")
    _zip(OSV / "PyPI", root / "osv" / "PyPI.zip")
    shutil.copytree(DEBIAN / "vuln-list-debian", root / "debian" / "vuln-list-debian")
    shutil.copy(ALPINE / "v3.18-main.json", root / "alpine-v3.18-main.json")
    write_manifest(
        root,
        [
            ("osv/npm", "osv"),
            ("osv/PyPI.zip", "osv"),
            ("debian/vuln-list-debian", "debian-tracker-list"),
            ("alpine-v3.18-main.json", "alpine-secdb"),
        ],
        "2026-12-01T00:00:00Z",
    )
    return root


async def test_bundle_tar_gz(store: SqlVulnerabilities, tmp_path: Path) -> None:
    root = _bundle(tmp_path / "bundle")
    archive = tmp_path / "bundle.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname=".")
    outcome = await import_path(store, archive)
    assert {s.name: s.record_count for s in outcome.sources} == {
        "osv:npm": 14,
        "osv:PyPI": 150,
        "debian-tracker-list": 22,
        "alpine-secdb:v3.18-main": 87,
    }
    assert outcome.skipped == ()
    assert {s.origin for s in await store.sources()} == {str(archive)}


def test_bundle_refuses_mislabelled_and_escaping_files(tmp_path: Path) -> None:
    root = _bundle(tmp_path / "bundle")
    manifest = json.loads((root / "bundle.json").read_text())
    manifest["files"][0]["kind"] = "alpine-secdb"
    (root / "bundle.json").write_text(json.dumps(manifest))
    parsed = read_path(root)
    assert "osv:npm" not in {p.name for p in parsed}
    assert any("not a alpine-secdb document" in note for p in parsed for note in p.skipped)
    manifest["files"][0]["path"] = "../../etc"
    (root / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="leaves the bundle"):
        read_path(root)


class _Served:
    """A directory served on 127.0.0.1 with ETags and conditional GETs; it logs requests."""

    def __init__(self, root: Path):
        self.root = root
        self.requests: list[tuple[str, int]] = []
        served = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                file = Path(self.translate_path(self.path))
                if not file.is_file():
                    served.requests.append((self.path, 404))
                    self.send_error(404)
                    return
                body = file.read_bytes()
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                if self.headers.get("If-None-Match") == etag:
                    served.requests.append((self.path, 304))
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                served.requests.append((self.path, 200))
                self.send_response(200)
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", self.date_time_string(int(file.stat().st_mtime)))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[_Served]:
    root = tmp_path / "www"
    root.mkdir()
    server = _Served(root)
    yield server
    server.stop()


async def test_url_import_is_conditional(store: SqlVulnerabilities, served: _Served) -> None:
    shutil.copy(ALPINE / "v3.18-main.json", served.root / "main.json")
    url = f"{served.base}/main.json"
    first = await import_url(store, url)
    assert not first.unchanged and first.record_count == 87
    (source,) = await store.sources()
    assert source.etag and source.last_modified and source.origin == url
    second = await import_url(store, url)
    assert second.unchanged and served.requests[-1] == ("/main.json", 304)
    assert (await store.sources())[0].generation == source.generation  # nothing moved
    document = json.loads((served.root / "main.json").read_text())
    document["packages"] = document["packages"][:1]
    (served.root / "main.json").write_text(json.dumps(document))
    third = await import_url(store, url)
    assert not third.unchanged and third.sources[0].generation == source.generation + 1
    assert third.record_count < 87


async def test_osv_modified_id_csv_fetches_only_newer_records(store: SqlVulnerabilities, served: _Served) -> None:
    folder = served.root / "npm"
    folder.mkdir()
    records = {f.stem: json.loads(f.read_text()) for f in (OSV / "npm").glob("*.json")}
    for name in records:
        shutil.copy(OSV / "npm" / f"{name}.json", folder / f"{name}.json")
    newest_first = sorted(records, key=lambda name: records[name]["modified"], reverse=True)
    held_back = newest_first[:2]  # all.zip is older than the two newest records
    _zip(folder, folder / "all.zip", only=newest_first[2:])
    listing = "".join(f"{records[name]['modified']},{name}\n" for name in newest_first)
    (folder / "modified_id.csv").write_text(listing)
    url = f"{served.base}/npm/modified_id.csv"

    first = await import_url(store, url)
    assert first.sources[0].name == "osv:npm" and first.record_count == len(records) - 2
    served.requests.clear()
    second = await import_url(store, url)
    fetched = sorted(path for path, _status in served.requests if path.endswith(".json"))
    assert fetched == sorted(f"/npm/{name}.json" for name in held_back)
    assert second.record_count == len(records)
    served.requests.clear()
    third = await update_from_urls(store, [url, f"{served.base}/missing.json"])
    assert [outcome.unchanged for outcome in third] == [True]  # the failing URL is logged, not fatal
    assert not any(path.endswith(".json") and path != "/missing.json" for path, _ in served.requests)


def test_a_tar_of_a_plain_directory(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(DEBIAN / "tracker-json-sample.json", arcname="data/tracker.json")
    (tmp_path / "tracker.tar").write_bytes(buffer.getvalue())
    assert _counts(tmp_path / "tracker.tar") == {"debian-tracker": 3}


async def test_scheduled_update_runs_only_what_is_due(store: SqlVulnerabilities, served: _Served) -> None:
    shutil.copy(ALPINE / "v3.18-main.json", served.root / "main.json")
    url = f"{served.base}/main.json"
    assert await update_if_due(store, [], 3600) == []  # offline: nothing configured
    (first,) = await update_if_due(store, [url], 3600)
    assert first.record_count == 87
    served.requests.clear()
    assert await update_if_due(store, [url], 3600) == []  # checked moments ago
    assert served.requests == []
    sources = await store.sources()
    later = sources[0].imported_at + timedelta(hours=2)
    assert due_urls(sources, [url, f"{served.base}/other.json"], 3600, later) == [url, f"{served.base}/other.json"]
    assert due_urls(sources, [url], 3600) == []
