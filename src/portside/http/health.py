"""`/healthz` (the process answers) and `/readyz` (storage and database are usable)."""

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
    for name, check in svc.readiness_checks.items():
        try:
            await check()
            checks[name] = "ok"
        except Exception as exc:  # any failure means "not ready"; say which and why
            log.warning("readiness check %s failed: %s", name, exc)
            checks[name] = f"failed: {exc}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
    )
