"""The scanner's speed: what an inventory and a match cost, what the scan overview adds to an
artifact list, and what a scan-all running in the background costs the pulls.

    .venv/bin/python -m benchmarks.scanning [--quick] [--json FILE]

Run from the repository root (it imports `tests/servers.py`), with `wrk` and `curl`.

1. **Inventory and match, in-process.** Two images of one layer each, gzipped once
   (untimed): a Debian 12 made by `debootstrap --variant=minbase bookworm` (the rootfs the
   inventory tests cache in /tmp/portside-inventory-cache, made here if missing), and a big
   one of many language packages (2,000 Python dist-infos, 2,000 npm packages, Go binaries
   and jars from this machine, padded with random files to 1 GiB; 100 MiB when quick).
   Each measurement runs in a child process of its own (this module with `--measure`), which
   resets its peak RSS before the measured call, then reports wall time, CPU time (every
   thread's), and how far its peak resident set rose above what it held before. The match
   reads a SQLite database holding every fixture source (/work/shared/fixtures/vulndb).
2. **The artifact list with `with_scan_overview`.** A live Portside (filesystem, SQLite, its
   own access control) holds N images in `bench/app`, each a config of its own over one
   shared layer with a Debian 12 dpkg status and os-release; the fixtures are imported with
   `portside vulndb import`, scan-all runs (timed until every artifact's report is Success),
   then pages 1, 5 and 10 of the list are timed with and without the overview, taking turns
   on one keep-alive connection with a web session's cookie.
   Then Harbor's security hub over every finding: the summary and the list's first page,
   unfiltered and narrowed by severity, CVE, package and CVSS range (a deep page).
3. **Pulls while scan-all runs.** wrk on a manifest GET and curl pulling one blob (Bearer
   token, as docker pulls), idle, and then again while a second scan-all runs. The second
   scan-all finds every inventory stored by the first, so it matches again and reads no
   layers: the scans it runs are what a database update or a re-scan costs.
4. **Re-matching stored inventories, in-process.** N copies (10,000; 1,000 when quick) of
   the Debian 12 inventory of part 1 are stored under digests of their own, as scans store
   them (untimed), in a copy of part 1's database; then the job that runs after a database
   update (`scan_rematch`) matches every one of them again, timed in a child process like
   part 1's measurements.

Everything listens on 127.0.0.1 and is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
from tests.servers import ADMIN_PASSWORD, Portside

from benchmarks.connection import HttpError
from benchmarks.load import curl_get, wrk
from benchmarks.pages import p50, p95, time_pages
from benchmarks.registry import Blob, RegistryClient, basic_auth, bearer_token, session_cookie, sha256_digest
from portside.meta.scans import StoredPackage
from portside.meta.sql.engine import create_engine
from portside.meta.sql.migrate import upgrade
from portside.meta.sql.scans import SqlScans
from portside.meta.sql.vulndb import SqlVulnerabilities
from portside.scan.codec import decode_inventory, encode_inventory
from portside.scan.inventory import take_inventory
from portside.scan.jobs import rematch_job
from portside.scan.match import match
from portside.scan.model import Finding, Inventory, LayerBlob
from portside.scan.service import ScanService, ScanTools
from portside.scan.vulndb.update import import_path

__all__ = ["Sizes", "FULL", "QUICK", "main"]

USERNAME = "admin"
PASSWORD = ADMIN_PASSWORD
PROJECT = "bench"
REPOSITORY = f"{PROJECT}/app"
REPORT_MIME = "application/vnd.security.vulnerability.report; version=1.1"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

FIXTURES = Path(os.environ.get("PORTSIDE_VULNDB_FIXTURES", "/work/shared/fixtures/vulndb"))
# What test_match imports: every OSV ecosystem, the Debian tracker in vuln-list's layout,
# Alpine 3.18's secdb.
FIXTURE_SOURCES = ("osv", "debian-tracker/vuln-list-debian", "alpine-secdb/v3.18-main.json")
DEBOOTSTRAP_CACHE = Path("/tmp/portside-inventory-cache")
DEBIAN_OS_RELEASE = (
    b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
    b'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
)
GO_BINARIES = ("/usr/bin/skopeo", "/usr/bin/containerd", "/usr/bin/containerd-shim-runc-v2", "/usr/bin/docker-registry")
JARS = Path("/usr/share/java")
MiB = 1024 * 1024
_SEEDING_CONNECTIONS = 8


@dataclass(frozen=True)
class Sizes:
    rounds: int  # of each in-process measurement
    big_image: int  # bytes of the language image's layer, before gzip
    python_dists: int
    npm_packages: int
    images: int  # in bench/app, scanned by scan-all
    page_size: int  # of the timed list pages (1, 5 and 10)
    requests: int  # timed, of each list page
    warmup: int
    load_seconds: float  # of each wrk run
    connections: int
    blob: int  # bytes of the pulled blob
    pulls: int  # of the blob, each round
    pull_rounds: int  # idle, and while scan-all runs
    scan_timeout: float  # seconds a scan-all may take before the run gives up
    rematched: int  # stored inventories matched again after a database update


FULL = Sizes(
    rounds=3,
    big_image=1024 * MiB,
    python_dists=2000,
    npm_packages=2000,
    images=1000,
    page_size=100,
    requests=40,
    warmup=3,
    load_seconds=5.0,
    connections=16,
    blob=64 * MiB,
    pulls=3,
    pull_rounds=3,
    scan_timeout=480.0,
    rematched=10_000,
)
QUICK = Sizes(
    rounds=2,
    big_image=100 * MiB,
    python_dists=2000,
    npm_packages=2000,
    images=100,
    page_size=10,
    requests=10,
    warmup=2,
    load_seconds=2.0,
    connections=16,
    blob=16 * MiB,
    pulls=2,
    pull_rounds=2,
    scan_timeout=120.0,
    rematched=1_000,
)
PAGES = (1, 5, 10)


def _log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# -- the images of part 1 -------------------------------------------------------------------


@dataclass(frozen=True)
class LayerFile:
    """A gzipped layer on disk."""

    label: str
    path: Path
    digest: str
    size: int  # compressed
    unpacked: int  # the tar's bytes


def _gzip_file(source: Path, target: Path, label: str) -> LayerFile:
    digest = hashlib.sha256()
    with source.open("rb") as raw, target.open("wb") as out:
        with gzip.GzipFile(fileobj=_Hashing(out, digest), mode="wb", compresslevel=6, mtime=0) as packed:
            shutil.copyfileobj(raw, packed, 4 * MiB)
    return LayerFile(label, target, f"sha256:{digest.hexdigest()}", target.stat().st_size, source.stat().st_size)


class _Hashing(io.RawIOBase):
    """A write-only stream that hashes what goes through it to `out`."""

    def __init__(self, out: io.BufferedWriter, digest: Any):
        self._out = out
        self._digest = digest

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self._digest.update(view)
        self._out.write(view)
        return len(view)


def debian_tar() -> Path:
    """The debootstrap rootfs tarred as one layer: the inventory tests' cache when it holds
    one, else made there as they make it (debootstrap takes minutes, and root)."""
    rootfs = DEBOOTSTRAP_CACHE / "bookworm-minbase"
    tar_path = DEBOOTSTRAP_CACHE / "bookworm-minbase.tar"
    if tar_path.exists():
        return tar_path
    if not rootfs.is_dir():
        if shutil.which("debootstrap") is None:
            raise RuntimeError("no cached Debian 12 rootfs and no debootstrap (apt install debootstrap)")
        _log("making a Debian 12 minbase rootfs with debootstrap (minutes)")
        partial = DEBOOTSTRAP_CACHE / "bookworm-minbase.partial"
        shutil.rmtree(partial, ignore_errors=True)
        DEBOOTSTRAP_CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(partial), "http://deb.debian.org/debian"],
            check=True,
            capture_output=True,
        )
        partial.rename(rootfs)
    partial_tar = tar_path.with_suffix(".partial")
    with tarfile.open(partial_tar, "w") as tar:
        for child in sorted(rootfs.iterdir()):
            if child.name not in ("proc", "sys", "dev"):
                tar.add(child, arcname=child.name)
    partial_tar.rename(tar_path)
    return tar_path


def _add_bytes(tar: tarfile.TarFile, path: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(path)
    info.size, info.mode, info.mtime = len(data), mode, 1_700_000_000
    tar.addfile(info, io.BytesIO(data))


def _expected_packages(ecosystem: str) -> list[tuple[str, str]]:
    """The fixture packages of an ecosystem that EXPECTED.json names: the big image holds
    them among its synthetic ones, so the match has advisories to find."""
    expected = json.loads((FIXTURES / "EXPECTED.json").read_text())["osv"]
    return [(entry["package"], entry["version"]) for entry in expected.values() if entry["ecosystem"] == ecosystem]


def _python_dists(tar: tarfile.TarFile, count: int) -> None:
    named = _expected_packages("PyPI")
    named += [(f"bench-dist-{i:04d}", f"1.{i % 40}.{i % 7}") for i in range(count - len(named))]
    for name, version in named:
        where = f"usr/lib/python3/dist-packages/{name}-{version}.dist-info"
        metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {name}\nLicense: MIT\n"
        _add_bytes(tar, f"{where}/METADATA", metadata.encode())
        _add_bytes(tar, f"{where}/RECORD", f"{name}/__init__.py,,\n".encode())
        _add_bytes(
            tar, f"usr/lib/python3/dist-packages/{name}/__init__.py", b"__version__ = '" + version.encode() + b"'\n"
        )


def _npm_packages(tar: tarfile.TarFile, count: int) -> None:
    named = _expected_packages("npm")
    named += [(f"bench-module-{i:04d}", f"2.{i % 30}.{i % 11}") for i in range(count - len(named))]
    for name, version in named:
        manifest = {"name": name, "version": version, "license": "MIT", "main": "index.js"}
        _add_bytes(tar, f"srv/app/node_modules/{name}/package.json", json.dumps(manifest).encode())
        _add_bytes(tar, f"srv/app/node_modules/{name}/index.js", b"module.exports = {};\n")


def big_layer(work: Path, sizes: Sizes) -> LayerFile:
    """One layer of many language packages, Go binaries and jars, padded with random files
    (incompressible, as media and model files are) up to `sizes.big_image` bytes of tar.
    Gzipped at level 1, as it is written: the padding would not shrink at any level."""
    path = work / "languages.tar.gz"
    digest = hashlib.sha256()
    with path.open("wb") as out:
        with gzip.GzipFile(fileobj=_Hashing(out, digest), mode="wb", compresslevel=1, mtime=0) as packed:
            counted = _Counting(packed)
            with tarfile.open(fileobj=counted, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                _python_dists(tar, sizes.python_dists)
                _npm_packages(tar, sizes.npm_packages)
                for binary in GO_BINARIES:
                    if os.path.isfile(binary):
                        tar.add(binary, arcname=f"usr/local/bin/{os.path.basename(binary)}")
                for jar in sorted(JARS.glob("*.jar")):
                    if jar.is_file() and not jar.is_symlink():
                        tar.add(jar, arcname=f"opt/app/lib/{jar.name}")
                chunk = 8 * MiB
                index = 0
                while counted.written + chunk + 4096 <= sizes.big_image:
                    _add_bytes(tar, f"srv/data/blob-{index:04d}.bin", os.urandom(chunk))
                    index += 1
                left = sizes.big_image - counted.written - 4096 - 1024 * 10
                if left > 0:
                    _add_bytes(tar, f"srv/data/blob-{index:04d}.bin", os.urandom(left))
            unpacked = counted.written
    label = f"{sizes.python_dists:,} Python + {sizes.npm_packages:,} npm packages, Go binaries, jars"
    return LayerFile(label, path, f"sha256:{digest.hexdigest()}", path.stat().st_size, unpacked)


class _Counting(io.RawIOBase):
    """Counts the bytes written through it."""

    def __init__(self, out: Any):
        self._out = out
        self.written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        size = len(memoryview(data))
        self._out.write(data)
        self.written += size
        return size


async def fill_database(path: Path) -> None:
    """A migrated SQLite database holding every fixture source, as the matching tests hold it."""
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade(engine)
        store = SqlVulnerabilities(engine)
        for part in FIXTURE_SOURCES:
            await import_path(store, FIXTURES / part)
    finally:
        await engine.dispose()


# -- one measurement in a child process -----------------------------------------------------


def _status_kib(name: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(name):
                return int(line.split()[1])
    raise RuntimeError(f"no {name} in /proc/self/status")


def _reset_peak() -> None:
    """Set the kernel's high-water mark of this process's resident set to what it holds now
    (clear_refs 5, Linux 4.0+), so the peak read afterwards is the measured call's."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass  # then the peak may be an earlier one: the growth reported is an upper bound


async def _measured(call: Callable[[], Awaitable[Any]]) -> tuple[Any, dict[str, float]]:
    _reset_peak()
    before_kib = _status_kib("VmRSS:")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = await call()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    peak_kib = _status_kib("VmHWM:")
    return result, {
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_growth_mib": (peak_kib - before_kib) / 1024,
        "peak_rss_mib": peak_kib / 1024,
    }


def _file_blob(path: Path, digest: str) -> LayerBlob:
    async def chunks() -> AsyncIterator[bytes]:
        with path.open("rb") as handle:
            while piece := handle.read(MiB):
                yield piece

    return LayerBlob(digest=digest, media_type=OCI_LAYER, size=path.stat().st_size, open=chunks)


async def _measure_inventory(layer: Path, digest: str, save: Path) -> dict[str, Any]:
    blob = _file_blob(layer, digest)
    inventory, measured = await _measured(lambda: take_inventory([blob]))
    save.write_bytes(encode_inventory(inventory))
    ecosystems: dict[str, int] = {}
    for package in inventory.packages:
        ecosystems[package.ecosystem.value] = ecosystems.get(package.ecosystem.value, 0) + 1
    return {**measured, "packages": len(inventory.packages), "ecosystems": ecosystems, "notes": len(inventory.notes)}


async def _measure_match(saved: Path, database: Path) -> dict[str, Any]:
    inventory = decode_inventory(saved.read_bytes())
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    try:
        store = SqlVulnerabilities(engine)
        findings, measured = await _measured(lambda: match(inventory, store))
    finally:
        await engine.dispose()
    fixable = sum(1 for finding in findings if finding.fixed_version)
    return {**measured, "packages": len(inventory.packages), "findings": len(findings), "fixable": fixable}


class _QuietJournal:
    """The job journal `rematch_job` writes to: kept, not printed."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)

    async def checkpoint(self) -> None:
        return None


async def _measure_rematch(saved: Path, database: Path, count: int) -> dict[str, Any]:
    encoded = saved.read_bytes()
    inventory = decode_inventory(encoded)
    packages = [
        StoredPackage(p.ecosystem.value, p.name, p.version, p.purl, p.path, p.layer) for p in inventory.packages
    ]
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    try:
        vulnerabilities = SqlVulnerabilities(engine)
        scans = SqlScans(engine)
        seeding = time.perf_counter()
        for index in range(count):  # as scans store them, one inventory at a time
            await scans.put_inventory(sha256_digest(f"rematch-{index}".encode()), encoded, packages)
        seed_seconds = time.perf_counter() - seeding

        async def matched(inventory: Inventory) -> list[Finding]:
            return await match(inventory, vulnerabilities)

        def no_sbom(*_: object) -> dict[str, Any]:
            raise AssertionError("re-matching writes no SBOM")

        tools = ScanTools(
            take_inventory, matched, vulnerabilities.generation, encode_inventory, decode_inventory, no_sbom
        )
        # Re-matching reads the store and the tools only: no manifests, blobs or uploads.
        service = ScanService(scans, cast(Any, None), cast(Any, None), cast(Any, None), tools, "bench")
        job = rematch_job(scans, service, vulnerabilities.generation)
        journal = _QuietJournal()
        outcome, measured = await _measured(lambda: job({}, cast(Any, journal)))
        findings = len(await scans.findings(sha256_digest(b"rematch-0")))
    finally:
        await engine.dispose()
    return {
        **measured,
        "inventories": count,
        "matched": outcome["matched"],
        "packages_each": len(inventory.packages),
        "findings_each": findings,
        "seed_seconds": seed_seconds,
        "ms_per_inventory": measured["wall_s"] * 1000 / max(1, outcome["matched"]),
    }


def rematching(work: Path, sizes: Sizes) -> dict[str, Any]:
    saved = work / "debian12.tar.gz.inventory"  # part 1's Debian inventory
    database = work / "rematch.db"
    shutil.copyfile(work / "vulndb.db", database)
    _log(f"re-matching {sizes.rematched:,} stored inventories (seeding them first, untimed)")
    return _child("rematch", str(saved), str(database), str(sizes.rematched))


def _child(kind: str, *args: str) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter and read its JSON answer."""
    command = [sys.executable, "-m", "benchmarks.scanning", "--measure", kind, *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=Path(__file__).parents[1])
    if done.returncode != 0:
        raise RuntimeError(f"{kind} measurement failed ({done.returncode}):\n{done.stderr[-4000:]}")
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def _spread(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def inventory_and_match(work: Path, sizes: Sizes) -> dict[str, Any]:
    database = work / "vulndb.db"
    _log("importing the fixtures into SQLite")
    started = time.perf_counter()
    asyncio.run(fill_database(database))
    import_seconds = time.perf_counter() - started
    _log("gzipping the Debian 12 layer (untimed)")
    debian = _gzip_file(debian_tar(), work / "debian12.tar.gz", "Debian 12 minbase (debootstrap)")
    _log(f"building the language image, {sizes.big_image // MiB} MiB (untimed)")
    big = big_layer(work, sizes)
    images = []
    for layer in (debian, big):
        saved = work / f"{layer.path.name}.inventory"
        inventories, matches = [], []
        for round_ in range(sizes.rounds):
            _log(f"{layer.label}: inventory and match, round {round_ + 1} of {sizes.rounds}")
            inventories.append(_child("inventory", str(layer.path), layer.digest, str(saved)))
            matches.append(_child("match", str(saved), str(database)))
        images.append(
            {
                "image": layer.label,
                "layer_bytes": layer.size,
                "tar_bytes": layer.unpacked,
                "packages": inventories[-1]["packages"],
                "ecosystems": inventories[-1]["ecosystems"],
                "findings": matches[-1]["findings"],
                "fixable": matches[-1]["fixable"],
                "inventory": {key: _spread([s[key] for s in inventories]) for key in _MEASURES},
                "match": {key: _spread([s[key] for s in matches]) for key in _MEASURES},
                "inventory_samples": inventories,
                "match_samples": matches,
            }
        )
    return {"import_seconds": import_seconds, "database_bytes": database.stat().st_size, "images": images}


_MEASURES = ("wall_s", "cpu_s", "peak_growth_mib", "peak_rss_mib")


# -- the live server of parts 2 and 3 -------------------------------------------------------


def _tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in files.items():
            _add_bytes(tar, path, data)
    return gzip.compress(buffer.getvalue(), mtime=0)


def _json_bytes(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _image_config(index: int, layer: Blob, diff_id: str) -> Blob:
    """Each image's own config: the build number in a label makes it distinct."""
    return Blob.of(
        _json_bytes(
            {
                "architecture": "amd64",
                "os": "linux",
                "created": "2026-01-05T08:00:00Z",
                "config": {"Labels": {"build": str(index)}, "Cmd": ["/bin/sh"]},
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                "history": [{"created": "2026-01-05T08:00:00Z", "created_by": "ADD rootfs /"}],
            }
        )
    )


def _manifest(config: Blob, layer: Blob) -> bytes:
    return _json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config.digest, "size": config.size},
            "layers": [{"mediaType": OCI_LAYER, "digest": layer.digest, "size": layer.size}],
        }
    )


def tag_name(index: int) -> str:
    return f"v{index:05d}"


def _in_parallel(url: str, auth: dict[str, str], count: int, work: Callable[[RegistryClient, int], None]) -> None:
    def run(part: range) -> None:
        with RegistryClient(url, auth) as client:
            for item in part:
                work(client, item)

    parts = [range(i, count, _SEEDING_CONNECTIONS) for i in range(_SEEDING_CONNECTIONS)]
    with ThreadPoolExecutor(_SEEDING_CONNECTIONS) as pool:
        for done in [pool.submit(run, part) for part in parts]:
            done.result()


def push_images(url: str, count: int) -> None:
    """`count` images in bench/app over one shared Debian 12 layer (dpkg status and os-release)."""
    status = (FIXTURES / "debian12-minbase-status.txt").read_bytes()
    tar = _tar_gz({"etc/os-release": DEBIAN_OS_RELEASE, "var/lib/dpkg/status": status})
    layer = Blob.of(tar)
    diff_id = sha256_digest(gzip.decompress(tar))
    auth = basic_auth(USERNAME, PASSWORD)
    with RegistryClient(url, auth) as client:
        client.push_blob(REPOSITORY, layer)

    def push(client: RegistryClient, index: int) -> None:
        config = _image_config(index, layer, diff_id)
        client.push_blob(REPOSITORY, config)
        client.put_manifest(REPOSITORY, tag_name(index), _manifest(config, layer), OCI_MANIFEST)

    _in_parallel(url, auth, count, push)


def _start_server(root: Path) -> Portside:
    env = {
        "PORTSIDE_LOG_REQUESTS": "false",
        "PORTSIDE_LOG_LEVEL": "warning",
        "PORTSIDE_WORKERS": str(os.cpu_count() or 1),
        "PORTSIDE_LOGIN_FAILURE_LIMIT": "1000000",
    }
    server = Portside(data_dir=root / "portside" / "data", env=env, open_registry=False)
    try:
        server.start()
    except (RuntimeError, TimeoutError) as error:
        server.stop()
        raise RuntimeError(f"{error}; the end of its log:\n{server.log()[-4000:]}") from None
    return server


def _vulndb_import(server: Portside, path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "portside", "vulndb", "import", str(path), "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=600,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    if done.returncode != 0:
        raise RuntimeError(f"portside vulndb import {path} failed:\n{done.stdout}{done.stderr}")


class Api:
    """Harbor's API as the administrator, with Basic credentials."""

    def __init__(self, url: str):
        self.client = httpx.Client(base_url=f"{url}/api/v2.0", auth=(USERNAME, PASSWORD), timeout=120.0)

    def close(self) -> None:
        self.client.close()

    def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> httpx.Response:
        answer = self.client.request(method, path, **kwargs)
        if answer.status_code != expect:
            raise HttpError(f"{method} {path}: HTTP {answer.status_code} {answer.text[:500]}")
        return answer

    def metrics(self) -> dict[str, Any]:
        document: dict[str, Any] = self.call("GET", "/scans/all/metrics").json()
        return document

    def scan_all(self) -> float:
        """Start scan-all now; the time it started."""
        started = time.perf_counter()
        self.call("POST", "/system/scanAll/schedule", expect=201, json={"schedule": {"type": "Manual"}})
        return started

    def wait_for_scans(self, succeeded_before: int, count: int, timeout: float) -> dict[str, Any]:
        """Until `count` more scan-all reports than `succeeded_before` are Success and none is
        pending or running."""
        deadline = time.monotonic() + timeout
        while True:
            metrics = self.metrics()
            counts = metrics["metrics"]
            if counts.get("Error") or counts.get("Stopped"):
                raise RuntimeError(f"scan-all: some scans did not succeed: {counts}")
            if counts.get("Success", 0) >= succeeded_before + count and not metrics["ongoing"]:
                return metrics
            if time.monotonic() > deadline:
                raise TimeoutError(f"scan-all did not finish within {timeout:.0f} s: {counts}")
            time.sleep(0.5)


def _listing(page: int, page_size: int, overview: bool) -> str:
    target = f"/api/v2.0/projects/{PROJECT}/repositories/app/artifacts?page_size={page_size}&page={page}"
    return target + ("&with_scan_overview=true" if overview else "")


def _check_overviews(api: Api, count: int, page_size: int) -> int:
    """Every artifact's overview on every page says Success; the number of artifacts seen."""
    seen = 0
    for page in range(1, -(-count // page_size) + 1):
        listed = api.call("GET", _listing(page, page_size, True)[len("/api/v2.0") :]).json()
        for artifact in listed:
            status = (artifact.get("scan_overview") or {}).get(REPORT_MIME, {}).get("scan_status")
            if status != "Success":
                raise RuntimeError(f"artifact {artifact['digest']} has scan status {status}")
        seen += len(listed)
    if seen != count:
        raise RuntimeError(f"the list shows {seen} artifacts, not {count}")
    return seen


def time_listing(url: str, sizes: Sizes) -> dict[str, Any]:
    cookie = session_cookie(url, USERNAME, PASSWORD)
    targets = {
        (page, overview): _listing(page, sizes.page_size, overview) for page in PAGES for overview in (False, True)
    }
    timings = time_pages(url, cookie, list(targets.values()), sizes.requests, sizes.warmup)
    rows = []
    for page in PAGES:
        plain, with_overview = timings[targets[(page, False)]], timings[targets[(page, True)]]
        rows.append(
            {
                "page": page,
                "plain_p50_ms": p50(plain),
                "plain_p95_ms": p95(plain),
                "overview_p50_ms": p50(with_overview),
                "overview_p95_ms": p95(with_overview),
                "ratio_p50": p50(with_overview) / p50(plain),
                "ratio_p95": p95(with_overview) / p95(plain),
                "plain_samples": plain,
                "overview_samples": with_overview,
            }
        )
    return {"page_size": sizes.page_size, "requests": sizes.requests, "pages": rows}


def time_security_hub(url: str, api: Api, sizes: Sizes) -> dict[str, Any]:
    """Harbor's security hub over every finding of the scanned images: the summary, and the
    list's first page (Harbor's UI asks for 15) unfiltered and narrowed as its filters do,
    each with `tune_count=true` as Harbor's UI sends it."""
    first = api.call("GET", "/security/vul", params={"page_size": 1, "tune_count": "true"}).json()
    if not first:
        raise RuntimeError("the security hub lists no finding after scan-all")
    cve, package = first[0]["cve_id"], first[0]["package"]
    base = "/api/v2.0/security/vul?page_size=15&tune_count=true&with_tag=true"
    targets = {
        "summary": "/api/v2.0/security/summary?with_dangerous_cve=true&with_dangerous_artifact=true",
        "list, no filter": base,
        "list, severity=Critical": base + "&q=severity%3DCritical",
        f"list, cve_id={cve}": base + f"&q=cve_id%3D{cve}",
        f"list, package={package}": base + f"&q=package%3D{package}",
        "list, cvss_score_v3=[7~10], page 20": base + "&page=20&q=cvss_score_v3%3D%5B7~10%5D",
    }
    counted = api.call("GET", "/security/vul", params={"page_size": 1}).headers.get("X-Total-Count")
    cookie = session_cookie(url, USERNAME, PASSWORD)
    timings = time_pages(url, cookie, list(targets.values()), sizes.requests, sizes.warmup)
    rows = [
        {"query": label, "p50_ms": p50(timings[target]), "p95_ms": p95(timings[target]), "samples": timings[target]}
        for label, target in targets.items()
    ]
    return {"findings": int(counted) if counted else None, "requests": sizes.requests, "queries": rows}


@dataclass
class PullSample:
    manifest_rps: float
    manifest_p99_ms: float
    blob_mb_s: float  # the median of the round's pulls


def _pull_round(url: str, token: dict[str, str], blob: Blob, sizes: Sizes) -> PullSample:
    rate = wrk(
        f"{url}/v2/{REPOSITORY}/manifests/{tag_name(0)}",
        sizes.load_seconds,
        sizes.connections,
        {**token, "Accept": OCI_MANIFEST},
    )
    pulls = []
    for _ in range(sizes.pulls):
        transfer = curl_get(f"{url}/v2/{REPOSITORY}/blobs/{blob.digest}", token)
        if transfer.size != blob.size:
            raise RuntimeError(f"pulled {transfer.size} bytes of a {blob.size}-byte blob")
        pulls.append(transfer.mb_per_second)
    return PullSample(rate.requests_per_second, rate.p99_ms, statistics.median(pulls))


def pulls_during_scan_all(url: str, api: Api, sizes: Sizes, succeeded: int) -> dict[str, Any]:
    blob = Blob.of(os.urandom(sizes.blob))
    with RegistryClient(url, basic_auth(USERNAME, PASSWORD)) as client:
        client.push_blob(REPOSITORY, blob)
    token = bearer_token(url, USERNAME, PASSWORD, [f"repository:{REPOSITORY}:pull"])
    _log("pulls, idle")
    idle = [_pull_round(url, token, blob, sizes) for _ in range(sizes.pull_rounds)]
    _log("pulls, while scan-all runs")
    started = api.scan_all()
    during: list[PullSample] = []
    late = 0  # rounds that outlasted the scan-all, not counted
    while len(during) < sizes.pull_rounds:
        sample = _pull_round(url, token, blob, sizes)
        if not api.metrics()["ongoing"]:
            late += 1
            break
        during.append(sample)
    metrics = api.wait_for_scans(succeeded, sizes.images, sizes.scan_timeout)
    scan_seconds = time.perf_counter() - started
    _log(f"the second scan-all took {scan_seconds:.1f} s")

    def median_of(samples: list[PullSample], key: str) -> float | None:
        return statistics.median(getattr(s, key) for s in samples) if samples else None

    summary: dict[str, Any] = {}
    for key in ("manifest_rps", "manifest_p99_ms", "blob_mb_s"):
        idle_value, during_value = median_of(idle, key), median_of(during, key)
        summary[key] = {
            "idle": idle_value,
            "during": during_value,
            "ratio": during_value / idle_value if during_value is not None and idle_value else None,
        }
    return {
        "connections": sizes.connections,
        "load_seconds": sizes.load_seconds,
        "blob_bytes": sizes.blob,
        "idle_samples": [asdict(s) for s in idle],
        "during_samples": [asdict(s) for s in during],
        "rounds_after_scan_ended": late,
        "second_scan_all_seconds": scan_seconds,
        "second_scan_all_metrics": metrics,
        "summary": summary,
    }


def live(work: Path, sizes: Sizes) -> dict[str, Any]:
    server = _start_server(work)
    api = Api(server.url)
    try:
        api.call("POST", "/projects", expect=201, json={"project_name": PROJECT, "metadata": {"public": "false"}})
        _log("importing the fixtures with portside vulndb import")
        started = time.perf_counter()
        for part in FIXTURE_SOURCES:
            _vulndb_import(server, FIXTURES / part)
        import_seconds = time.perf_counter() - started
        _log(f"pushing {sizes.images} images")
        started = time.perf_counter()
        push_images(server.url, sizes.images)
        push_seconds = time.perf_counter() - started
        _log(f"scan-all of {sizes.images} images")
        started = api.scan_all()
        metrics = api.wait_for_scans(0, sizes.images, sizes.scan_timeout)
        scan_seconds = time.perf_counter() - started
        _log(f"scan-all took {scan_seconds:.1f} s")
        _check_overviews(api, sizes.images, sizes.page_size)
        _log("timing the artifact list")
        listing = time_listing(server.url, sizes)
        _log("timing the security hub")
        security_hub = time_security_hub(server.url, api, sizes)
        pulls = pulls_during_scan_all(server.url, api, sizes, metrics["metrics"].get("Success", 0))
        return {
            "import_seconds": import_seconds,
            "push_seconds": push_seconds,
            "images": sizes.images,
            "scan_all_seconds": scan_seconds,
            "scan_all_metrics": metrics,
            "listing": listing,
            "security_hub": security_hub,
            "pulls": pulls,
        }
    finally:
        api.close()
        server.stop()


# -- the table --------------------------------------------------------------------------------


def _range(spread: dict[str, float], digits: int = 2) -> str:
    return f"{spread['median']:.{digits}f} ({spread['min']:.{digits}f}–{spread['max']:.{digits}f})"


def _optional(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def table(results: dict[str, Any]) -> Iterator[str]:
    part1 = results["inventory"]
    yield f"Inventory and match, in-process, {results['sizes']['rounds']} rounds: median (min–max)"
    database = part1["database_bytes"] / MiB
    yield f"  fixtures imported into SQLite in {part1['import_seconds']:.1f} s ({database:.1f} MiB)"
    yield (
        f"  {'image / step':<34} {'wall s':>20} {'CPU s':>20} {'peak RSS growth MiB':>24}"
        f" {'packages':>9} {'findings':>9}"
    )
    for image in part1["images"]:
        size = f"{image['layer_bytes'] / MiB:,.0f} MiB gz, {image['tar_bytes'] / MiB:,.0f} MiB tar"
        yield f"  {image['image']} ({size})"
        for step in ("inventory", "match"):
            m = image[step]
            counts = f"{image['packages']:>9} {image['findings'] if step == 'match' else '':>9}"
            yield (
                f"    {step:<32} {_range(m['wall_s']):>20} {_range(m['cpu_s']):>20} "
                f"{_range(m['peak_growth_mib'], 1):>24} {counts}"
            )
    server = results["live"]
    yield ""
    yield (
        f"Live Portside: {server['images']} images pushed in {server['push_seconds']:.1f} s; "
        f"scan-all of them took {server['scan_all_seconds']:.1f} s"
    )
    listing = server["listing"]
    yield f"Artifact list, page_size={listing['page_size']}, {listing['requests']} requests each: ms"
    yield (
        f"  {'page':<6} {'plain p50':>10} {'plain p95':>10} {'overview p50':>13} {'overview p95':>13} {'ratio p50':>10}"
    )
    for row in listing["pages"]:
        yield (
            f"  {row['page']:<6} {row['plain_p50_ms']:>10.1f} {row['plain_p95_ms']:>10.1f} "
            f"{row['overview_p50_ms']:>13.1f} {row['overview_p95_ms']:>13.1f} {row['ratio_p50']:>10.2f}"
        )
    hub = server["security_hub"]
    yield f"Security hub over {hub['findings']:,} findings, {hub['requests']} requests each: ms"
    yield f"  {'query':<44} {'p50':>8} {'p95':>8}"
    for row in hub["queries"]:
        yield f"  {row['query']:<44} {row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f}"
    pulls = server["pulls"]
    yield ""
    yield (
        f"Pulls, idle and while scan-all runs (it took {pulls['second_scan_all_seconds']:.1f} s; "
        f"{len(pulls['during_samples'])} rounds during it): medians"
    )
    labels = {
        "manifest_rps": f"manifest GET, {pulls['connections']} connections, req/s",
        "manifest_p99_ms": "manifest GET p99, ms",
        "blob_mb_s": f"blob pull, {pulls['blob_bytes'] // MiB} MiB, MB/s",
    }
    yield f"  {'':<42} {'idle':>10} {'scan-all':>10} {'ratio':>7}"
    for key, label in labels.items():
        row = pulls["summary"][key]
        yield (
            f"  {label:<42} {_optional(row['idle'], 1):>10} {_optional(row['during'], 1):>10} "
            f"{_optional(row['ratio'], 2):>7}"
        )

    rematch = results["rematch"]
    yield ""
    yield (
        f"Re-matching {rematch['matched']:,} stored inventories ({rematch['packages_each']} packages, "
        f"{rematch['findings_each']} findings each; seeded in {rematch['seed_seconds']:.1f} s):"
        f" {rematch['wall_s']:.1f} s wall, {rematch['cpu_s']:.1f} s CPU,"
        f" {rematch['ms_per_inventory']:.2f} ms each, peak RSS growth {rematch['peak_growth_mib']:.1f} MiB"
    )


# -- the command ------------------------------------------------------------------------------


def _measure_main(kind: str, args: Sequence[str]) -> int:
    if kind == "inventory":
        layer, digest, save = args
        answer = asyncio.run(_measure_inventory(Path(layer), digest, Path(save)))
    elif kind == "match":
        saved, database = args
        answer = asyncio.run(_measure_match(Path(saved), Path(database)))
    elif kind == "rematch":
        saved, database, count = args
        answer = asyncio.run(_measure_rematch(Path(saved), Path(database), int(count)))
    else:
        raise SystemExit(f"unknown measurement {kind}")
    print(json.dumps(answer))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scanning", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a couple of minutes")
    parser.add_argument("--json", type=Path, help="write every number, samples included, to this file")
    parser.add_argument("--work-dir", type=Path, help="where the layers and the server's data go (default: a temp dir)")
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)  # one child measurement
    options = parser.parse_args(argv)
    if options.measure:
        return _measure_main(options.measure[0], options.measure[1:])
    sizes = QUICK if options.quick else FULL
    command = " ".join([".venv/bin/python -m benchmarks.scanning", *(argv if argv is not None else sys.argv[1:])])
    results: dict[str, Any] = {
        "command": command,
        "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_average_start": os.getloadavg(),
        "cpus": os.cpu_count(),
        "sizes": asdict(sizes),
    }
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="portside-scan-bench-", dir=options.work_dir) as work:
        results["inventory"] = inventory_and_match(Path(work), sizes)
        results["live"] = live(Path(work), sizes)
        results["rematch"] = rematching(Path(work), sizes)
    results["seconds"] = time.perf_counter() - began
    results["load_average_end"] = os.getloadavg()
    for line in table(results):
        print(line)
    print(
        f"\n{results['seconds']:.0f} s in all; load average {results['load_average_start'][0]:.2f} at the start, "
        f"{results['load_average_end'][0]:.2f} at the end"
    )
    if options.json is not None:
        options.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
