"""Web UI sessions: the store protocol. Session ids are kept only as hashes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

__all__ = ["WebSession", "SessionStore"]


@dataclass(frozen=True, slots=True)
class WebSession:
    id_hash: str
    user_id: int
    csrf_token: str
    expires_at: datetime


class SessionStore(Protocol):
    async def create_session(self, session: WebSession) -> None: ...

    async def get_session(self, id_hash: str) -> WebSession | None:
        """The session, if it exists and has not expired."""

    async def delete_session(self, id_hash: str) -> None: ...

    async def delete_user_sessions(self, user_id: int) -> None: ...

    async def purge_sessions(self, before: datetime) -> int: ...
