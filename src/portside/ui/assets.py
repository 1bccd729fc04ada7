"""The UI's own stylesheet and script, served at URLs that hold a hash of their content.

The stylesheet is written in parts (`static/css/*.css`, one per area, in name order) and
served as one file. A new version is a new URL, so browsers keep each for a year.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

__all__ = ["ui_asset_url", "ui_asset_routes"]

_STATIC = Path(__file__).parent / "static"
_PREFIX = "/static/ui"
_MEDIA_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}


@dataclass(frozen=True)
class _Asset:
    body: bytes
    digest: str
    media_type: str


@functools.cache
def _assets() -> dict[str, _Asset]:
    found: dict[str, bytes] = {
        "portside.css": b"\n".join(part.read_bytes() for part in sorted((_STATIC / "css").glob("*.css"))),
    }
    for file in _STATIC.iterdir():
        if file.is_file():
            found[file.name] = file.read_bytes()
    return {
        name: _Asset(body, hashlib.sha256(body).hexdigest()[:16], _MEDIA_TYPES[Path(name).suffix])
        for name, body in found.items()
    }


def ui_asset_url(name: str) -> str:
    return f"{_PREFIX}/{_assets()[name].digest}/{name}"


async def _asset(request: Request) -> Response:
    asset = _assets().get(request.path_params["name"])
    if asset is None or request.path_params["digest"] != asset.digest:
        raise HTTPException(404)
    return Response(
        asset.body,
        media_type=asset.media_type,
        headers={"cache-control": "public, max-age=31536000, immutable"},
    )


def ui_asset_routes() -> list[BaseRoute]:
    return [Route(_PREFIX + "/{digest}/{name}", _asset, methods=["GET", "HEAD"])]
