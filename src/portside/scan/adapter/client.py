"""An async client of one scanner adapter (Harbor's pluggable scanner API, v1.2).

    client = AdapterClient("http://trivy-adapter:8080", authorization="Bearer …")
    report = await client.scan_and_wait(ScanRequest(...), VULNERABILITY_REPORT, timeout=600)

Every failure reaches the caller as an `AdapterError` (see `errors`): transport faults,
error statuses with the adapter's own message, and answers the API does not allow."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from portside.scan.adapter.errors import (
    AdapterProtocolError,
    AdapterRejected,
    AdapterUnreachable,
    ScanNotFound,
    ScanTimedOut,
)
from portside.scan.adapter.wire import (
    METADATA_MIMES,
    SBOM_REPORT,
    SCAN_REQUEST_MIME,
    SCAN_RESPONSE_MIME,
    VULNERABILITY_REPORT,
    VULNERABILITY_REPORT_MIMES,
    Pending,
    SbomReport,
    ScannerMetadata,
    ScanRequest,
    VulnerabilityReport,
    read_metadata,
    read_sbom_report,
    read_scan_id,
    read_vulnerability_report,
)

__all__ = ["AdapterClient"]

API = "/api/v1"
# Harbor waits this long when an adapter's 302 names no (or a nonsensical) Refresh-After.
DEFAULT_RETRY_AFTER = 5.0
MAX_RETRY_AFTER = 127.0

Report = VulnerabilityReport | SbomReport


class AdapterClient:
    def __init__(
        self,
        base_url: str,
        *,
        authorization: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: httpx.Timeout | float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`base_url` is the adapter's root (the API is under `/api/v1` of it);
        `authorization` the Authorization header Harbor would send it, if it wants one;
        `headers` any other (the X-ScannerAdapter-API-Key scheme's key)."""
        sent = dict(headers or {})
        if authorization:
            sent["Authorization"] = authorization
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + API,
            headers=sent,
            timeout=timeout,
            transport=transport,
            follow_redirects=False,  # a 302 is the API's "not yet", not a move
        )
        self._sleep = sleep
        self._clock = clock

    async def __aenter__(self) -> AdapterClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def metadata(self) -> ScannerMetadata:
        response = await self._send("GET", "/metadata", headers={"Accept": ", ".join(METADATA_MIMES)})
        _expect_status(response, 200)
        return read_metadata(_json(response))

    async def submit(self, request: ScanRequest) -> str:
        """Enqueue a scan; its id, to ask for the report with."""
        response = await self._send(
            "POST",
            "/scan",
            content=json.dumps(request.to_json()).encode(),
            headers={"Content-Type": SCAN_REQUEST_MIME, "Accept": SCAN_RESPONSE_MIME},
        )
        _expect_status(response, 202)
        return read_scan_id(_json(response))

    async def report(
        self, scan_id: str, mime_type: str = VULNERABILITY_REPORT, *, sbom_media_type: str | None = None
    ) -> Report | Pending:
        """The report of `mime_type`, or `Pending` while the adapter still generates it.
        An SBOM report needs `sbom_media_type` (SPDX or CycloneDX JSON)."""
        if mime_type not in (*VULNERABILITY_REPORT_MIMES, SBOM_REPORT):
            raise ValueError(f"not a report type this client reads: {mime_type}")
        if mime_type == SBOM_REPORT and not sbom_media_type:
            raise ValueError("an SBOM report needs sbom_media_type")
        params = {"sbom_media_type": sbom_media_type} if sbom_media_type else None
        response = await self._send(
            "GET", f"/scan/{_path_segment(scan_id)}/report", headers={"Accept": mime_type}, params=params
        )
        if response.status_code == 302:
            return Pending(_retry_after(response.headers.get("Refresh-After")))
        _expect_status(response, 200)
        if mime_type == SBOM_REPORT:
            return read_sbom_report(_json(response))
        return read_vulnerability_report(_json(response), mime_type)

    async def scan_and_wait(
        self,
        request: ScanRequest,
        mime_type: str = VULNERABILITY_REPORT,
        *,
        timeout: float = 600.0,
        sbom_media_type: str | None = None,
    ) -> Report:
        """Submit, then poll as the adapter asks until the report is there, for at most
        `timeout` seconds in all; `ScanTimedOut` past that."""
        started = self._clock()
        scan_id = await self.submit(request)
        while True:
            answer = await self.report(scan_id, mime_type, sbom_media_type=sbom_media_type)
            if not isinstance(answer, Pending):
                return answer
            left = timeout - (self._clock() - started)
            if left <= 0:
                raise ScanTimedOut(scan_id, self._clock() - started)
            await self._sleep(min(answer.retry_after, left))

    async def _send(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path, **options)
        except httpx.TimeoutException as error:
            raise AdapterUnreachable(f"scanner adapter timed out: {method} {path}") from error
        except httpx.TransportError as error:
            raise AdapterUnreachable(f"scanner adapter unreachable: {method} {path}: {error}") from error


def _path_segment(scan_id: str) -> str:
    """The id as one path segment: the API imposes no format on ids, so any character is
    escaped, and the two that would climb the path are refused."""
    if scan_id in ("", ".", ".."):
        raise ValueError(f"not a scan request id: {scan_id!r}")
    return quote(scan_id, safe="")


def _retry_after(header: str | None) -> float:
    try:
        seconds = float(header) if header is not None else DEFAULT_RETRY_AFTER
    except ValueError:
        return DEFAULT_RETRY_AFTER
    if seconds != seconds or seconds < 0:  # NaN or negative
        return DEFAULT_RETRY_AFTER
    return min(seconds, MAX_RETRY_AFTER)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as error:
        raise AdapterProtocolError(f"scanner adapter sent no JSON ({response.status_code})") from error


def _expect_status(response: httpx.Response, expected: int) -> None:
    if response.status_code == expected:
        return
    message = _error_message(response)
    if response.status_code == 404:
        raise ScanNotFound(404, message)
    if response.status_code >= 400:
        raise AdapterRejected(response.status_code, message)
    raise AdapterProtocolError(f"scanner adapter answered {response.status_code}, expected {expected}")


def _error_message(response: httpx.Response) -> str:
    """The ErrorResponse's message where the adapter sent one, else the start of its body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = body["error"].get("message")
        if isinstance(message, str) and message:
            return message
    return response.text[:200].strip() or response.reason_phrase
