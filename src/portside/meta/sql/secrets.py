"""Secrets kept encrypted at rest: Fernet under a key stored as the token signing key is
(sql/keys.py, shared by every instance). Each store names a key of its own, so no other
store's key opens its secrets; the database holds none in plain text."""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet

from portside.meta.sql.keys import SqlKeys

__all__ = ["SecretBox"]


class SecretBox:
    """Encrypts and decrypts one store's secrets under the key named `key_name`, made by the
    first instance that needs it. "" stays "" both ways (no secret is stored as none)."""

    def __init__(self, engine: Any, key_name: str):
        self._engine = engine
        self._key_name = key_name
        self._fernet: Fernet | None = None

    async def _cipher(self) -> Fernet:
        if self._fernet is None:
            key = await SqlKeys(self._engine).get_or_create(self._key_name, Fernet.generate_key().decode())
            self._fernet = Fernet(key.encode())
        return self._fernet

    async def seal(self, secret: str) -> str:
        return (await self._cipher()).encrypt(secret.encode()).decode() if secret else ""

    async def open(self, sealed: str) -> str:
        return (await self._cipher()).decrypt(sealed.encode()).decode() if sealed else ""
