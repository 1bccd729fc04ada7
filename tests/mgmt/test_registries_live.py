"""Registries' ping and health against real registries on loopback: CNCF Distribution (Debian's
`docker-registry`) open, behind htpasswd Basic auth, and over TLS with a certificate of its
own (`insecure` and `ca_certificate`); another Portside as type harbor and as a plain
docker-registry (its Bearer token service); a port nothing listens on; wrong credentials.
Then the background check of a running server, which records health without anyone asking,
and the CLI that scripts it all.

Docker Hub is not reached (no network here): its adapter's URL, token service and `library/`
rules are checked offline, in tests/remote/test_adapters.py."""

from __future__ import annotations

import datetime
import ipaddress
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.mgmt.conftest import Harbor
from tests.servers import ADMIN_PASSWORD, Distribution, Portside, free_port

USER, PASSWORD = "puller", "Distribution-Pass-42"
WRONG = "Not-The-Password-e81c"


@pytest.fixture(scope="module")
def open_distribution(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Distribution]:
    server = Distribution(data_dir=tmp_path_factory.mktemp("open-distribution") / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def basic_distribution(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Distribution]:
    root = tmp_path_factory.mktemp("basic-distribution")
    htpasswd = root / "htpasswd"
    made = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], check=True, capture_output=True, text=True)
    htpasswd.write_text(made.stdout)
    server = Distribution(data_dir=root / "data", htpasswd=htpasswd)
    server.start()
    yield server
    server.stop()


@dataclass
class TlsDistribution(Distribution):
    """Distribution serving HTTPS with a self-signed certificate for 127.0.0.1."""

    certificate: Path | None = None
    key: Path | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}"

    def command(self) -> list[str]:
        command = super().command()
        config = Path(command[-1])
        config.write_text(config.read_text() + f"  tls:\n    certificate: {self.certificate}\n    key: {self.key}\n")
        return command

    def start(self) -> TlsDistribution:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir.parent / f"tls-distribution-{self.port}.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/v2/", verify=False, timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError(self.log())


def _self_signed(root: Path) -> tuple[Path, Path, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    (root / "cert.pem").write_text(pem)
    (root / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return root / "cert.pem", root / "key.pem", pem


@pytest.fixture(scope="module")
def tls_distribution(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TlsDistribution, str]]:
    root = tmp_path_factory.mktemp("tls-distribution")
    certificate, key, pem = _self_signed(root)
    server = TlsDistribution(data_dir=root / "data", certificate=certificate, key=key)
    server.start()
    yield server, pem
    server.stop()


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    """Another Portside with access control: Bearer challenges and its token service."""
    server = Portside(data_dir=tmp_path_factory.mktemp("peer-portside") / "data", open_registry=False)
    server.start()
    yield server
    server.stop()


def _body(kind: str, url: str, user: str = "", password: str = "", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": kind, "url": url, **extra}
    if user:
        body.update(credential_type="basic", access_key=user, access_secret=password)
    return body


async def _ping(harbor: Harbor, body: dict[str, Any]) -> tuple[int, str]:
    r = await harbor.call("POST", "/registries/ping", json=body)
    return r.status_code, r.text


async def test_distribution_open_and_behind_basic_auth(
    harbor: Harbor, open_distribution: Distribution, basic_distribution: Distribution
) -> None:
    assert await _ping(harbor, _body("docker-registry", open_distribution.url)) == (200, "")
    assert (await _ping(harbor, _body("docker-registry", basic_distribution.url, USER, PASSWORD)))[0] == 200
    status, text = await _ping(harbor, _body("docker-registry", basic_distribution.url, USER, "wrong"))
    assert status == 400 and "refused the credentials" in text
    # Anonymous, a registry that asks for credentials answers: access is per repository.
    assert (await _ping(harbor, _body("docker-registry", basic_distribution.url)))[0] == 200
    # Distribution has no Harbor API.
    status, text = await _ping(harbor, _body("harbor", open_distribution.url))
    assert status == 400 and "no Harbor API" in text


async def test_portside_as_harbor_and_as_a_plain_registry(harbor: Harbor, peer: Portside) -> None:
    for kind in ("harbor", "docker-registry"):
        assert (await _ping(harbor, _body(kind, peer.url, "admin", ADMIN_PASSWORD)))[0] == 200, kind
        status, text = await _ping(harbor, _body(kind, peer.url, "admin", "wrong-password"))
        assert status == 400 and "refused" in text, (kind, text)
    assert (await _ping(harbor, _body("harbor", peer.url)))[0] == 200  # anonymous: challenged, answered


async def test_unreachable_is_unhealthy_with_a_clear_message(harbor: Harbor) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    status, text = await _ping(harbor, _body("docker-registry", url))
    assert status == 400 and "unreachable" in text
    made = await harbor.call("POST", "/registries", json={"name": "gone", "type": "docker-registry", "url": url})
    rid = int(made.headers["Location"].rsplit("/", 1)[1])
    assert (await _ping(harbor, {"id": rid}))[0] == 400
    shown = (await harbor.call("GET", f"/registries/{rid}")).json()
    assert shown["status"] == "unhealthy" and "unreachable" in shown["last_error"] and shown["checked_time"]


async def test_tls_verified_unless_insecure(harbor: Harbor, tls_distribution: tuple[TlsDistribution, str]) -> None:
    server, pem = tls_distribution
    status, text = await _ping(harbor, _body("docker-registry", server.url))
    assert status == 400 and "unreachable" in text and "CERTIFICATE_VERIFY_FAILED" in text
    assert (await _ping(harbor, _body("docker-registry", server.url, insecure=True)))[0] == 200
    assert (await _ping(harbor, _body("docker-registry", server.url, ca_certificate=pem)))[0] == 200


async def test_a_stored_registry_pinged_by_id_keeps_its_secret(
    harbor: Harbor, basic_distribution: Distribution
) -> None:
    body = {
        "name": "basic",
        "type": "docker-registry",
        "url": basic_distribution.url,
        "credential": {"type": "basic", "access_key": USER, "access_secret": PASSWORD},
    }
    made = await harbor.call("POST", "/registries", json=body)
    rid = int(made.headers["Location"].rsplit("/", 1)[1])
    assert (await _ping(harbor, {"id": rid, "access_secret": "*****"}))[0] == 200
    assert (await _ping(harbor, {"id": rid}))[0] == 200
    assert (await harbor.call("GET", f"/registries/{rid}")).json()["status"] == "healthy"
    assert (await _ping(harbor, {"id": rid, "access_secret": "wrong"}))[0] == 400  # tried, not kept
    assert (await harbor.call("GET", f"/registries/{rid}")).json()["status"] == "healthy"


@pytest.fixture(scope="module")
def checked_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    """A running Portside whose background check comes round every 10 s."""
    server = Portside(
        data_dir=tmp_path_factory.mktemp("health-portside") / "data",
        open_registry=False,
        env={"PORTSIDE_REGISTRY_HEALTH_SECONDS": "10"},
    )
    server.start()
    yield server
    server.stop()


def _cli(server: Portside, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        **(env or {}),
        "PORTSIDE_URL": server.url,
        "PORTSIDE_USERNAME": "admin",
        "PORTSIDE_PASSWORD": ADMIN_PASSWORD,
    }
    return subprocess.run(
        [sys.executable, "-m", "portside", "registry", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_health_is_checked_in_the_background_and_scripted_by_the_cli(
    checked_server: Portside, open_distribution: Distribution, basic_distribution: Distribution
) -> None:
    made = _cli(checked_server, "create", "dist", open_distribution.url)
    assert made.returncode == 0, made.stderr
    made = _cli(
        checked_server,
        "create",
        "locked",
        basic_distribution.url,
        "--type",
        "docker-registry",
        "--access-key",
        USER,
        env={"PORTSIDE_REGISTRY_SECRET": WRONG},  # the secret kept off the command line
    )
    assert made.returncode == 0, made.stderr
    gone = _cli(checked_server, "create", "gone", f"http://127.0.0.1:{free_port()}")
    assert gone.returncode == 0, gone.stderr

    deadline = time.monotonic() + 60
    with httpx.Client(base_url=checked_server.url, auth=("admin", ADMIN_PASSWORD)) as api:
        while True:
            shown = {r["name"]: r for r in api.get("/api/v2.0/registries").json()}
            if all(r["status"] != "unknown" for r in shown.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert shown["dist"]["status"] == "healthy"
    assert shown["locked"]["status"] == "unhealthy" and "refused the credentials" in shown["locked"]["last_error"]
    assert shown["gone"]["status"] == "unhealthy" and "unreachable" in shown["gone"]["last_error"]
    assert WRONG not in checked_server.log()

    listed = _cli(checked_server, "ls")
    assert listed.returncode == 0 and "dist" in listed.stdout and "unhealthy" in listed.stdout
    assert WRONG not in listed.stdout
    assert _cli(checked_server, "ping", "dist").returncode == 0
    refused = _cli(checked_server, "ping", "locked")
    assert refused.returncode == 1 and "refused the credentials" in refused.stderr
    assert _cli(checked_server, "rm", "gone").returncode == 0
    assert "gone" not in _cli(checked_server, "ls").stdout
    assert _cli(checked_server, "rm", "gone").returncode == 1
