"""Kraken: an image is announced to it with `POST /registry/notify`, a registry's push
notification (Distribution's envelope: `events`, each a push of one manifest with its
repository, digest, media type, tag and URL); Kraken then fetches it from Portside and
seeds it.

Only that call is documented for Portside (Harbor's Kraken driver posts there), so this
driver does only that: Kraken makes no job to follow, so an accepted notification is a
finished one, and health is whether the endpoint answers HTTP at all (an answer below 500
at its root), not a health API of Kraken's."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from portside.remote.p2p.base import SUCCESS, Connection, DriverInfo, Image, JobStatus, P2PError, body_text, send

__all__ = ["KrakenDriver"]


class KrakenDriver:
    @property
    def vendor(self) -> str:
        return "kraken"

    def info(self) -> DriverInfo:
        return DriverInfo(
            id="kraken",
            name="Kraken",
            icon="",
            maintainers=("Portside",),  # who maintains this driver
            version="any (/registry/notify)",
            source="https://github.com/uber/kraken",
        )

    async def health(self, connection: Connection) -> None:
        response = await send(connection, "GET", "/")
        if response.status_code >= 500:
            raise P2PError(f"{connection.endpoint} answered {response.status_code}: {body_text(response)}")

    async def preheat(self, connection: Connection, image: Image) -> JobStatus:
        event_id = secrets.token_hex(16)
        envelope = {
            "events": [
                {
                    "id": event_id,
                    "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                    "action": "push",
                    "target": {
                        "mediaType": image.media_type,
                        "digest": image.digest,
                        "repository": image.repository,
                        "url": image.url,
                        "tag": image.tag,
                    },
                }
            ]
        }
        response = await send(connection, "POST", "/registry/notify", json=envelope)
        if response.status_code // 100 != 2:
            raise P2PError(f"Kraken refused the notification ({response.status_code}): {body_text(response)}")
        return JobStatus(event_id, SUCCESS)

    async def status(self, connection: Connection, job_id: str) -> JobStatus:
        return JobStatus(job_id, SUCCESS)  # an accepted notification is all Kraken does
