from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


async def version_check(request: Request) -> Response:
    """`GET /v2/`: the registry speaks the Distribution API (and the caller may use it)."""
    return JSONResponse({})
