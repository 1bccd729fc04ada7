"""Storage that loses nothing: restarts, crashes and concurrency against a server of
the test's own (`fresh_portside`), checked through the API and the data directory."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api import oci
from tests.servers import Portside
from tests.stacks import Backing, StoredObject, stored_objects

pytestmark = [pytest.mark.portside_only, pytest.mark.slow]

MIB = 1024 * 1024
# Directories where uploads are staged before they are verified and made visible.
STAGING_NAMES = {"uploads", "staging", "tmp", ".tmp", "_uploads", "incoming"}


def _client(server: Portside) -> httpx.Client:
    # Longer than the S3 store's own read timeout (60 s) and a retry: on the scaled stack, a
    # request whose S3 call moto leaves unanswered (it has, under the full suite's load) is
    # retried by the server, and the test is about what lands, not how fast.
    return httpx.Client(base_url=server.url, timeout=180.0)


def _stored(server: Portside) -> Iterator[StoredObject]:
    """The server's stored files or objects outside the staging areas (either stack)."""
    return stored_objects(server.data_dir, server.env, frozenset(STAGING_NAMES))


def _sha256_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _copies(server: Portside, digest: str, size: int) -> list[str]:
    return [o.name for o in _stored(server) if o.size == size and _sha256_of(o.read()) == digest]


def _assert_ready(client: httpx.Client) -> None:
    assert client.get("/v2/").status_code == 200
    for probe in ("/healthz", "/readyz"):
        r = client.get(probe)
        assert r.status_code == 200, oci.error_text(r)


@pytest.fixture(params=[1, 4], ids=["1worker", "4workers"])
def racy_portside(request: pytest.FixtureRequest, tmp_path: Path, stack: str, backing: Backing) -> Iterator[Portside]:
    """A server of the test's own, with one worker process or several: locks that hold
    within one process must hold across processes too."""
    if request.param == 1:
        yield request.getfixturevalue("fresh_portside")
        return
    env = {**backing.env(stack), "PORTSIDE_WORKERS": str(request.param)}
    server = Portside(data_dir=tmp_path / "data", env=env).start()
    try:
        yield server
    finally:
        server.stop()


class BigContent:
    """A large deterministic blob made on the fly: `count` pieces of 1 MiB."""

    def __init__(self, count: int):
        self.count = count
        self.seed = os.urandom(MIB)
        h = hashlib.sha256()
        for piece in self.pieces():
            h.update(piece)
        self.digest = f"sha256:{h.hexdigest()}"
        self.size = count * MIB

    def piece(self, i: int) -> bytes:
        return i.to_bytes(8, "big") + self.seed[8:]

    def pieces(self) -> Iterator[bytes]:
        for i in range(self.count):
            yield self.piece(i)


def _send_and_crash(
    server: Portside, content: BigContent, request: tuple[str, str, dict], crash_after: int | None
) -> dict:
    """Streams `content` as the body of `request` and SIGKILLs the server after
    `crash_after` pieces (or right after the last piece when None). Returns what the
    client saw."""
    method, url, params = request
    sent = threading.Event()
    outcome: dict = {}

    def body() -> Iterator[bytes]:
        for i, piece in enumerate(content.pieces()):
            if crash_after is not None and i == crash_after:
                sent.set()
                time.sleep(2.0)  # the server dies here, mid-body
            yield piece
        sent.set()

    def run() -> None:
        try:
            with httpx.Client(timeout=60.0) as c:
                r = c.request(
                    method, url, params=params, content=body(), headers={"content-type": "application/octet-stream"}
                )
                outcome["status"] = r.status_code
        except httpx.HTTPError as e:
            outcome["error"] = repr(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert sent.wait(120), "the upload never got going"
    time.sleep(0.3 if crash_after is not None else 0.0)
    server.kill()
    t.join(60)
    assert not t.is_alive()
    server.start()
    return outcome


# Upload sessions survive restarts -------------------------------------------------------------


def _first_chunk(server: Portside, repo: str, chunk: bytes) -> str:
    """Start an upload to `repo` and PATCH `chunk` as its first chunk; the session's URL."""
    with _client(server) as c:
        r = c.patch(oci.start_upload(c, repo), content=chunk, headers={"content-range": f"0-{len(chunk) - 1}"})
        assert r.status_code == 202, oci.error_text(r)
        return oci.location(r)


@pytest.mark.parametrize("how", ["restart", "sigkill"])
def test_upload_session_survives_restart(fresh_portside: Portside, how: str) -> None:
    repo = "durable/session"
    data = oci.random_bytes(3 * MIB + 123)
    first = 2 * MIB
    url = _first_chunk(fresh_portside, repo, data[:first])
    if how == "restart":
        fresh_portside.restart()
    else:
        fresh_portside.kill()
        fresh_portside.start()
    with _client(fresh_portside) as c:
        _assert_ready(c)
        s = c.get(url)
        assert s.status_code == 204, oci.error_text(s)
        assert s.headers["range"] in (f"0-{first - 1}", f"bytes=0-{first - 1}")
        url = oci.location(s)
        r = c.patch(url, content=data[first:], headers={"content-range": f"{first}-{len(data) - 1}"})
        assert r.status_code == 202, oci.error_text(r)
        r = c.put(oci.with_params(oci.location(r), digest=oci.digest(data)))
        assert r.status_code == 201, oci.error_text(r)
        got = c.get(f"/v2/{repo}/blobs/{oci.digest(data)}")
        assert got.status_code == 200 and got.content == data


def test_streamed_session_survives_restart(fresh_portside: Portside) -> None:
    """A session fed by a PATCH without Content-Range, completed with the rest in PUT."""
    repo = "durable/streamed"
    data = oci.random_bytes(MIB + 7)
    with _client(fresh_portside) as c:
        url = oci.start_upload(c, repo)
        r = c.patch(url, content=iter([data[:500_000], data[500_000:700_000]]))
        assert r.status_code == 202, oci.error_text(r)
        url = oci.location(r)
    fresh_portside.restart()
    with _client(fresh_portside) as c:
        s = c.get(url)
        assert s.status_code == 204 and s.headers["range"].endswith("0-699999"), oci.error_text(s)
        r = c.put(oci.with_params(url, digest=oci.digest(data)), content=data[700_000:])
        assert r.status_code == 201, oci.error_text(r)
        assert c.get(f"/v2/{repo}/blobs/{oci.digest(data)}").content == data


def test_session_with_no_bytes_yet_survives_restart(fresh_portside: Portside) -> None:
    """A session has no row until its first chunk: its id alone must carry it across a restart,
    and a completed one must stay unknown."""
    repo = "durable/fresh"
    data = oci.random_bytes(100_000)
    with _client(fresh_portside) as c:
        url = oci.start_upload(c, repo)
        done = oci.start_upload(c, repo)
        r = c.put(oci.with_params(done, digest=oci.digest(b"completed before")), content=b"completed before")
        assert r.status_code == 201, oci.error_text(r)
    fresh_portside.restart()
    with _client(fresh_portside) as c:
        s = c.get(url)
        assert s.status_code == 204 and s.headers["range"] == "0-0", oci.error_text(s)
        r = c.put(oci.with_params(url, digest=oci.digest(data)), content=data)
        assert r.status_code == 201, oci.error_text(r)
        assert c.get(f"/v2/{repo}/blobs/{oci.digest(data)}").content == data
        oci.assert_error(c.get(url), 404, "BLOB_UPLOAD_UNKNOWN")
        oci.assert_error(c.get(done), 404, "BLOB_UPLOAD_UNKNOWN")


def test_cancelled_session_stays_cancelled_after_restart(fresh_portside: Portside) -> None:
    repo = "durable/cancelled"
    with _client(fresh_portside) as c:
        url = oci.start_upload(c, repo)
        c.patch(url, content=b"x" * 1000, headers={"content-range": "0-999"})
        assert c.delete(url).status_code == 204
    fresh_portside.restart()
    with _client(fresh_portside) as c:
        oci.assert_error(c.get(url), 404, "BLOB_UPLOAD_UNKNOWN")


def test_content_survives_restart(fresh_portside: Portside) -> None:
    repo = "durable/content"
    with _client(fresh_portside) as c:
        image = oci.push_image(c, repo, "v1")
        idx = oci.index_manifest([oci.image_manifest(), oci.image_manifest()])
        oci.push_manifest(c, repo, idx, "multi")
        sig = oci.artifact_manifest("application/vnd.example.sig", subject=image)
        oci.push_manifest(c, repo, sig)
    fresh_portside.kill()
    fresh_portside.start()
    with _client(fresh_portside) as c:
        _assert_ready(c)
        assert c.get(f"/v2/{repo}/tags/list").json()["tags"] == ["multi", "v1"]
        for ref, m in (("v1", image), ("multi", idx), (sig.digest, sig)):
            r = c.get(f"/v2/{repo}/manifests/{ref}", headers={"accept": oci.ACCEPT_ALL})
            assert r.status_code == 200 and r.content == m.body
        for blob in image.blobs:
            assert c.get(f"/v2/{repo}/blobs/{blob.digest}").content == blob.data
        refs = c.get(f"/v2/{repo}/referrers/{image.digest}").json()["manifests"]
        assert [d["digest"] for d in refs] == [sig.digest]
        assert repo in c.get("/v2/_catalog").json()["repositories"]


@pytest.mark.parametrize("garbled", [False, True], ids=["intact", "garbled"])
def test_chunks_acknowledged_before_a_machine_crash_are_hashed_again(
    fresh_portside: Portside, stack: str, garbled: bool
) -> None:
    """A chunk on the filesystem is acknowledged from the page cache, with the boot it was
    written under in its saved state. After a machine crash (a new boot id), the staged
    bytes are hashed again: intact ones complete, garbled ones fail the digest check and
    are never published."""
    if stack != "fs":
        pytest.skip("the filesystem store's staging; S3 parts are durable once uploaded")
    repo = "durable/reboot"
    data = oci.random_bytes(3 * MIB + 5)
    first = 2 * MIB
    url = _first_chunk(fresh_portside, repo, data[:first])
    fresh_portside.stop()
    # What the machine's crash leaves: a saved state from another boot, and (garbled) a
    # staged file of the acknowledged length whose bytes never reached the disk.
    with sqlite3.connect(fresh_portside.data_dir / "portside.db") as db:
        (upload_id, state), *others = db.execute("SELECT id, state FROM uploads WHERE NOT ended").fetchall()
        assert not others and state[:1] == b"U"
        db.execute("UPDATE uploads SET state = ? WHERE id = ?", (b"U" + uuid.uuid4().bytes + state[17:], upload_id))
    if garbled:
        staged = fresh_portside.data_dir / "uploads" / upload_id
        assert staged.stat().st_size == first
        staged.write_bytes(bytes(first))
    fresh_portside.start()
    with _client(fresh_portside) as c:
        r = c.patch(url, content=data[first:], headers={"content-range": f"{first}-{len(data) - 1}"})
        assert r.status_code == 202, oci.error_text(r)
        r = c.put(oci.with_params(oci.location(r), digest=oci.digest(data)))
        blob = f"/v2/{repo}/blobs/{oci.digest(data)}"
        if garbled:
            oci.assert_error(r, 400, "DIGEST_INVALID")
            assert c.head(blob).status_code == 404
        else:
            assert r.status_code == 201, oci.error_text(r)
            assert c.get(blob).content == data


# Fifty concurrent uploads of one blob ---------------------------------------------------------


async def _upload_once(client: httpx.AsyncClient, repo: str, data: bytes, style: int) -> int:
    d = oci.digest(data)
    if style == 0:  # single POST
        r = await client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": d}, content=data)
        return r.status_code
    r = await client.post(f"/v2/{repo}/blobs/uploads/")
    if r.status_code != 202:
        return r.status_code
    url = oci.location(r)
    if style == 1:  # POST then PUT
        r = await client.put(oci.with_params(url, digest=d), content=data)
        return r.status_code
    half = len(data) // 2  # chunked
    r = await client.patch(url, content=data[:half], headers={"content-range": f"0-{half - 1}"})
    if r.status_code != 202:
        return r.status_code
    url = oci.location(r)
    r = await client.patch(url, content=data[half:], headers={"content-range": f"{half}-{len(data) - 1}"})
    if r.status_code != 202:
        return r.status_code
    r = await client.put(oci.with_params(oci.location(r), digest=d))
    return r.status_code


async def test_fifty_concurrent_uploads_of_one_blob(racy_portside: Portside) -> None:
    data = oci.random_bytes(2 * MIB + 1)
    d = oci.digest(data)
    repos = [f"dedup/r{i % 5}" for i in range(50)]
    limit = asyncio.Semaphore(25)

    async with httpx.AsyncClient(
        base_url=racy_portside.url, timeout=120.0, limits=httpx.Limits(max_connections=25)
    ) as client:

        async def one(i: int) -> int:
            async with limit:
                return await _upload_once(client, repos[i], data, i % 3)

        statuses = await asyncio.gather(*(one(i) for i in range(50)))
        assert statuses == [201] * 50, statuses
        for name in sorted(set(repos)):
            r = await client.get(f"/v2/{name}/blobs/{d}")
            assert r.status_code == 200 and r.content == data
    copies = _copies(racy_portside, d, len(data))
    assert len(copies) == 1, f"one stored copy expected, found {copies}"


def test_one_copy_across_repositories_and_mounts(fresh_portside: Portside) -> None:
    data = oci.random_bytes(MIB)
    d = oci.digest(data)
    with _client(fresh_portside) as c:
        for i in range(4):
            oci.push_blob(c, f"dedup/seq{i}", data)
        r = c.post("/v2/dedup/mounted/blobs/uploads/", params={"mount": d, "from": "dedup/seq0"})
        assert r.status_code == 201
    assert len(_copies(fresh_portside, d, len(data))) == 1


# Crashes in the middle of uploads ---------------------------------------------------------------


def _assert_never_half_visible(server: Portside, repo: str, content: BigContent) -> None:
    with _client(server) as c:
        _assert_ready(c)
        h = c.head(f"/v2/{repo}/blobs/{content.digest}")
        assert h.status_code == 404, oci.error_text(h)
        oci.assert_error(c.get(f"/v2/{repo}/blobs/{content.digest}"), 404, "BLOB_UNKNOWN")
    hexpart = content.digest.split(":", 1)[1]
    for stored in _stored(server):
        if hexpart in stored.name:
            assert stored.size == content.size and _sha256_of(stored.read()) == content.digest, (
                f"{stored.name} is named for the blob but holds other bytes"
            )


@pytest.mark.parametrize("style", ["patch", "put", "post"])
def test_sigkill_mid_upload_leaves_nothing_visible(fresh_portside: Portside, style: str) -> None:
    repo = "crash/mid"
    content = BigContent(96)
    with _client(fresh_portside) as c:
        if style == "post":
            request = ("POST", f"{fresh_portside.url}/v2/{repo}/blobs/uploads/", {"digest": content.digest})
        else:
            url = oci.start_upload(c, repo)
            params = {"digest": content.digest} if style == "put" else {}
            request = ("PUT" if style == "put" else "PATCH", str(url), params)
    outcome = _send_and_crash(fresh_portside, content, request, crash_after=24)
    assert "status" not in outcome or outcome["status"] >= 400, outcome
    _assert_never_half_visible(fresh_portside, repo, content)
    with _client(fresh_portside) as c:
        # A manifest cannot point at the blob that never landed.
        m = oci.image_manifest(layers=[oci.Blob(b"", oci.OCI_LAYER)])
        doc = m.json
        doc["layers"] = [{"mediaType": oci.OCI_LAYER, "digest": content.digest, "size": content.size}]
        oci.push_blob(c, repo, m.blobs[0])
        bad = oci.Manifest(oci.canonical(doc), oci.OCI_MANIFEST)
        oci.assert_error(oci.put_manifest(c, repo, "crashed", bad), 400, "MANIFEST_BLOB_UNKNOWN")
        # And the same blob can be pushed whole afterwards.
        url = oci.start_upload(c, repo)
        r = c.put(oci.with_params(url, digest=content.digest), content=content.pieces())
        assert r.status_code == 201, oci.error_text(r)
        got = c.get(f"/v2/{repo}/blobs/{content.digest}")
        assert got.status_code == 200 and oci.digest(got.content) == content.digest


def test_sigkill_at_the_end_of_an_upload_is_all_or_nothing(fresh_portside: Portside) -> None:
    """Killed just as the last byte went out: the blob is either absent or whole."""
    repo = "crash/end"
    content = BigContent(48)
    with _client(fresh_portside) as c:
        url = oci.start_upload(c, repo)
    _send_and_crash(fresh_portside, content, ("PUT", str(url), {"digest": content.digest}), crash_after=None)
    with _client(fresh_portside) as c:
        _assert_ready(c)
        h = c.head(f"/v2/{repo}/blobs/{content.digest}")
        if h.status_code == 200:
            assert int(h.headers["content-length"]) == content.size
            got = c.get(f"/v2/{repo}/blobs/{content.digest}")
            assert got.status_code == 200 and oci.digest(got.content) == content.digest
        else:
            assert h.status_code == 404, oci.error_text(h)


def test_sigkill_during_pushes_keeps_manifests_whole(fresh_portside: Portside) -> None:
    """Images pushed in a loop while the server is killed: afterwards every acknowledged
    tag is there, every tag that exists resolves, and every blob its manifest names is there."""
    repo = "crash/pushes"
    stop = threading.Event()
    acknowledged: list[str] = []

    def pusher() -> None:
        with _client(fresh_portside) as c:
            i = 0
            while not stop.is_set():
                try:
                    oci.push_image(c, repo, f"t{i}", layers=[oci.layer(64 * 1024), oci.layer(300_000)])
                except (httpx.HTTPError, AssertionError):
                    return
                acknowledged.append(f"t{i}")
                i += 1

    t = threading.Thread(target=pusher, daemon=True)
    t.start()
    time.sleep(1.5)
    fresh_portside.kill()
    stop.set()
    t.join(60)
    fresh_portside.start()
    with _client(fresh_portside) as c:
        _assert_ready(c)
        r = c.get(f"/v2/{repo}/tags/list")
        assert r.status_code == 200, oci.error_text(r)
        tags = r.json()["tags"] or []
        assert acknowledged, "some images were pushed before the crash"
        missing = set(acknowledged) - set(tags)
        assert not missing, f"acknowledged pushes lost in the crash: {sorted(missing)}"
        for tag in tags:
            m = c.get(f"/v2/{repo}/manifests/{tag}", headers={"accept": oci.ACCEPT_ALL})
            assert m.status_code == 200, oci.error_text(m)
            assert m.headers["docker-content-digest"] == oci.digest(m.content)
            doc = m.json()
            for desc in [doc["config"], *doc["layers"]]:
                b = c.get(f"/v2/{repo}/blobs/{desc['digest']}")
                assert b.status_code == 200, f"tag {tag} names missing blob {desc['digest']}"
                assert len(b.content) == desc["size"] and oci.digest(b.content) == desc["digest"]


def test_sigkill_during_concurrent_uploads(fresh_portside: Portside) -> None:
    """Eight clients upload blobs in a loop; the server is killed. Afterwards every blob
    acknowledged with 201 is there and whole, and every other one is absent or whole."""
    repo = "crash/concurrent"
    stop = threading.Event()
    lock = threading.Lock()
    attempted: dict[str, bytes] = {}
    acknowledged: set[str] = set()

    def uploader(seed: int) -> None:
        with _client(fresh_portside) as c:
            i = 0
            while not stop.is_set():
                data = oci.random_bytes(64 * 1024 * (1 + (seed + i) % 16))
                d = oci.digest(data)
                with lock:
                    attempted[d] = data
                try:
                    url = oci.start_upload(c, repo)
                    half = len(data) // 2
                    r = c.patch(url, content=data[:half], headers={"content-range": f"0-{half - 1}"})
                    r = c.put(oci.with_params(oci.location(r), digest=d), content=data[half:])
                except (httpx.HTTPError, AssertionError):
                    return
                if r.status_code == 201:
                    with lock:
                        acknowledged.add(d)
                i += 1

    threads = [threading.Thread(target=uploader, args=(n,), daemon=True) for n in range(8)]
    for th in threads:
        th.start()
    time.sleep(1.5)
    fresh_portside.kill()
    stop.set()
    for th in threads:
        th.join(60)
    fresh_portside.start()
    assert acknowledged, "some uploads finished before the crash"
    with _client(fresh_portside) as c:
        _assert_ready(c)
        for d, data in attempted.items():
            h = c.head(f"/v2/{repo}/blobs/{d}")
            if d in acknowledged:
                assert h.status_code == 200, f"acknowledged blob {d} lost: {oci.error_text(h)}"
            if h.status_code == 200:
                assert int(h.headers["content-length"]) == len(data)
                g = c.get(f"/v2/{repo}/blobs/{d}")
                assert g.status_code == 200 and g.content == data, f"blob {d} visible but not whole"
            else:
                assert h.status_code == 404, oci.error_text(h)


# Kill moments swept across the completing PUT: verifying the digest, publishing the file,
# recording the blob. The window between the last two is a few milliseconds wide, so the
# sweep is fine-grained.
COMPLETION_KILL_DELAYS = [0.0, *(round(0.010 + 0.003 * i, 3) for i in range(19)), 0.1]
# One kill ends several requests, each at its own moment: they start staggered so that the
# kill lands its own delay after each began. A kill per moment would cost a server start
# each (about 3 s on the scaled stack), and the sweep is about the moments, not the kills.
KILLS_PER_SWEEP = 3


def _kill_during(server: Portside, requests: list[tuple[float, Callable[[], None]]]) -> None:
    """Start each request at its moment before one SIGKILL of `server`, then start it again."""
    latest = max(delay for delay, _ in requests)
    kill_at = time.monotonic() + 0.05 + latest

    def run(delay: float, send: Callable[[], None]) -> None:
        time.sleep(max(0.0, kill_at - delay - time.monotonic()))
        send()

    threads = [threading.Thread(target=run, args=request, daemon=True) for request in requests]
    for t in threads:
        t.start()
    time.sleep(max(0.0, kill_at - time.monotonic()))
    server.kill()
    for t in threads:
        t.join(30)
    server.start()


def _put_ignoring_errors(url: str, **kwargs: Any) -> Callable[[], None]:
    def put() -> None:
        try:
            with httpx.Client(timeout=30.0) as c:
                c.put(url, **kwargs)
        except httpx.HTTPError:
            pass

    return put


def test_sigkill_around_completion(fresh_portside: Portside) -> None:
    """Killed at many moments around the completing PUT of a fully acknowledged upload:
    afterwards the blob is published whole, or the session is still there and can be
    completed (the old state or the new one), never lost in between."""
    for kill in range(KILLS_PER_SWEEP):
        delays = COMPLETION_KILL_DELAYS[kill::KILLS_PER_SWEEP]
        uploads = [_acknowledged_upload(fresh_portside, f"crash/completion{kill}-{n}") for n in range(len(delays))]
        _kill_during(
            fresh_portside,
            [(delay, _put_ignoring_errors(upload.url)) for delay, upload in zip(delays, uploads, strict=True)],
        )
        for delay, upload in zip(delays, uploads, strict=True):
            _check_completion(fresh_portside, upload, delay)


@dataclass(frozen=True)
class _Upload:
    repo: str
    data: bytes
    digest: str
    url: str  # the completing PUT's, digest included


def _acknowledged_upload(server: Portside, repo: str) -> _Upload:
    data = oci.random_bytes(8 * MIB)
    d = oci.digest(data)
    with _client(server) as c:
        url = oci.start_upload(c, repo)
        r = c.patch(url, content=data, headers={"content-range": f"0-{len(data) - 1}"})
        assert r.status_code == 202
        return _Upload(repo, data, d, oci.with_params(oci.location(r), digest=d))


def _check_completion(server: Portside, upload: _Upload, delay: float) -> None:
    repo, data, d, url = upload.repo, upload.data, upload.digest, upload.url
    where = f"(killed {delay * 1000:.0f} ms into the completing PUT)"
    with _client(server) as c:
        _assert_ready(c)
        h = c.head(f"/v2/{repo}/blobs/{d}")
        if h.status_code == 200:
            g = c.get(f"/v2/{repo}/blobs/{d}")
            assert g.status_code == 200 and g.content == data, where
            return
        assert h.status_code == 404, f"{where} {oci.error_text(h)}"
        # Not published: then the acknowledged session must still be there to finish.
        s = c.get(url)
        assert s.status_code == 204, f"{where} blob unpublished and session gone: {oci.error_text(s)}"
        assert s.headers["range"].endswith(f"0-{len(data) - 1}"), where
        r = c.put(url)
        assert r.status_code == 201, f"{where} session reports all bytes but cannot complete: {oci.error_text(r)}"
        g = c.get(f"/v2/{repo}/blobs/{d}")
        assert g.status_code == 200 and g.content == data, where


RETAG_KILL_DELAYS = [0.0, 0.002, 0.005, 0.01, 0.02, 0.04, 0.08]


def test_sigkill_during_retag_is_old_or_new(fresh_portside: Portside) -> None:
    """Tags moved from one manifest to another while the server is killed at many moments:
    afterwards each tag names its old manifest or its new one, whole, and the tags list agrees."""
    repo = "crash/retag"
    # A big manifest (800 layers, all present) makes each PUT take a while to check.
    config = oci.config_blob()
    layers = [oci.Blob(b"layer" + i.to_bytes(4, "big"), oci.OCI_LAYER) for i in range(800)]
    start = oci.image_manifest(config, layers, annotations={"round": "start"})
    with _client(fresh_portside) as c:

        def push(blob: oci.Blob) -> None:
            r = c.post(f"/v2/{repo}/blobs/uploads/", params={"digest": blob.digest}, content=blob.data)
            assert r.status_code == 201, oci.error_text(r)

        with ThreadPoolExecutor(8) as pool:  # 801 small pushes: at once, not one by one
            list(pool.map(push, [config, *layers]))
        for n in range(len(RETAG_KILL_DELAYS)):
            assert oci.put_manifest(c, repo, f"moving{n}", start).status_code == 201
    # Each tag is moved once, killed at its own moment; tags of one kill move at once.
    tags = list(enumerate(RETAG_KILL_DELAYS))
    for kill in range(2):
        moved = tags[kill::2]
        new = {n: oci.image_manifest(config, layers, annotations={"round": str(n)}) for n, _ in moved}
        _kill_during(
            fresh_portside,
            [
                (
                    delay,
                    _put_ignoring_errors(
                        f"{fresh_portside.url}/v2/{repo}/manifests/moving{n}",
                        content=new[n].body,
                        headers={"content-type": oci.OCI_MANIFEST},
                    ),
                )
                for n, delay in moved
            ],
        )
        with _client(fresh_portside) as c:
            listed = c.get(f"/v2/{repo}/tags/list").json()["tags"]
            for n, delay in moved:
                where = f"(moving{n}, killed {delay * 1000:.0f} ms into the PUT)"
                r = c.get(f"/v2/{repo}/manifests/moving{n}", headers={"accept": oci.OCI_MANIFEST})
                assert r.status_code == 200, f"{where} the tag is gone: {oci.error_text(r)}"
                assert r.content in (start.body, new[n].body), where
                assert r.headers["docker-content-digest"] == oci.digest(r.content), where
                assert f"moving{n}" in listed, where
                if r.content == new[n].body:
                    by_digest = c.get(f"/v2/{repo}/manifests/{new[n].digest}", headers={"accept": oci.OCI_MANIFEST})
                    assert by_digest.status_code == 200, where


def test_manifest_refused_for_blobs_that_did_not_land(fresh_portside: Portside) -> None:
    repo = "durable/refused"
    with _client(fresh_portside) as c:
        cancelled = oci.layer(1000)
        url = oci.start_upload(c, repo)
        c.patch(url, content=cancelled.data, headers={"content-range": f"0-{cancelled.size - 1}"})
        c.delete(url)
        wrong = oci.layer(1000)
        url = oci.start_upload(c, repo)
        r = c.put(oci.with_params(url, digest=oci.digest(b"other")), content=wrong.data)
        assert r.status_code == 400
        unfinished = oci.layer(1000)
        url = oci.start_upload(c, repo)
        c.patch(url, content=unfinished.data, headers={"content-range": f"0-{unfinished.size - 1}"})
        for missing in (cancelled, wrong, unfinished):
            m = oci.image_manifest(layers=[missing])
            oci.push_blob(c, repo, m.blobs[0])
            oci.assert_error(oci.put_manifest(c, repo, "nope", m), 400, "MANIFEST_BLOB_UNKNOWN")
    fresh_portside.restart()
    with _client(fresh_portside) as c:
        oci.assert_error(c.get(f"/v2/{repo}/manifests/nope"), 404, "MANIFEST_UNKNOWN")


# Races on one session and one tag -----------------------------------------------------------------


async def test_concurrent_chunks_to_one_session(racy_portside: Portside) -> None:
    """Ten clients send a first chunk to the same session at once: one wins, the rest get
    416, and the session holds exactly the winner's bytes."""
    repo = "race/session"
    candidates = [oci.random_bytes(256 * 1024) for _ in range(10)]
    async with httpx.AsyncClient(base_url=racy_portside.url, timeout=60.0) as client:
        r = await client.post(f"/v2/{repo}/blobs/uploads/")
        url = oci.location(r)

        async def send(data: bytes) -> httpx.Response:
            return await client.patch(url, content=data, headers={"content-range": f"0-{len(data) - 1}"})

        answers = await asyncio.gather(*(send(d) for d in candidates))
        statuses = [a.status_code for a in answers]
        assert statuses.count(202) == 1, statuses
        assert all(s in (202, 416) for s in statuses), statuses
        winner = candidates[statuses.index(202)]
        s = await client.get(url)
        assert s.status_code == 204 and s.headers["range"].endswith(f"0-{len(winner) - 1}")
        done = await client.put(oci.with_params(url, digest=oci.digest(winner)))
        assert done.status_code == 201, oci.error_text(done)
        got = await client.get(f"/v2/{repo}/blobs/{oci.digest(winner)}")
        assert got.content == winner


async def test_concurrent_completion_of_one_session(racy_portside: Portside) -> None:
    repo = "race/complete"
    data = oci.random_bytes(512 * 1024)
    d = oci.digest(data)
    async with httpx.AsyncClient(base_url=racy_portside.url, timeout=60.0) as client:
        r = await client.post(f"/v2/{repo}/blobs/uploads/")
        url = oci.location(r)
        r = await client.patch(url, content=data, headers={"content-range": f"0-{len(data) - 1}"})
        url = oci.location(r)
        answers = await asyncio.gather(*(client.put(oci.with_params(url, digest=d)) for _ in range(8)))
        statuses = sorted(a.status_code for a in answers)
        assert statuses.count(201) >= 1, statuses
        for a in answers:
            if a.status_code != 201:
                oci.assert_error(a, {400, 404, 416}, "BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID")
        got = await client.get(f"/v2/{repo}/blobs/{d}")
        assert got.status_code == 200 and got.content == data
    assert len(_copies(racy_portside, d, len(data))) == 1


async def test_concurrent_tag_updates(racy_portside: Portside) -> None:
    """Twenty manifests pushed to one tag at once: all accepted, and the tag ends on one of
    them, served whole."""
    repo = "race/tag"
    manifests = [oci.image_manifest() for _ in range(20)]
    with _client(racy_portside) as c:
        for m in manifests:
            for blob in m.blobs:
                oci.push_blob(c, repo, blob)
    async with httpx.AsyncClient(base_url=racy_portside.url, timeout=60.0) as client:
        answers = await asyncio.gather(
            *(
                client.put(f"/v2/{repo}/manifests/hot", content=m.body, headers={"content-type": m.media_type})
                for m in manifests
            )
        )
        assert [a.status_code for a in answers] == [201] * 20, [
            oci.error_text(a) for a in answers if a.status_code != 201
        ]
        r = await client.get(f"/v2/{repo}/manifests/hot", headers={"accept": oci.OCI_MANIFEST})
        assert r.status_code == 200
        assert r.content in {m.body for m in manifests}
        assert r.headers["docker-content-digest"] == oci.digest(r.content)
        tags = (await client.get(f"/v2/{repo}/tags/list")).json()["tags"]
        assert tags == ["hot"]
        for m in manifests:  # every one stays reachable by digest
            g = await client.head(f"/v2/{repo}/manifests/{m.digest}", headers={"accept": oci.OCI_MANIFEST})
            assert g.status_code == 200


# Crash in the middle of a chunk, then resume ------------------------------------------------------


def test_sigkill_mid_chunk_then_resume(fresh_portside: Portside) -> None:
    """Acknowledged chunks survive a crash during the next one; the session reports a
    consistent offset, and resuming from it yields exactly the intended blob."""
    repo = "crash/resume"
    content = BigContent(64)
    full = b"".join(content.pieces())
    acked = 8 * MIB
    with _client(fresh_portside) as c:
        url = oci.start_upload(c, repo)
        r = c.patch(url, content=full[:acked], headers={"content-range": f"0-{acked - 1}"})
        assert r.status_code == 202, oci.error_text(r)
        url = oci.location(r)

    rest = full[acked:]
    sent = threading.Event()

    def body() -> Iterator[bytes]:
        for i in range(0, len(rest), MIB):
            if i == 16 * MIB:
                sent.set()
                time.sleep(2.0)
            yield rest[i : i + MIB]

    def run() -> None:
        try:
            with httpx.Client(timeout=60.0) as c2:
                c2.patch(url, content=body())
        except httpx.HTTPError:
            pass

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert sent.wait(60)
    time.sleep(0.3)
    fresh_portside.kill()
    t.join(60)
    fresh_portside.start()

    with _client(fresh_portside) as c:
        _assert_ready(c)
        s = c.get(url)
        if s.status_code == 404:
            raise AssertionError(f"the session with {acked} acknowledged bytes was lost: {oci.error_text(s)}")
        assert s.status_code == 204, oci.error_text(s)
        end = int(s.headers["range"].rsplit("-", 1)[1])
        assert acked - 1 <= end < len(full), f"offset {end} after {acked} acknowledged bytes"
        url = oci.location(s)
        offset = end + 1
        r = c.patch(url, content=full[offset:], headers={"content-range": f"{offset}-{len(full) - 1}"})
        assert r.status_code == 202, oci.error_text(r)
        r = c.put(oci.with_params(oci.location(r), digest=content.digest))
        assert r.status_code == 201, f"resumed upload does not hold the intended bytes: {oci.error_text(r)}"
        got = c.get(f"/v2/{repo}/blobs/{content.digest}")
        assert got.status_code == 200 and oci.digest(got.content) == content.digest


def test_finished_uploads_leave_no_staging_files(fresh_portside: Portside) -> None:
    """Completed, cancelled and failed sessions clean their staging files up."""
    repo = "durable/clean"
    with _client(fresh_portside) as c:
        for i in range(5):
            oci.push_blob(c, repo, oci.layer(100_000 + i))
        url = oci.start_upload(c, repo)
        c.patch(url, content=b"a" * 5000, headers={"content-range": "0-4999"})
        assert c.delete(url).status_code == 204
        url = oci.start_upload(c, repo)
        r = c.put(oci.with_params(url, digest=oci.digest(b"x")), content=b"y" * 5000)
        assert r.status_code == 400
        r = c.post(f"/v2/{repo}/blobs/uploads/", params={"digest": oci.layer(10).digest}, content=b"z" * 10)
        assert r.status_code == 400
    everything = stored_objects(fresh_portside.data_dir, fresh_portside.env, frozenset())
    kept = {o.name for o in _stored(fresh_portside)}
    leftovers = [o.name for o in everything if o.name not in kept and o.size >= 10]
    assert not leftovers, f"staging files left behind: {leftovers}"
