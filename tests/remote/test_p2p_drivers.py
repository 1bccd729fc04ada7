"""The P2P drivers against stand-ins on loopback. Dragonfly's is tests/remote/dragonfly_server.py,
which holds every request to Dragonfly's published manager API document: the driver's
health, preheat job and job status pass it; a request it does not describe is refused, so
the stand-in would catch a driver that strays. Kraken's only documented call is the push
notification at /registry/notify, recorded here as it arrives."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from portside.remote.p2p import FAILURE, RUNNING, SUCCESS, Connection, Image, P2PError, default_drivers
from portside.remote.p2p.dragonfly import DragonflyDriver
from portside.remote.p2p.kraken import KrakenDriver
from tests.remote.dragonfly_server import DragonflyManager, Invalid, validate
from tests.servers import free_port

TOKEN = "pat-Dragonfly-7c1e"
URL = "https://portside.example/v2/team/app/manifests/v1"


def _image(url: str = URL, cluster_ids: tuple[int, ...] = ()) -> Image:
    return Image(
        repository="team/app",
        tag="v1",
        digest="sha256:" + "a" * 64,
        media_type="application/vnd.oci.image.manifest.v1+json",
        url=url,
        headers={"Authorization": "Bearer pull-token"},
        scope="all_seed_peers",
        cluster_ids=cluster_ids,
    )


@pytest.fixture
def manager() -> Iterator[DragonflyManager]:
    with DragonflyManager(token=TOKEN, pending_polls=2, fail_when="broken") as started:
        yield started


def test_the_registry_of_drivers() -> None:
    drivers = default_drivers()
    assert list(drivers) == ["dragonfly", "kraken"]
    assert drivers["dragonfly"].info().name == "Dragonfly"


def test_the_stand_in_refuses_what_the_document_does_not_describe() -> None:
    json_header = {"content-type": "application/json"}
    good = json.dumps({"type": "preheat", "args": {"type": "image", "url": URL}}).encode()
    validate("POST", "/oapi/v1/jobs", json_header, good)
    cases = {
        "not in Dragonfly's manager API": ("POST", "/oapi/v1/preheat", good),
        "Additional properties": ("POST", "/oapi/v1/jobs", json.dumps({"type": "preheat", "bogus": 1}).encode()),
        "'type' is a required property": ("POST", "/oapi/v1/jobs", json.dumps({"args": {}}).encode()),
        "is not one of": (
            "POST",
            "/oapi/v1/jobs",
            json.dumps({"type": "preheat", "args": {"type": "x", "url": URL}}).encode(),
        ),
        "is not of type 'array'": (
            "POST",
            "/oapi/v1/jobs",
            json.dumps({"type": "preheat", "args": {"type": "image", "url": URL}, "scheduler_cluster_ids": 1}).encode(),
        ),
        "query parameter page": ("GET", "/oapi/v1/jobs", b""),
        "not JSON": ("POST", "/oapi/v1/jobs", b"type=preheat"),
    }
    for reason, (method, path, body) in cases.items():
        with pytest.raises(Invalid, match=reason):
            validate(method, path, json_header, body)
    with pytest.raises(Invalid, match="application/json"):
        validate("POST", "/oapi/v1/jobs", {"content-type": "text/plain"}, good)


async def test_dragonfly_health(manager: DragonflyManager) -> None:
    driver = DragonflyDriver()
    await driver.health(Connection(manager.url))
    manager.healthy = False
    with pytest.raises(P2PError, match="/healthy answered 500"):
        await driver.health(Connection(manager.url))
    with pytest.raises(P2PError, match="could not be reached"):
        await driver.health(Connection(f"http://127.0.0.1:{free_port()}", timeout=2))
    assert manager.rejected == []


async def test_dragonfly_preheat_job_and_its_state(manager: DragonflyManager) -> None:
    driver = DragonflyDriver()
    connection = Connection(manager.url, auth_mode="OAUTH", auth_secret=TOKEN)
    job = await driver.preheat(connection, _image(cluster_ids=(1, 3)))
    assert job.state == RUNNING and job.job_id == "1"
    assert manager.rejected == []
    sent = manager.jobs[0]
    assert sent.body == {
        "type": "preheat",
        "args": {
            "type": "image",
            "url": URL,
            "headers": {"Authorization": "Bearer pull-token"},
            "scope": "all_seed_peers",
        },
        "scheduler_cluster_ids": [1, 3],
    }
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert (await driver.status(connection, job.job_id)).state == RUNNING
    assert (await driver.status(connection, job.job_id)).state == SUCCESS

    failing = await driver.preheat(connection, _image(url=URL.replace("app", "broken")))
    await driver.status(connection, failing.job_id)
    failed = await driver.status(connection, failing.job_id)
    assert failed.state == FAILURE and "seed peer could not download" in failed.message
    assert "scheduler_cluster_ids" not in manager.jobs[1].body  # none named: Dragonfly's default
    assert manager.rejected == []


async def test_dragonfly_wrong_token(manager: DragonflyManager) -> None:
    driver = DragonflyDriver()
    with pytest.raises(P2PError, match="refused the credentials"):
        await driver.preheat(Connection(manager.url, auth_mode="OAUTH", auth_secret="wrong"), _image())
    with pytest.raises(P2PError, match="refused the credentials"):
        await driver.preheat(Connection(manager.url), _image())
    assert manager.jobs == []


def test_connection_headers_by_auth_mode() -> None:
    assert Connection("http://x").headers() == {}
    assert Connection("http://x", "BASIC", "u", "p").headers() == {"Authorization": "Basic dTpw"}
    assert Connection("http://x", "OAUTH", "", "t").headers() == {"Authorization": "Bearer t"}
    assert Connection("http://x", "CUSTOM", "X-Key", "v").headers() == {"X-Key": "v"}
    assert "secret-p" not in repr(Connection("http://x", "BASIC", "u", "secret-p"))


class _Kraken:
    def __init__(self) -> None:
        self.notifications: list[tuple[dict[str, str], Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                owner.notifications.append((dict(self.headers.items()), json.loads(self.rfile.read(length))))
                self.send_response(200 if self.path == "/registry/notify" else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


async def test_kraken_is_notified_of_the_image() -> None:
    kraken = _Kraken()
    try:
        driver = KrakenDriver()
        connection = Connection(kraken.url, auth_mode="BASIC", auth_key="u", auth_secret="p")
        await driver.health(connection)  # any answer below 500
        job = await driver.preheat(connection, _image())
        assert job.state == SUCCESS
        headers, envelope = kraken.notifications[0]
        assert headers["Authorization"] == "Basic dTpw"
        (event,) = envelope["events"]
        assert event["action"] == "push"
        assert event["target"] == {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:" + "a" * 64,
            "repository": "team/app",
            "url": URL,
            "tag": "v1",
        }
        assert (await driver.status(connection, job.job_id)).state == SUCCESS
    finally:
        kraken.server.shutdown()
        kraken.server.server_close()
    with pytest.raises(P2PError):
        await KrakenDriver().health(Connection(kraken.url, timeout=2))
