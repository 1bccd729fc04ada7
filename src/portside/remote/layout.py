"""An OCI image layout directory (image-spec `image-layout.md`) as a copy endpoint, read and
written: `blobs/<algorithm>/<hex>` holds every blob and manifest, and `index.json` lists
the tagged manifests, a tag being the descriptor's `org.opencontainers.image.ref.name`.

A layout holds one repository, so the repository names the engine passes are ignored.
It has no referrers API; the `sha256-<hex>` tag stands in, as at a registry without one.
An upload writes a file beside the blobs and renames it into place only once its digest
matched, so a layout never holds a blob whose bytes are wrong, and an upload cut short
resumes from the size of that file.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from portside.oci import mediatypes as mt
from portside.oci.digest import Digest, new_hasher
from portside.remote.client import Manifest
from portside.remote.errors import RemoteError, RemoteNotFound, RemoteProtocolError

__all__ = ["LayoutEndpoint"]

_REF_NAME = "org.opencontainers.image.ref.name"
_PIECE = 1 << 20


def _parse(digest: str) -> Digest:
    try:
        return Digest.parse(digest)
    except Exception as error:  # DigestInvalid
        raise RemoteError(f"not a digest: {digest!r}") from error


class LayoutEndpoint:
    """The layout at `root`, created (empty) on first write when it does not exist."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def name(self) -> str:
        return f"oci:{self.root.resolve()}"

    # -- reading ------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        parsed = _parse(digest)
        return self.root / "blobs" / parsed.algorithm / parsed.hex

    def _index(self) -> dict[str, Any]:
        try:
            value = json.loads((self.root / "index.json").read_bytes())
        except FileNotFoundError:
            return {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}
        except ValueError as error:
            raise RemoteProtocolError(f"{self.root}/index.json is not JSON") from error
        if not isinstance(value, dict) or not isinstance(value.get("manifests", []), list):
            raise RemoteProtocolError(f"{self.root}/index.json is no OCI index")
        return value

    def _entries(self) -> list[dict[str, Any]]:
        return [e for e in self._index().get("manifests") or [] if isinstance(e, dict) and "digest" in e]

    async def resolve(self, repository: str, reference: str) -> str:
        found = await self.tag_digest(repository, reference)
        if found is None:
            raise RemoteNotFound(f"{self.name} has no {reference}")
        return found

    async def tag_digest(self, repository: str, reference: str) -> str | None:
        if ":" in reference:
            return reference if self.blob_path(reference).is_file() else None
        for entry in self._entries():
            if (entry.get("annotations") or {}).get(_REF_NAME) == reference:
                return str(entry["digest"])
        return None

    async def tags(self, repository: str) -> list[str]:
        names = [(entry.get("annotations") or {}).get(_REF_NAME) for entry in self._entries()]
        return sorted({name for name in names if isinstance(name, str)})

    async def referrers(self, repository: str, digest: str) -> list[dict[str, Any]] | None:
        return None

    async def manifest(self, repository: str, digest: str) -> Manifest:
        try:
            body = self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise RemoteNotFound(f"{self.name} has no manifest {digest}") from None
        expected = _parse(digest)
        hasher = new_hasher(expected.algorithm)
        hasher.update(body)
        if hasher.hexdigest() != expected.hex:
            raise RemoteProtocolError(f"manifest {digest} in {self.name} does not match its digest")
        try:
            declared = json.loads(body).get("mediaType")
        except (ValueError, AttributeError):
            declared = None
        media_type = declared if isinstance(declared, str) else self._listed_type(digest)
        return Manifest(digest=digest, media_type=media_type, body=body)

    def _listed_type(self, digest: str) -> str:
        for entry in self._entries():
            if entry["digest"] == digest and isinstance(entry.get("mediaType"), str):
                return str(entry["mediaType"])
        return mt.OCI_MANIFEST

    async def blob(self, repository: str, digest: str) -> AsyncIterator[bytes]:
        expected = _parse(digest)
        hasher = new_hasher(expected.algorithm)
        try:
            handle = self.blob_path(digest).open("rb")
        except FileNotFoundError:
            raise RemoteNotFound(f"{self.name} has no blob {digest}") from None
        with handle:
            held: bytes | None = None
            while piece := handle.read(_PIECE):
                hasher.update(piece)
                if held is not None:
                    yield held
                held = piece
        if hasher.hexdigest() != expected.hex:
            raise RemoteProtocolError(f"blob {digest} in {self.name} does not match its digest")
        if held is not None:
            yield held

    # -- writing ------------------------------------------------------------------------

    def _ensure(self) -> None:
        (self.root / "blobs").mkdir(parents=True, exist_ok=True)
        layout = self.root / "oci-layout"
        if not layout.exists():
            layout.write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))

    async def has_blob(self, repository: str, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    async def mount(self, repository: str, digest: str, origin: str) -> _FileUpload | None:
        # One repository: a blob the layout has is never asked for.
        return await self.upload(repository)

    async def upload(self, repository: str) -> _FileUpload:
        self._ensure()
        return _FileUpload(self, self.root / "blobs" / f".upload-{uuid.uuid4().hex}")

    async def resume(self, repository: str, handle: str) -> _FileUpload | None:
        path = Path(handle)
        if path.parent != self.root / "blobs" or not path.name.startswith(".upload-") or not path.is_file():
            return None
        upload = _FileUpload(self, path)
        await upload.status()
        return upload

    async def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        self._ensure()
        hasher = new_hasher("sha256")
        hasher.update(body)
        digest = f"sha256:{hasher.hexdigest()}"
        if ":" in reference and reference != digest:
            raise RemoteProtocolError(f"manifest {reference} does not match its bytes")
        _write_atomically(self.blob_path(digest), body)
        if ":" not in reference:
            index = self._index()
            kept = [
                entry
                for entry in index.get("manifests") or []
                if not (isinstance(entry, dict) and (entry.get("annotations") or {}).get(_REF_NAME) == reference)
            ]
            kept.append(
                {"mediaType": media_type, "digest": digest, "size": len(body), "annotations": {_REF_NAME: reference}}
            )
            index.update({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": kept})
            _write_atomically(self.root / "index.json", json.dumps(index, indent=2).encode())
        return digest


class _FileUpload:
    """A blob being written to a file of its own beside the layout's blobs."""

    def __init__(self, layout: LayoutEndpoint, path: Path) -> None:
        self._layout, self._path = layout, path
        self.offset = 0

    @property
    def handle(self) -> str:
        return str(self._path)

    async def status(self) -> int:
        self.offset = self._path.stat().st_size if self._path.exists() else 0
        return self.offset

    async def patch(self, data: bytes) -> int:
        self._append(data)
        return self.offset

    def _append(self, data: bytes) -> None:
        with self._path.open("ab") as out:
            out.write(data)
        self.offset += len(data)

    async def finish(self, digest: str, data: bytes = b"") -> None:
        self._append(data)
        expected = _parse(digest)
        hasher = new_hasher(expected.algorithm)
        with self._path.open("rb") as written:
            while piece := written.read(_PIECE):
                hasher.update(piece)
        if hasher.hexdigest() != expected.hex:
            self._path.unlink(missing_ok=True)
            raise RemoteProtocolError(f"blob {digest} written to {self._layout.name} does not match its digest")
        target = self._layout.blob_path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._path, target)

    async def cancel(self) -> None:
        self._path.unlink(missing_ok=True)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    temporary.write_bytes(data)
    os.replace(temporary, path)
