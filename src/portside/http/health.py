"""`/healthz` (the process answers) and `/readyz` (storage and database are usable)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from portside.http.services import Services

log = logging.getLogger("portside.http")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def run_checks(checks: Mapping[str, Callable[[], Awaitable[None]]]) -> dict[str, str | None]:
    """Each readiness check by name: None when it passed, else what went wrong. `/readyz`
    and the management API's `/health` both answer from this."""
    results: dict[str, str | None] = {}
    for name, check in checks.items():
        try:
            await check()
            results[name] = None
        except Exception as exc:  # any failure means "not ready"; say which and why
            log.warning("readiness check %s failed: %s", name, exc)
            results[name] = str(exc) or type(exc).__name__
    return results


async def readyz(request: Request) -> Response:
    svc: Services = request.app.state.services
    results = await run_checks(svc.readiness_checks)
    checks = {name: "ok" if error is None else f"failed: {error}" for name, error in results.items()}
    ready = all(error is None for error in results.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
    )
