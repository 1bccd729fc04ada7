"""`/healthz` (the process answers) and `/readyz` (storage and database are usable, and the
storage has room for uploads: its free space is reported)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from portside.http.services import Services

log = logging.getLogger("portside.http")


@dataclass(frozen=True, slots=True)
class CheckResult:
    """How one readiness check went, and what it said (a note on the state, or the failure)."""

    ok: bool
    note: str | None

    @property
    def text(self) -> str:
        """As `/readyz` shows it: "ok", "ok: <note>" or "failed: <why>"."""
        if not self.ok:
            return f"failed: {self.note}"
        return "ok" if self.note is None else f"ok: {self.note}"


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def run_checks(checks: Mapping[str, Callable[[], Awaitable[str | None]]]) -> dict[str, CheckResult]:
    """Each readiness check by name, with what it said: `/readyz` and the management API's
    `/health` both answer from this."""
    results: dict[str, CheckResult] = {}
    for name, check in checks.items():
        try:
            results[name] = CheckResult(True, await check())
        except Exception as exc:  # any failure means "not ready"; say which and why
            log.warning("readiness check %s failed: %s", name, exc)
            results[name] = CheckResult(False, str(exc) or type(exc).__name__)
    return results


async def readyz(request: Request) -> Response:
    svc: Services = request.app.state.services
    results = await run_checks(svc.readiness_checks)
    checks = {name: result.text for name, result in results.items()}
    ready = all(result.ok for result in results.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
    )
