"""ContentTrust over a stand-in notary-server (httpx.MockTransport) serving the metadata
Debian's notary-server produced (tests/trust/fixtures_notary): verdicts, the token it
sends, first-use root pinning, caching while the timestamp holds, and failures as
Verifications, never exceptions."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import httpx

from portside.meta.sql.engine import create_engine
from portside.meta.sql.keys import SqlKeys
from portside.meta.sql.migrate import upgrade
from portside.mgmt.content_trust import ContentTrust
from portside.remote.notary import NotaryClient
from tests.trust.test_tuf import GUN, NOW, V1, V2, metadata

REPOSITORY = GUN.split("/", 1)[1]
PREFIX = GUN.split("/", 1)[0]


class FakeNotary:
    def __init__(self) -> None:
        self.files = metadata()
        self.requests: list[str] = []
        self.tokens: list[str] = []
        self.down = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        self.requests.append(request.url.path)
        self.tokens.append(request.headers.get("authorization", ""))
        prefix = f"/v2/{GUN}/_trust/tuf/"
        if not request.url.path.startswith(prefix):
            return httpx.Response(404)
        role = request.url.path[len(prefix) :].removesuffix(".json")
        if role not in self.files:
            return httpx.Response(404)
        return httpx.Response(200, content=self.files[role])


def _trust(fake: FakeNotary, clock: list[float], **kwargs: object) -> tuple[ContentTrust, NotaryClient]:
    client = NotaryClient(
        "https://notary.test", lambda gun: f"token-for-{gun}", transport=httpx.MockTransport(fake.handler)
    )
    return ContentTrust(client, PREFIX, clock=lambda: clock[0], **kwargs), client  # type: ignore[arg-type]


def test_verdicts_tokens_cache_and_first_use() -> None:
    fake = FakeNotary()
    clock = [NOW.timestamp()]
    trust, client = _trust(fake, clock)

    async def run() -> None:
        good = await trust.verify(REPOSITORY, V2)
        assert good.verified and good.signer == "targets/releases: v2", good
        assert set(fake.tokens) == {f"Bearer token-for-{GUN}"}
        assert trust.recorded[GUN], "the root was not recorded on first use"
        fetched = len(fake.requests)
        assert fetched == 5  # four top roles and targets/releases
        # within max_age: no request at all
        assert (await trust.verify(REPOSITORY, V1, tag="v1")).verified
        assert len(fake.requests) == fetched
        # later: the timestamp alone, unchanged, so the rest is not fetched again
        clock[0] += 60
        unsigned = await trust.verify(REPOSITORY, "sha256:" + "1" * 64)
        assert not unsigned.verified and "no signed target" in (unsigned.reason or "")
        assert fake.requests[fetched:] == [f"/v2/{GUN}/_trust/tuf/timestamp.json"]
        await client.aclose()

    asyncio.run(run())


def test_a_root_of_other_keys_is_refused_after_first_use() -> None:
    fake = FakeNotary()
    clock = [NOW.timestamp()]
    trust, client = _trust(fake, clock)
    trust.recorded[GUN] = frozenset({"ab" * 32})  # recorded earlier: another root key

    async def run() -> None:
        verdict = await trust.verify(REPOSITORY, V2)
        assert not verdict.verified and "not signed by the pinned root keys" in (verdict.reason or "")
        await client.aclose()

    asyncio.run(run())


def test_pinned_keys_are_the_root_of_trust() -> None:
    fake = FakeNotary()
    clock = [NOW.timestamp()]
    trust, client = _trust(fake, clock, pinned=["cd" * 32])

    async def run() -> None:
        verdict = await trust.verify(REPOSITORY, V2)
        assert not verdict.verified and "pinned" in (verdict.reason or "")
        assert not trust.recorded  # pins given: nothing is trusted on first use
        await client.aclose()

    asyncio.run(run())


def test_tampered_expired_missing_and_unreachable_are_failed_verdicts() -> None:
    fake = FakeNotary()
    document = json.loads(fake.files["targets/releases"])
    document["signed"]["targets"]["v2"]["hashes"]["sha256"] = "A" * 43 + "="
    fake.files["targets/releases"] = json.dumps(document, separators=(",", ":")).encode()
    clock = [NOW.timestamp()]
    trust, client = _trust(fake, clock)

    async def run() -> None:
        tampered = await trust.verify(REPOSITORY, V2)
        assert not tampered.verified and "does not verify" in (tampered.reason or "")
        assert "snapshot" in (tampered.reason or "")
        missing = await trust.verify("library/none", V2)
        assert not missing.verified and "no trust data" in (missing.reason or "")
        fake.down = True
        gone = await trust.verify(REPOSITORY, V2)
        assert not gone.verified and "could not be read" in (gone.reason or "")
        await client.aclose()

    asyncio.run(run())

    fresh = FakeNotary()
    late = [datetime(2026, 12, 18, tzinfo=UTC).timestamp()]
    expired_trust, expired_client = _trust(fresh, late)

    async def expired() -> None:
        verdict = await expired_trust.verify(REPOSITORY, V2)
        assert not verdict.verified and "timestamp: expired" in (verdict.reason or "")
        await expired_client.aclose()

    asyncio.run(expired())


def test_the_first_use_record_survives_a_restart_and_project_pins_come_first(tmp_path: Path) -> None:
    async def run() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'meta.db'}")
        await upgrade(engine)
        keys = SqlKeys(engine)
        fake = FakeNotary()
        clock = [NOW.timestamp()]
        first, client = _trust(fake, clock, roots=keys)
        assert (await first.verify(REPOSITORY, V2)).verified
        await client.aclose()
        # Another instance (or the same after a restart) reads the record, not Notary's word.
        again, client = _trust(FakeNotary(), clock, roots=keys)
        assert (await again.verify(REPOSITORY, V2)).verified
        assert again.recorded[GUN] == first.recorded[GUN]
        # Pins handed in (a project's trust policy) are the root of trust, over the record.
        refused = await again.verify(REPOSITORY, V2, pinned=["cd" * 32])
        assert not refused.verified and "pinned" in (refused.reason or "")
        pinned = await again.verify(REPOSITORY, V2, pinned=sorted(first.recorded[GUN]))
        assert pinned.verified, pinned
        await client.aclose()
        # A record of other keys (the Notary now hands out another root): refused.
        elsewhere = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
        await upgrade(elsewhere)
        await SqlKeys(elsewhere).get_or_create(f"notary-root:{GUN}", json.dumps(["ab" * 32]))
        moved, client = _trust(FakeNotary(), clock, roots=SqlKeys(elsewhere))
        verdict = await moved.verify(REPOSITORY, V2)
        assert not verdict.verified and "not signed by the pinned root keys" in (verdict.reason or "")
        await client.aclose()
        await elsewhere.dispose()
        await engine.dispose()

    asyncio.run(run())
