"""FileRange: a file or one byte range of it, as ASGI messages, in bounded slices."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from starlette.responses import Response

from portside.http import filerange
from portside.http.filerange import SLICE_BYTES, FileRange

Message = dict[str, Any]


def _scope(method: str = "GET", pathsend: bool = True) -> dict[str, Any]:
    extensions: dict[str, Any] = {"http.response.pathsend": {}} if pathsend else {}
    return {"type": "http", "method": method, "extensions": extensions, "headers": []}


async def _never_disconnects() -> Message:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def _run(response: FileRange, scope: dict[str, Any], receive: Any = _never_disconnects) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await response(scope, receive, send)
    return sent


def _gone() -> Response:
    return Response(status_code=404, content=b"gone")


def _body(sent: list[Message]) -> bytes:
    assert all(m["type"] == "http.response.body" for m in sent[1:])
    assert [m["more_body"] for m in sent[1:]] == [True] * (len(sent) - 2) + [False]
    return b"".join(m["body"] for m in sent[1:])


@pytest.fixture
def data(tmp_path: Path) -> tuple[str, bytes]:
    content = os.urandom(2 * SLICE_BYTES + 12345)
    path = tmp_path / "blob"
    path.write_bytes(content)
    return str(path), content


def _range(path: str, size: int, start: int, end: int, status: int = 206) -> FileRange:
    headers = {"content-length": str(end - start), "content-range": f"bytes {start}-{end - 1}/{size}"}
    return FileRange(path, size, start, end, status, headers, _gone)


async def test_a_range_is_read_in_bounded_slices(data: tuple[str, bytes]) -> None:
    path, content = data
    start, end = 17, len(content) - 5
    sent = await _run(_range(path, len(content), start, end), _scope())
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 206
    headers = dict(sent[0]["headers"])
    assert headers[b"content-range"] == f"bytes {start}-{end - 1}/{len(content)}".encode()
    assert _body(sent) == content[start:end]
    assert max(len(m["body"]) for m in sent[1:]) <= SLICE_BYTES
    assert len(sent) - 1 == -(-(end - start) // SLICE_BYTES)


async def test_a_short_range_is_one_message(data: tuple[str, bytes]) -> None:
    path, content = data
    sent = await _run(_range(path, len(content), SLICE_BYTES - 1, SLICE_BYTES + 1), _scope())
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[1]["body"] == content[SLICE_BYTES - 1 : SLICE_BYTES + 1] and not sent[1]["more_body"]


async def test_the_whole_file_goes_by_pathsend_when_the_server_offers_it(data: tuple[str, bytes]) -> None:
    path, content = data
    whole = FileRange(path, len(content), 0, len(content), 200, {"content-length": str(len(content))}, _gone)
    sent = await _run(whole, _scope())
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.pathsend"]
    assert sent[1]["path"] == path
    # A range that happens to be all of it too (206, `bytes=0-`).
    sent = await _run(_range(path, len(content), 0, len(content)), _scope())
    assert sent[0]["status"] == 206 and sent[1]["type"] == "http.response.pathsend"
    # Without the extension, slices.
    sent = await _run(whole, _scope(pathsend=False))
    assert _body(sent) == content


async def test_head_sends_no_body(data: tuple[str, bytes]) -> None:
    path, content = data
    sent = await _run(_range(path, len(content), 10, 20), _scope("HEAD"))
    assert sent[0]["status"] == 206
    assert dict(sent[0]["headers"])[b"content-length"] == b"10"
    assert sent[1:] == [{"type": "http.response.body", "body": b"", "more_body": False}]


async def test_a_file_gone_before_it_was_opened_gets_the_callers_answer(tmp_path: Path) -> None:
    sent = await _run(_range(str(tmp_path / "absent"), 100, 10, 20), _scope())
    assert sent[0]["status"] == 404
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b"gone"


async def test_reading_stops_when_the_client_leaves(data: tuple[str, bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    """Some servers' `send` raises nothing once the connection is gone; the disconnect
    that `receive` reports must end the transfer instead of reading the file to its end."""
    path, content = data
    monkeypatch.setattr(filerange, "SLICE_BYTES", 4096)
    first_body = asyncio.Event()
    reads: list[int] = []
    real_preadv = os.preadv

    def counting_preadv(fd: int, buffers: list[memoryview], offset: int, flags: int = 0) -> int:
        reads.append(offset)
        return real_preadv(fd, buffers, offset, flags)

    monkeypatch.setattr(filerange.os, "preadv", counting_preadv)

    async def receive() -> Message:
        await first_body.wait()
        return {"type": "http.disconnect"}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body":
            first_body.set()
            await asyncio.sleep(0.001)  # a slow client: the disconnect arrives meanwhile

    await _range(path, len(content), 0, len(content) - 1)(_scope(), receive, send)
    assert 1 <= len(reads) < 10, f"read {len(reads)} slices of {(len(content) - 1) // 4096 + 1}"
    assert sent[-1]["more_body"] is True  # cut short, never finished


@pytest.mark.parametrize("slice_bytes", [SLICE_BYTES, 16], ids=["one-slice", "many-slices"])
async def test_a_file_shorter_than_promised_fails_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slice_bytes: int
) -> None:
    monkeypatch.setattr(filerange, "SLICE_BYTES", slice_bytes)
    path = tmp_path / "short"
    path.write_bytes(b"x" * 100)
    with pytest.raises(RuntimeError, match="ended at byte 100"):
        await _run(_range(str(path), 200, 50, 200), _scope())


@pytest.mark.parametrize("cached", ["none", "first-half", "all"])
async def test_slices_are_whole_whatever_the_page_cache_holds(tmp_path: Path, cached: str) -> None:
    """A slice is read on the event loop's thread only as far as the page cache holds it;
    the rest of it, or all of it, is read on a worker thread."""
    content = os.urandom(2 * SLICE_BYTES + 4097)
    path = tmp_path / "blob"
    path.write_bytes(content)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # clean pages, which the kernel may drop
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        if cached == "first-half":
            os.pread(fd, len(content) // 2, 0)
        elif cached == "all":
            os.pread(fd, len(content), 0)
    finally:
        os.close(fd)
    sent = await _run(_range(str(path), len(content), 1, len(content)), _scope())
    assert _body(sent) == content[1:]
    assert [len(m["body"]) for m in sent[1:]] == [SLICE_BYTES, SLICE_BYTES, 4096]
