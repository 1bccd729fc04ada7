"""Debian's notary-signer and notary-server beside a Portside, for the Content Trust tests.

Certificates are made here with `cryptography`: a CA, notary-server's (HTTPS for docker,
and its client certificate towards the signer) and notary-signer's (gRPC, mutual TLS).
Both keep everything in memory; notary-server takes Portside's tokens (`auth: token`,
realm Portside's /service/token, root bundle Portside's token certificate).
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.e2e.clients import require
from tests.servers import free_port

NOTARY_SERVICE = "notary-server"


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def make_certs(directory: Path) -> None:
    """ca.crt, notary-server.{crt,key} and notary-signer.{crt,key} in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Portside test Notary CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for name, usages in (
        ("notary-server", [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
        ("notary-signer", [ExtendedKeyUsageOID.SERVER_AUTH]),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost"), x509.DNSName(name)]
                ),
                critical=False,
            )
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        (directory / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(directory / f"{name}.key", key)


@dataclass
class NotaryStack:
    """notary-signer and notary-server on 127.0.0.1, taking tokens from `realm`."""

    root: Path
    realm: str
    token_bundle: Path
    port: int = field(default_factory=free_port)
    signer_port: int = field(default_factory=free_port)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca(self) -> Path:
        return self.root / "ca.crt"

    def start(self) -> NotaryStack:
        make_certs(self.root)
        signer = {
            "server": {
                "grpc_addr": f"127.0.0.1:{self.signer_port}",
                "tls_cert_file": str(self.root / "notary-signer.crt"),
                "tls_key_file": str(self.root / "notary-signer.key"),
                "client_ca_file": str(self.ca),
            },
            "logging": {"level": "info"},
            "storage": {"backend": "memory"},
        }
        server = {
            "server": {
                "http_addr": f"127.0.0.1:{self.port}",
                "tls_cert_file": str(self.root / "notary-server.crt"),
                "tls_key_file": str(self.root / "notary-server.key"),
            },
            "trust_service": {
                "type": "remote",
                "hostname": "127.0.0.1",
                "port": str(self.signer_port),
                "key_algorithm": "ecdsa",
                "tls_ca_file": str(self.ca),
                "tls_client_cert": str(self.root / "notary-server.crt"),
                "tls_client_key": str(self.root / "notary-server.key"),
            },
            "logging": {"level": "info"},
            "storage": {"backend": "memory"},
            "auth": {
                "type": "token",
                "options": {
                    "realm": self.realm,
                    "service": NOTARY_SERVICE,
                    "issuer": "portside",
                    "rootcertbundle": str(self.token_bundle),
                },
            },
        }
        (self.root / "signer.json").write_text(json.dumps(signer, indent=2))
        (self.root / "server.json").write_text(json.dumps(server, indent=2))
        self._spawn(require("notary-signer"), "signer")
        self._wait_port(self.signer_port, "notary-signer")
        self._spawn(require("notary-server"), "server")
        self._wait_health()
        return self

    def _spawn(self, binary: str, name: str) -> None:
        with open(self.root / f"{name}.log", "ab") as log:
            self.procs.append(
                subprocess.Popen(
                    [binary, "-config", str(self.root / f"{name}.json")],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )

    def _wait_port(self, port: int, what: str) -> None:
        import socket

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"{what} did not listen on {port}: {self.log()}")

    def _wait_health(self) -> None:
        context = ssl.create_default_context(cafile=str(self.ca))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/_notary_server/health", context=context, timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"notary-server did not become healthy: {self.log()}")

    def log(self) -> str:
        return "\n".join(
            f"--- {name} ---\n" + (self.root / f"{name}.log").read_text(errors="replace")[-4000:]
            for name in ("signer", "server")
            if (self.root / f"{name}.log").exists()
        )

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=15)
