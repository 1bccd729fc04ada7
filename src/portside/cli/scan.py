"""`portside scan IMAGE` and `portside sbom IMAGE`: scan through a running server's API and
wait for the report; `portside scan --local PATH`: inventory and match an OCI layout
directory or a `docker save` tarball here, against the local vulnerability database, with
no server.

IMAGE is `project/repository:tag` or `project/repository@sha256:...`. The server and the
credentials come from --url/--username/--password or PORTSIDE_URL, PORTSIDE_USERNAME,
PORTSIDE_PASSWORD.
"""

from __future__ import annotations

import asyncio
import json
import tarfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, Any
from urllib.parse import quote

import typer

from portside.cli.server_api import PasswordOption, TimeoutOption, UrlOption, UserOption, checked, client, fail
from portside.config import load_settings
from portside.scan.model import Finding, LayerBlob

__all__ = ["sbom", "scan"]

REPORT_MIME = "application/vnd.security.vulnerability.report; version=1.1"
SBOM_TYPES = {"spdx": "application/spdx+json", "cyclonedx": "application/vnd.cyclonedx+json"}
_CHUNK = 1 << 20
_SEVERITY_ORDER = ("Critical", "High", "Medium", "Low", "Negligible", "Unknown", "None")


@dataclass(frozen=True)
class ImageName:
    project: str
    repository: str  # within the project
    reference: str  # tag or digest

    @classmethod
    def parse(cls, text: str) -> ImageName:
        name, at, digest = text.partition("@")
        if at:
            reference = digest
        else:
            head, colon, tag = text.rpartition(":")
            name, reference = (head, tag) if colon and "/" not in tag else (text, "latest")
        project, slash, repository = name.partition("/")
        if not slash or not repository:
            raise fail(f"IMAGE must be project/repository:tag or project/repository@digest, not {text!r}")
        return cls(project, repository, reference)

    @property
    def full(self) -> str:
        return f"{self.project}/{self.repository}"

    def artifact_path(self, reference: str | None = None) -> str:
        # Harbor's clients encode a nested repository name twice.
        encoded = quote(self.repository, safe="").replace("%2F", "%252F")
        return f"/api/v2.0/projects/{self.project}/repositories/{encoded}/artifacts/{reference or self.reference}"


def _start_and_wait(api: Any, image: ImageName, scan_type: str, timeout: float) -> dict[str, Any]:
    """Start a scan (or join the one running) and return the artifact once it has ended."""
    response = api.post(image.artifact_path() + "/scan", json={"scan_type": scan_type})
    if response.status_code != 409:  # 409: one is running already; wait for it
        checked(response, 202)
    key = "sbom_overview" if scan_type == "sbom" else "scan_overview"
    deadline = time.monotonic() + timeout
    while True:
        artifact: dict[str, Any] = checked(
            api.get(image.artifact_path(), params={"with_scan_overview": "true", "with_sbom_overview": "true"}),
            200,
        ).json()
        overview = artifact.get(key) or {}
        if key == "scan_overview":
            overview = overview.get(REPORT_MIME, {})
        status = overview.get("scan_status")
        if status == "Success":
            return artifact
        if status in ("Error", "Stopped"):
            raise fail(f"the scan of {image.full} ended {status}")
        if time.monotonic() > deadline:
            raise fail(f"the scan of {image.full} did not end within {timeout:g} s")
        time.sleep(0.5)


def _table(rows: list[dict[str, str]]) -> str:
    columns = ("id", "severity", "package", "version", "fixed")
    widths = {c: max([len(c), *(len(r[c]) for r in rows)]) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


def _rank(severity: str) -> int:
    return _SEVERITY_ORDER.index(severity) if severity in _SEVERITY_ORDER else len(_SEVERITY_ORDER)


def _print_report(vulnerabilities: list[dict[str, Any]], as_json: bool, database: dict[str, Any] | None) -> None:
    if as_json:
        typer.echo(json.dumps({"vulnerabilities": vulnerabilities, "vulnerability_database": database}, indent=2))
        return
    rows = sorted(
        (
            {
                "id": str(v["id"]),
                "severity": str(v["severity"]),
                "package": str(v["package"]),
                "version": str(v["version"]),
                "fixed": str(v.get("fix_version") or "-"),
            }
            for v in vulnerabilities
        ),
        key=lambda r: (_rank(r["severity"]), r["package"], r["id"]),
    )
    typer.echo(_table(rows) if rows else "no vulnerabilities found")
    if database is not None and database.get("stale"):
        typer.echo(f"warning: the vulnerability database is stale (updated {database.get('updated_at')})", err=True)


def scan(
    image: Annotated[str | None, typer.Argument(help="project/repository:tag, or with --local a path")] = None,
    local: Annotated[
        Path | None, typer.Option("--local", help="an OCI layout directory or `docker save` tarball; no server")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    url: UrlOption = "http://127.0.0.1:5000",
    username: UserOption = None,
    password: PasswordOption = None,
    timeout: TimeoutOption = 600.0,
    config: Annotated[Path | None, typer.Option("--config", help="YAML configuration file (--local)")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="data directory (--local)")] = None,
) -> None:
    """Scan an image for vulnerabilities: on a server (IMAGE), or here (--local PATH)."""
    if local is not None:
        _scan_local(local, as_json, config, data_dir)
        return
    if image is None:
        raise fail("name an IMAGE (project/repository:tag), or a path with --local")
    name = ImageName.parse(image)
    with client(url, username, password) as api:
        artifact = _start_and_wait(api, name, "vulnerability", timeout)
        report = checked(api.get(name.artifact_path(artifact["digest"]) + "/additions/vulnerabilities"), 200)
        document = report.json().get(REPORT_MIME, {})
    _print_report(document.get("vulnerabilities", []), as_json, document.get("vulnerability_database"))


def sbom(
    image: Annotated[str, typer.Argument(help="project/repository:tag or project/repository@digest")],
    format: Annotated[str, typer.Option("--format", help="spdx or cyclonedx")] = "spdx",
    url: UrlOption = "http://127.0.0.1:5000",
    username: UserOption = None,
    password: PasswordOption = None,
    timeout: TimeoutOption = 600.0,
) -> None:
    """Generate an image's SBOM on the server (stored as its OCI referrer) and print it."""
    if format not in SBOM_TYPES:
        raise fail(f"--format must be spdx or cyclonedx, not {format!r}")
    name = ImageName.parse(image)
    with client(url, username, password) as api:
        artifact = _start_and_wait(api, name, "sbom", timeout)
        referrers = checked(
            api.get(f"/v2/{name.full}/referrers/{artifact['digest']}", params={"artifactType": SBOM_TYPES[format]}),
            200,
        ).json()
        found = referrers.get("manifests") or []
        if not found:
            raise fail(f"no {format} SBOM refers to {name.full}@{artifact['digest']}")
        newest = max(found, key=lambda m: (m.get("annotations") or {}).get("org.opencontainers.image.created", ""))
        document = checked(api.get(name.artifact_path(newest["digest"]) + "/additions/sbom"), 200)
    typer.echo(document.text)


# --- --local: an image on disk --------------------------------------------------------------


class _Files:
    """The files of an OCI layout, or of a `docker save` tarball, by relative name."""

    def __init__(self, path: Path):
        self._path = path
        self._tar = None if path.is_dir() else tarfile.open(path)

    def read(self, name: str) -> bytes | None:
        with self._open(name) as stream:
            return stream.read() if stream is not None else None

    def _open(self, name: str) -> Any:
        if self._tar is None:
            file = self._path / name
            return file.open("rb") if file.is_file() else _Nothing()
        try:
            stream = self._tar.extractfile(name.lstrip("./"))
        except KeyError:
            return _Nothing()
        return stream if stream is not None else _Nothing()

    def streamer(self, name: str) -> Callable[[], AsyncIterator[bytes]]:
        async def chunks() -> AsyncIterator[bytes]:
            with self._open(name) as stream:
                if stream is None:
                    raise FileNotFoundError(name)
                while chunk := await asyncio.to_thread(_read, stream):
                    yield chunk

        return chunks


def _read(stream: IO[bytes]) -> bytes:
    return stream.read(_CHUNK)


class _Nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


def _blob_name(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    return f"blobs/{algorithm}/{hexpart}"


def _local_layers(files: _Files) -> list[LayerBlob]:
    index_bytes = files.read("index.json")
    if index_bytes is not None:
        manifest = json.loads(index_bytes)
        # Down through indexes to the first image manifest (a multi-platform layout).
        while "manifests" in manifest:
            if not manifest["manifests"]:
                raise fail("the OCI layout holds no manifest")
            child = files.read(_blob_name(manifest["manifests"][0]["digest"]))
            if child is None:
                raise fail(f"the OCI layout lacks the blob of {manifest['manifests'][0]['digest']}")
            manifest = json.loads(child)
        return [
            LayerBlob(
                layer["digest"], layer["mediaType"], int(layer["size"]), files.streamer(_blob_name(layer["digest"]))
            )
            for layer in manifest.get("layers", [])
        ]
    saved = files.read("manifest.json")
    if saved is None:
        raise fail("neither an OCI layout (index.json) nor a `docker save` tarball (manifest.json)")
    entries = json.loads(saved)
    if not entries:
        raise fail("the tarball's manifest.json names no image")
    return [
        LayerBlob(f"file:{name}", "application/vnd.docker.image.rootfs.diff.tar", 0, files.streamer(name))
        for name in entries[0]["Layers"]
    ]


def _scan_local(path: Path, as_json: bool, config: Path | None, data_dir: Path | None) -> None:
    from portside.scan.inventory import take_inventory
    from portside.scan.match import match
    from portside.scan.vulndb.status import database_status
    from portside.wiring import NoRegistry, open_vulnerability_store

    if not path.exists():
        raise fail(f"{path} does not exist")
    settings = load_settings(config, data_dir=data_dir)

    async def main() -> tuple[list[Finding], dict[str, Any]]:
        inventory = await take_inventory(_local_layers(_Files(path)))
        async with open_vulnerability_store(settings) as store:
            status = await database_status(store, float(settings.vulndb_max_age))
            found = await match(inventory, store)
        return found, {
            "imported": bool(status.sources),
            "updated_at": status.updated_at.isoformat() if status.updated_at else None,
            "stale": status.stale,
            "generation": status.generation,
        }

    try:
        findings, database = asyncio.run(main())
    except NoRegistry as problem:
        raise fail(str(problem)) from None
    _print_report([_finding_json(f) for f in findings], as_json, database)


def _finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "id": finding.vulnerability_id,
        "package": finding.package.name,
        "version": finding.package.version,
        "fix_version": finding.fixed_version or "",
        "severity": finding.severity.label,
        "advisory_id": finding.advisory_id,
        "aliases": list(finding.aliases),
        "purl": finding.package.purl,
        "layer": finding.package.layer,
        "path": finding.package.path,
    }
