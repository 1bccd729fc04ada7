"""The signed fixtures in `../shared/fixtures`, read as they are: OCI layouts by digest,
and containers/image's `sigstore-json` signature files (whose git symlinks arrive as
files holding their target's path)."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portside.trust.cosign import SignatureLayer
from portside.trust.keys import PublicKey, load_public_key

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
if not SHARED.is_dir():
    SHARED = Path("/work/shared")

FIXTURES = SHARED / "fixtures"
CONTAINERS_IMAGE = FIXTURES / "cosign-containers-image"
SIGNED = FIXTURES / "signed-images"
PUBLIC_GOOD_ROOT = SIGNED / "sigstore-public-good" / "trusted_root.json"


def read_linked(path: Path) -> bytes:
    """A file, or the file a checked-out-as-text git symlink names (relative to it)."""
    data = path.read_bytes()
    if data.startswith(b"../") and b"\n" not in data and len(data) < 200:
        target = (path.parent / data.decode()).resolve()
        if target.is_file():
            return read_linked(target)
    return data


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def key(path: Path) -> PublicKey:
    return load_public_key(path.read_bytes())


@dataclass(frozen=True)
class SigstoreJson:
    """A containers/image `sigstore-json` signature: the layer it would be, and its payload."""

    layer: SignatureLayer
    payload: bytes

    @classmethod
    def read(cls, path: Path) -> SigstoreJson:
        data = read_linked(path)
        prefix = b"\x00sigstore-json\n"
        assert data.startswith(prefix), path
        document = json.loads(data[len(prefix) :])
        payload = base64.b64decode(document["payload"])
        layer = SignatureLayer(
            digest=digest_of(payload), media_type=document["mimeType"], annotations=document["annotations"]
        )
        return cls(layer, payload)


class Layout:
    """An OCI image layout folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def blob(self, digest: str) -> bytes | None:
        path = self.root / "blobs" / digest.replace(":", "/", 1)
        return path.read_bytes() if path.is_file() else None

    def json(self, digest: str) -> Any:
        data = self.blob(digest)
        assert data is not None, digest
        return json.loads(data)

    def index(self) -> Any:
        return json.loads((self.root / "index.json").read_bytes())

    def tagged(self, name: str) -> str:
        for entry in self.index()["manifests"]:
            if (entry.get("annotations") or {}).get("org.opencontainers.image.ref.name") == name:
                return str(entry["digest"])
        raise KeyError(name)
