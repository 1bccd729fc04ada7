"""Dragonfly: its manager's open API (`/oapi/v1`, specs/dragonfly-manager-swagger.yaml).

Health is `GET /healthy`. A preheat is a job, `POST /oapi/v1/jobs` with type "preheat" and
the image in `args` (its manifest URL, the headers that fetch it, the seed peer scope);
`scheduler_cluster_ids` when the policy names clusters. The job's state is read back with
`GET /oapi/v1/jobs/{id}`: PENDING until its seed peers have the image, then SUCCESS or
FAILURE. The open API takes a personal access token as a Bearer token (auth mode OAUTH)."""

from __future__ import annotations

from typing import Any

from portside.remote.p2p.base import (
    FAILURE,
    RUNNING,
    SUCCESS,
    Connection,
    DriverInfo,
    Image,
    JobStatus,
    P2PError,
    body_text,
    send,
)

__all__ = ["DragonflyDriver"]

_JOBS = "/oapi/v1/jobs"


class DragonflyDriver:
    @property
    def vendor(self) -> str:
        return "dragonfly"

    def info(self) -> DriverInfo:
        return DriverInfo(
            id="dragonfly",
            name="Dragonfly",
            icon="",
            maintainers=("Portside",),  # who maintains this driver
            version="2.x (manager open API /oapi/v1)",
            source="https://github.com/dragonflyoss/dragonfly",
        )

    async def health(self, connection: Connection) -> None:
        response = await send(connection, "GET", "/healthy")
        if response.status_code != 200:
            raise P2PError(f"{connection.endpoint}/healthy answered {response.status_code}: {body_text(response)}")

    async def preheat(self, connection: Connection, image: Image) -> JobStatus:
        body: dict[str, Any] = {
            "type": "preheat",
            "args": {"type": "image", "url": image.url, "headers": dict(image.headers), "scope": image.scope},
        }
        if image.cluster_ids:
            body["scheduler_cluster_ids"] = list(image.cluster_ids)
        response = await send(connection, "POST", _JOBS, json=body)
        if response.status_code != 200:
            raise P2PError(f"Dragonfly refused the preheat job ({response.status_code}): {body_text(response)}")
        return _status(response.json(), connection)

    async def status(self, connection: Connection, job_id: str) -> JobStatus:
        if not job_id.isdigit():
            raise P2PError(f"{job_id!r} is no Dragonfly job id")
        response = await send(connection, "GET", f"{_JOBS}/{job_id}")
        if response.status_code != 200:
            raise P2PError(f"Dragonfly job {job_id} could not be read ({response.status_code}): {body_text(response)}")
        return _status(response.json(), connection)


def _status(job: Any, connection: Connection) -> JobStatus:
    if not isinstance(job, dict) or not isinstance(job.get("id"), int):
        raise P2PError(f"{connection.endpoint} answered no Dragonfly job: {str(job)[:200]}")
    state = str(job.get("state", "")).upper()
    if state == "SUCCESS":
        return JobStatus(str(job["id"]), SUCCESS)
    if state == "FAILURE":
        result = job.get("result")
        why = result.get("error") or result if isinstance(result, dict) and result else "no reason given"
        return JobStatus(str(job["id"]), FAILURE, f"Dragonfly's job failed: {str(why)[:300]}")
    return JobStatus(str(job["id"]), RUNNING, state.lower() or "pending")
