"""Request bodies are bounded before they are read, and cut off when they stall.

Over real HTTP against live servers. Oversized bodies are declared in headers the test
never follows with the body (or streamed in chunks until the server refuses them), so a
server that reads before it refuses never answers, and the test fails on its socket
timeout rather than on a measured time. Stalls use a server whose body timeout is short.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.api import oci
from tests.servers import ADMIN_PASSWORD, Portside

MIB = 1024 * 1024
TIMEOUT_SECONDS = 2
ADMIN = ("admin", ADMIN_PASSWORD)
BASIC = "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

# (method, path, content type, the API whose error shape answers)
BOUNDED = [
    ("POST", "/service/token", FORM, "oci"),
    ("POST", "/c/login", FORM, "harbor"),
    ("POST", "/api/v2.0/projects", JSON, "harbor"),
    ("PUT", "/api/v2.0/users/1/password", JSON, "harbor"),
]
BOUNDED_IDS = [path for _, path, _, _ in BOUNDED]


def _start(data_dir: Path, **env: str) -> Portside:
    server = Portside(
        data_dir=data_dir,
        open_registry=False,
        env={"PORTSIDE_ADMIN_CREATES_PROJECTS": "true", "PORTSIDE_BODY_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS), **env},
    )
    server.start()
    return server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    started = _start(tmp_path_factory.mktemp("bodies") / "data")
    yield started
    started.stop()


@pytest.fixture
def admin(server: Portside) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60.0, auth=ADMIN) as c:
        yield c


# A raw HTTP/1.1 exchange, for what httpx will not send: a header without its body, a body
# that stops half-way.


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, object]:
        parsed = json.loads(self.body)
        assert isinstance(parsed, dict), self
        return parsed


def _read_answer(sock: socket.socket) -> Answer:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, f"connection closed before an answer: {data!r}"
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        piece = sock.recv(65536)
        if not piece:
            break
        body += piece
    return Answer(int(status_line.split()[1]), headers, body)


def _raw(server: Portside, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> Answer:
    """Send the request line, `headers` and `body` (whatever the headers promise), then read
    the answer; the socket timeout turns a server that never answers into a failure."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {server.host}", *(f"{k}: {v}" for k, v in headers.items())]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return _read_answer(sock)


def _assert_shape(answer: Answer | httpx.Response, status: int, api: str, code: str | None = None) -> str:
    """The answer has `status` and the error body of `api`; returns the message."""
    assert _status(answer) == status, answer
    body = answer.json()
    errors = body["errors"]
    assert isinstance(errors, list) and len(errors) == 1, body
    error = errors[0]
    if api == "harbor":
        assert set(error) == {"code", "message"}, body
    else:
        assert set(error) == {"code", "message", "detail"}, body
        assert error["code"] == (code or "SIZE_INVALID"), body
    assert error["message"], body
    return str(error["message"])


def _status(answer: Answer | httpx.Response) -> int:
    return answer.status_code if isinstance(answer, httpx.Response) else answer.status


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    piece = b"a" * size
    for _ in range(total // size):
        yield piece


# --- Bounded bodies: refused unread, cut off when streamed past the limit -------------------


@pytest.mark.parametrize(("method", "path", "content_type", "api"), BOUNDED, ids=BOUNDED_IDS)
def test_a_declared_oversized_body_is_refused_unread(
    server: Portside, method: str, path: str, content_type: str, api: str
) -> None:
    # 256 MiB promised, a few bytes sent: only a server that judges by the header answers.
    answer = _raw(
        server,
        method,
        path,
        {"Content-Type": content_type, "Content-Length": str(256 * MIB), "Authorization": BASIC},
        b"grant",
    )
    assert "1048576" in _assert_shape(answer, 413, api)


@pytest.mark.parametrize(("method", "path", "content_type", "api"), BOUNDED, ids=BOUNDED_IDS)
def test_a_streamed_oversized_body_is_cut_off(
    server: Portside, method: str, path: str, content_type: str, api: str
) -> None:
    with httpx.Client(base_url=server.url, timeout=60.0, auth=ADMIN) as c:
        r = c.request(method, path, content=_chunks(4 * MIB), headers={"content-type": content_type})
    _assert_shape(r, 413, api)


def test_a_body_within_the_limit_is_read(server: Portside) -> None:
    """The bound is not a refusal of everything: a form of 1 MiB minus a little gets its answer."""
    padding = "x" * (MIB - 200)
    with httpx.Client(base_url=server.url, timeout=60.0) as c:
        r = c.post(
            "/service/token",
            content=f"grant_type=password&username=admin&password={ADMIN_PASSWORD}&pad={padding}".encode(),
            headers={"content-type": FORM},
        )
    assert r.status_code == 200, oci.error_text(r)
    assert r.json()["token"]


def test_the_limit_is_configurable(tmp_path: Path) -> None:
    small = _start(tmp_path / "data", PORTSIDE_MAX_BODY_BYTES="1000")
    try:
        with httpx.Client(base_url=small.url, timeout=60.0) as c:
            fits = c.post("/c/login", content=b"principal=admin&password=wrong&pad=" + b"x" * 900)
            assert fits.status_code == 401, oci.error_text(fits)
            over = c.post("/c/login", content=b"principal=admin&password=wrong&pad=" + b"x" * 1000)
        assert "1000 bytes" in _assert_shape(over, 413, "harbor")
    finally:
        small.stop()


# --- Memory: a refused body is never held -------------------------------------------------


def _worker_pid(server: Portside) -> int:
    """The one server process (PORTSIDE_WORKERS=1) the supervisor forked."""
    assert server.proc is not None
    supervisor = server.proc.pid
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    workers = [int(pid) for pid in children if "serve" in Path(f"/proc/{pid}/cmdline").read_text()]
    assert len(workers) == 1, children
    return workers[0]


def _peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


def test_streamed_bodies_never_grow_the_worker_by_their_size(tmp_path: Path) -> None:
    """Three 64 MiB bodies at once, to the token endpoint, the sign-in and a JSON endpoint:
    the worker's peak resident memory grows by a fraction of one of them, not by 192 MiB."""
    fresh = _start(tmp_path / "data")
    try:
        pid = _worker_pid(fresh)
        with httpx.Client(base_url=fresh.url, timeout=60.0, auth=ADMIN) as c:
            for _, path, content_type, _ in BOUNDED[:3]:  # every code path runs once first
                c.post(path, content=b"{}", headers={"content-type": content_type})
        before = _peak_rss_bytes(pid)
        statuses: list[int] = []

        def send(path: str, content_type: str) -> None:
            with httpx.Client(base_url=fresh.url, timeout=120.0, auth=ADMIN) as c:
                r = c.post(path, content=_chunks(64 * MIB), headers={"content-type": content_type})
                statuses.append(r.status_code)

        threads = [threading.Thread(target=send, args=(path, ct)) for _, path, ct, _ in BOUNDED[:3]]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        grown = _peak_rss_bytes(pid) - before
        assert grown < 24 * MIB, f"the worker's peak memory grew by {grown / MIB:.1f} MiB ({statuses})"
        assert statuses == [413, 413, 413], statuses
    finally:
        fresh.stop()


# --- Timeouts -----------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "content_type", "api"), BOUNDED, ids=BOUNDED_IDS)
def test_a_stalled_body_is_cut_off(server: Portside, method: str, path: str, content_type: str, api: str) -> None:
    # 100 bytes promised, 10 sent, then nothing: the answer comes after the body timeout.
    answer = _raw(
        server,
        method,
        path,
        {"Content-Type": content_type, "Content-Length": "100", "Authorization": BASIC},
        b"principal=",
    )
    message = _assert_shape(answer, 408, api)
    assert f"within {TIMEOUT_SECONDS} s" in message, message


def _patch_in_pieces(server: Portside, location: str, pieces: list[bytes], pause: float, stall: bool) -> Answer:
    """PATCH `pieces` as chunks `pause` seconds apart, then end the body (or stall)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        head = (
            f"PATCH {location} HTTP/1.1\r\nHost: {server.host}\r\nAuthorization: {BASIC}\r\n"
            "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        sock.sendall(head.encode())
        for piece in pieces:
            sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            time.sleep(pause)
        if not stall:
            sock.sendall(b"0\r\n\r\n")
        return _read_answer(sock)


def test_an_upload_that_stalls_is_cut_off_and_stays_resumable(admin: httpx.Client, server: Portside) -> None:
    repo = f"bodies/{oci.unique('stall')}"
    first = os.urandom(1000)
    url = oci.start_upload(admin, repo)
    r = admin.patch(url, content=first, headers={"content-type": "application/octet-stream"})
    assert r.status_code == 202, oci.error_text(r)
    url = oci.location(r)

    answer = _patch_in_pieces(server, url.raw_path.decode(), [b"s" * 500], pause=0, stall=True)
    assert f"for {TIMEOUT_SECONDS} s" in _assert_shape(answer, 408, "oci"), answer

    # Only the acknowledged chunk counts; the upload continues from there.
    status = admin.get(url)
    assert status.status_code == 204 and status.headers["range"] == "0-999", oci.error_text(status)
    rest = os.urandom(2000)
    r = admin.put(
        oci.with_params(url, digest=oci.digest(first + rest)),
        content=rest,
        headers={"content-type": "application/octet-stream", "content-range": "1000-2999"},
    )
    assert r.status_code == 201, oci.error_text(r)
    assert admin.get(f"/v2/{repo}/blobs/{oci.digest(first + rest)}").content == first + rest


def test_an_upload_may_pause_between_pieces_for_longer_than_the_timeout_in_all(
    admin: httpx.Client, server: Portside
) -> None:
    """The upload's timeout is between two pieces, not for the whole body."""
    repo = f"bodies/{oci.unique('slow')}"
    pieces = [os.urandom(4096) for _ in range(6)]  # 6 pauses of half the timeout: 1.5x it in all
    url = oci.start_upload(admin, repo)
    answer = _patch_in_pieces(server, url.raw_path.decode(), pieces, pause=TIMEOUT_SECONDS / 2, stall=False)
    assert answer.status == 202, answer
    assert answer.headers["range"] == f"0-{6 * 4096 - 1}", answer


# --- Blob uploads and manifests keep their own rules --------------------------------------


def test_a_large_blob_upload_still_streams_whole(admin: httpx.Client) -> None:
    repo = f"bodies/{oci.unique('large')}"
    data = os.urandom(48 * MIB)
    digest = oci.digest(data)

    def pieces() -> Iterator[bytes]:
        for i in range(0, len(data), MIB):
            yield data[i : i + MIB]

    # Streamed without a length, monolithically (POST ?digest=) and as one chunk (PATCH).
    r = admin.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=pieces())
    assert r.status_code == 201, oci.error_text(r)
    url = oci.start_upload(admin, repo + "-chunked")
    r = admin.patch(url, content=pieces(), headers={"content-type": "application/octet-stream"})
    assert r.status_code == 202, oci.error_text(r)
    r = admin.put(oci.with_params(oci.location(r), digest=digest), headers={"content-length": "0"})
    assert r.status_code == 201, oci.error_text(r)
    for name in (repo, repo + "-chunked"):
        got = admin.get(f"/v2/{name}/blobs/{digest}")
        assert got.status_code == 200 and oci.digest(got.content) == digest, oci.error_text(got)


def test_a_declared_oversized_manifest_is_refused_unread(server: Portside) -> None:
    answer = _raw(
        server,
        "PUT",
        f"/v2/bodies/{oci.unique('m')}/manifests/latest",
        {"Content-Type": oci.OCI_MANIFEST, "Content-Length": str(256 * MIB), "Authorization": BASIC},
        b"{",
    )
    assert "4194304" in _assert_shape(answer, 413, "oci")


def test_an_answer_given_before_the_body_is_read_reaches_the_client(server: Portside) -> None:
    """An anonymous push is refused before its bytes are read; the client, still sending
    its 8 MiB, gets the 401 rather than a connection cut under it."""
    repo = f"bodies/{oci.unique('anon')}"
    with httpx.Client(base_url=server.url, timeout=60.0) as c:
        r = c.post(
            f"/v2/{repo}/blobs/uploads/",
            params={"digest": oci.digest(b"x" * 8 * MIB)},
            content=b"x" * 8 * MIB,
        )
    oci.assert_error(r, 401, "UNAUTHORIZED")
