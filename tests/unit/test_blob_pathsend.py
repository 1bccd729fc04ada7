"""A whole-blob GET hands the file to the server (ASGI pathsend): no byte passes through Python."""

import hashlib
import os

import httpx

from portside import wiring
from portside.config import load_settings


async def _call(app, method, path, extensions):
    scope = {
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
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def test_blob_get_uses_pathsend(tmp_path):
    settings = load_settings(data_dir=tmp_path, log_requests=False, open_registry=True)
    await wiring.upgrade_database(settings)
    app = wiring.build(settings)
    data = os.urandom(3 * 1024 * 1024)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as client:
        pushed = await client.post(f"/v2/big/blob/blobs/uploads/?digest={digest}", content=data)
        assert pushed.status_code == 201

    sent = await _call(app, "GET", f"/v2/big/blob/blobs/{digest}", {"http.response.pathsend": {}})
    start, *rest = sent
    assert start["type"] == "http.response.start" and start["status"] == 200
    headers = dict(start["headers"])
    assert headers[b"content-length"] == str(len(data)).encode()
    assert headers[b"docker-content-digest"] == digest.encode()
    assert [m["type"] for m in rest] == ["http.response.pathsend"]
    assert open(rest[0]["path"], "rb").read() == data

    # Without the extension the same handler streams the file instead.
    sent = await _call(app, "GET", f"/v2/big/blob/blobs/{digest}", {})
    assert b"".join(m.get("body", b"") for m in sent[1:]) == data
