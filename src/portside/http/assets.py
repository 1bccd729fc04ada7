"""Browser assets of other projects (Swagger UI, htmx), vendored in the package and served from it.

Nothing a page of Portside loads comes from another origin, so the pages work offline and
behind a firewall, and what they run is what was reviewed. `static/vendor/manifest.json`
pins each npm package (version, tarball integrity, licence, the files kept, its licence
files among them); scripts/vendor-assets fetches them into `static/vendor/<package>/`.

They are served at `/static/vendor/<package>/<version>/<file>`. The version in the path
makes each URL's content fixed, so browsers may keep it for a year without asking again;
a new version is a new URL. Only the files the manifest lists are served.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

__all__ = ["asset_routes", "asset_url"]

_VENDOR = Path(__file__).parent / "static" / "vendor"
_PREFIX = "/static/vendor"
_CACHE_FOR_A_YEAR = "public, max-age=31536000, immutable"
_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
    "": "text/plain; charset=utf-8",  # LICENSE, NOTICE
}


@dataclass(frozen=True)
class _Package:
    version: str
    files: frozenset[str]


@functools.cache
def _vendored() -> dict[str, _Package]:
    manifest = json.loads((_VENDOR / "manifest.json").read_text())
    return {
        name: _Package(entry["version"], frozenset(Path(file).name for file in entry["files"]))
        for name, entry in manifest.items()
    }


def asset_url(package: str, file: str) -> str:
    """The path `file` of vendored `package` is served at."""
    vendored = _vendored()[package]
    if file not in vendored.files:
        raise KeyError(f"{package} has no vendored file {file}")
    return f"{_PREFIX}/{package}/{vendored.version}/{file}"


async def _vendored_file(request: Request) -> Response:
    package, version, file = (request.path_params[key] for key in ("package", "version", "file"))
    vendored = _vendored().get(package)
    if vendored is None or version != vendored.version or file not in vendored.files:
        raise HTTPException(404)
    return FileResponse(
        _VENDOR / package / file,
        media_type=_MEDIA_TYPES.get(Path(file).suffix, "application/octet-stream"),
        headers={"cache-control": _CACHE_FOR_A_YEAR},
    )


def asset_routes() -> list[BaseRoute]:
    return [Route(_PREFIX + "/{package}/{version}/{file}", _vendored_file, methods=["GET", "HEAD"])]
