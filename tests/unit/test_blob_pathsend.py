"""How a whole-blob GET leaves the filesystem store: in slices Portside reads itself while the
process has a slot for it (`blob_slice_sends`), handed to the server by path (ASGI pathsend)
otherwise, so that no byte passes through Python."""

import asyncio
import hashlib
import os

import httpx

from portside import wiring
from portside.config import load_settings

PATHSEND = {"http.response.pathsend": {}}


def _scope(method, path, extensions):
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "extensions": extensions,
    }


async def _receive():
    await asyncio.Event().wait()  # the client stays connected


async def _call(app, method, path, extensions, on_body=None):
    sent = []

    async def send(message):
        sent.append(message)
        if on_body is not None and message["type"] == "http.response.body":
            await on_body()

    await app(_scope(method, path, extensions), _receive, send)
    return sent


async def _app_with_blob(tmp_path, size=3 * 1024 * 1024, **settings):
    settings = load_settings(data_dir=tmp_path, log_requests=False, open_registry=True, **settings)
    await wiring.upgrade_database(settings)
    app = wiring.build(settings)
    data = os.urandom(size)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as client:
        pushed = await client.post(f"/v2/big/blob/blobs/uploads/?digest={digest}", content=data)
        assert pushed.status_code == 201
    return app, data, f"/v2/big/blob/blobs/{digest}", digest


def _check_start(sent, data, digest):
    start = sent[0]
    assert start["type"] == "http.response.start" and start["status"] == 200
    headers = dict(start["headers"])
    assert headers[b"content-length"] == str(len(data)).encode()
    assert headers[b"docker-content-digest"] == digest.encode()


def _body(sent):
    assert all(m["type"] == "http.response.body" for m in sent[1:])
    return b"".join(m["body"] for m in sent[1:])


async def test_with_no_slices_a_blob_get_uses_pathsend(tmp_path):
    app, data, path, digest = await _app_with_blob(tmp_path, blob_slice_sends=0)
    sent = await _call(app, "GET", path, PATHSEND)
    _check_start(sent, data, digest)
    assert [m["type"] for m in sent[1:]] == ["http.response.pathsend"]
    assert open(sent[1]["path"], "rb").read() == data

    # Without the extension the same handler streams the file instead.
    sent = await _call(app, "GET", path, {})
    assert _body(sent) == data


async def test_a_lone_blob_get_goes_in_slices(tmp_path):
    app, data, path, digest = await _app_with_blob(tmp_path, size=9 * 1024 * 1024 + 7, blob_slice_sends=1)
    sent = await _call(app, "GET", path, PATHSEND)
    _check_start(sent, data, digest)
    assert _body(sent) == data
    assert len(sent) - 1 == 3  # 4 MiB slices


async def test_blob_gets_beyond_the_slots_go_by_pathsend(tmp_path):
    app, data, path, digest = await _app_with_blob(tmp_path, size=9 * 1024 * 1024, blob_slice_sends=1)
    sending, release = asyncio.Event(), asyncio.Event()

    async def hold_the_first_slice():
        sending.set()
        await release.wait()

    first = asyncio.ensure_future(_call(app, "GET", path, PATHSEND, on_body=hold_the_first_slice))
    await sending.wait()
    # The one slot is taken: a second GET meanwhile goes by pathsend.
    second = await _call(app, "GET", path, PATHSEND)
    _check_start(second, data, digest)
    assert [m["type"] for m in second[1:]] == ["http.response.pathsend"]
    release.set()
    assert _body(await first) == data
    # The slot is back once the first transfer is done.
    third = await _call(app, "GET", path, PATHSEND)
    assert _body(third) == data


async def test_the_slot_comes_back_when_the_client_leaves(tmp_path):
    app, data, path, _ = await _app_with_blob(tmp_path, size=9 * 1024 * 1024, blob_slice_sends=1)

    async def leave():
        raise OSError("the client went away")  # what a server's send raises for a closed connection

    try:
        await _call(app, "GET", path, PATHSEND, on_body=leave)
    except OSError:
        pass
    sent = await _call(app, "GET", path, PATHSEND)
    assert _body(sent) == data
