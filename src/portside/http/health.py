"""`/healthz` (the process answers) and `/readyz` (storage and database are usable, and the
storage has room for uploads: its free space is reported)."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from portside.http.services import Services

log = logging.getLogger("portside.http")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    svc: Services = request.app.state.services
    checks: dict[str, str] = {}
    ready = True
    for name, check in svc.readiness_checks.items():
        try:
            note = await check()
            checks[name] = "ok" if note is None else f"ok: {note}"
        except Exception as exc:  # any failure means "not ready"; say which and why
            log.warning("readiness check %s failed: %s", name, exc)
            checks[name] = f"failed: {exc}"
            ready = False
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
    )
