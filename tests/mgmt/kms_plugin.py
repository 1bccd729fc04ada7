"""A signer plug-in as a site ships one (README "Signing images"): its factory, named by a
`portside.signers` entry point, gets the configured options and returns a signing key.
This one stands in for a KMS SDK with a key file it alone reads, and signs the SHA-256
digest of the payload, as KMS APIs do."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

ENTRY_POINT = "testkms = tests.mgmt.kms_plugin:make"


class FileKms:
    name = "testkms"

    def __init__(self, key_file: Path):
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        self._key = key

    async def public_key_pem(self) -> str:
        return (
            self._key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    async def sign(self, payload: bytes) -> bytes:
        return self._key.sign(hashlib.sha256(payload).digest(), ec.ECDSA(Prehashed(hashes.SHA256())))


def make(options: Mapping[str, str]) -> FileKms:
    return FileKms(Path(options["key_file"]))


def not_a_key(options: Mapping[str, str]) -> object:
    return object()


class Unreachable:
    """A KMS that hangs on signing and refuses to give its key."""

    name = "unreachable"

    async def public_key_pem(self) -> str:
        raise RuntimeError("no region configured")

    async def sign(self, payload: bytes) -> bytes:
        await asyncio.sleep(30)
        return b""


def unreachable(options: Mapping[str, str]) -> Unreachable:
    return Unreachable()


def install(directory: Path, *entry_points: str) -> Path:
    """A distribution `portside-test-kms` in `directory` with these `portside.signers`
    entry points, found by importlib.metadata once `directory` is on sys.path."""
    info = directory / "portside_test_kms-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: portside-test-kms\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[portside.signers]\n" + "\n".join(entry_points or (ENTRY_POINT,)) + "\n")
    return directory
