"""Docker Content Trust: whether Notary's signed targets carry a repository's digest.

`ContentTrust.verify(repository, digest)` reads the GUN `<gun_prefix>/<repository>` from
notary-server (with a pull token Portside mints for Notary's service), verifies the TUF
metadata (`portside.trust.tuf`) and answers with a `Verification` of kind "notary". It
never raises: a Notary that cannot be reached, a repository Notary has no trust data for,
metadata that does not verify, all give a failed Verification whose reason says which.

The root of trust is the pinned root keys when given (the server's `pinned`, or those a
project's trust policy names for the repository, handed to `verify`); else the root is
trusted on first use, as Notary's client does, and its key ids recorded in the `roots`
KeyStore (the first instance to record a GUN's root wins, and the record survives
restarts): later roots must be signed by those keys, so a Notary that hands out a root of
other keys is refused rather than believed.

A verified repository is kept while Notary's timestamp is the same: within `max_age`
seconds it is used without asking Notary; after that, timestamp.json is fetched again and
the rest only when it changed (a new signature, a new timestamp), and never past the
first expiry among the roles.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from portside.auth.access import Access
from portside.auth.principal import ANONYMOUS
from portside.auth.tokens import TokenService
from portside.meta.trust import KeyStore
from portside.remote.errors import RemoteError, RemoteNotFound
from portside.remote.notary import NotaryClient
from portside.trust import tuf
from portside.trust.results import Verification

__all__ = ["ContentTrust"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Cached:
    repository: tuf.Repository
    timestamp: bytes
    checked_at: float


class ContentTrust:
    def __init__(
        self,
        client: NotaryClient,
        gun_prefix: str,
        *,
        pinned: Sequence[str] | None = None,
        roots: KeyStore | None = None,
        max_age: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._prefix = gun_prefix.rstrip("/")
        self._pinned = pinned
        self._roots = roots
        # The GUNs' first-use roots, as recorded (in `roots` when given): the root key ids.
        self.recorded: dict[str, frozenset[str]] = {}
        self._max_age = max_age
        self._clock = clock
        self._cache: dict[tuple[str, tuple[str, ...] | None], _Cached] = {}

    @staticmethod
    def token_minter(tokens: TokenService, service: str) -> Callable[[str], str]:
        """Bearer tokens for Notary's `service` with pull on a GUN, signed with Portside's key."""

        def mint(gun: str) -> str:
            return tokens.issue(ANONYMOUS, [Access("repository", gun, "pull")], {}, audience=service).token

        return mint

    def gun(self, repository: str) -> str:
        return f"{self._prefix}/{repository}"

    async def verify(
        self, repository: str, digest: str, tag: str | None = None, *, pinned: Sequence[str] | None = None
    ) -> Verification:
        """Whether a tag Notary signs for `repository` carries `digest` (with `tag`: that tag).
        `pinned`: root keys (TUF key ids or PEM) the caller trusts for this repository, over
        the server's pins and the first-use record."""
        gun = self.gun(repository)
        pins = tuple(pinned) if pinned else (tuple(self._pinned) if self._pinned is not None else None)
        try:
            trusted = await self._repository(gun, pins)
        except tuf.TufError as error:
            return Verification.failed("notary", f"Notary metadata for {gun} does not verify: {error}")
        except RemoteNotFound:
            return Verification.failed("notary", f"Notary has no trust data for {gun} (no tag was signed)")
        except RemoteError as error:
            return Verification.failed("notary", f"Notary could not be read for {gun}: {error}")
        except Exception as error:  # never out of the pull policy
            log.exception("content trust check of %s failed", gun)
            return Verification.failed("notary", f"Notary could not be read for {gun}: {error!r}")
        return tuf.verdict(trusted, digest, tag)

    async def _repository(self, gun: str, pins: tuple[str, ...] | None) -> tuf.Repository:
        now = self._clock()
        key = (gun, pins)
        cached = self._cache.get(key)
        wall = datetime.fromtimestamp(now, UTC)
        if cached is not None and wall >= cached.repository.fresh_until:
            cached = None
        if cached is not None and now - cached.checked_at < self._max_age:
            return cached.repository
        if cached is not None:
            timestamp = await self._client.role(gun, "timestamp")
            if timestamp == cached.timestamp:
                self._cache[key] = _Cached(cached.repository, timestamp, now)
                return cached.repository
        metadata = await self._client.repository(gun)
        if pins is not None:
            repository = tuf.verify_repository(gun, metadata, pinned=pins, now=wall)
        else:
            repository = await self._first_use(gun, metadata, wall)
        self._cache[key] = _Cached(repository, metadata["timestamp"], now)
        return repository

    async def _first_use(self, gun: str, metadata: Mapping[str, bytes], wall: datetime) -> tuf.Repository:
        """The repository verified against the root recorded for `gun`, recording this root
        when none was: the record's first writer wins, and a root that differs from the
        record must be signed by the recorded keys (a rotation), or it does not verify."""
        recorded = self.recorded.get(gun)
        if recorded is None and self._roots is None:
            repository = tuf.verify_repository(gun, metadata, pinned=None, now=wall)
            self.recorded[gun] = repository.root_key_ids
            return repository
        if recorded is None:
            assert self._roots is not None
            candidate = tuf.verify_repository(gun, metadata, pinned=None, now=wall)
            stored = await self._roots.get_or_create(f"notary-root:{gun}", json.dumps(sorted(candidate.root_key_ids)))
            recorded = frozenset(json.loads(stored))
            self.recorded[gun] = recorded
            if recorded == candidate.root_key_ids:
                return candidate
        return tuf.verify_repository(gun, metadata, pinned=sorted(recorded), now=wall)
