"""Test images made on this machine: nothing comes from Docker Hub or the internet.

* `busybox_rootfs_tar` writes a root filesystem tarball holding the static busybox from
  Debian's `busybox-static` package plus the usual applet symlinks; `docker import` and
  `podman import` turn it into a runnable image.
* `OciLayout` writes an OCI image layout directory by hand (blobs, index.json), so that
  skopeo can copy single images and multi-platform indexes from it (`oci:DIR:TAG`).

Everything is deterministic (fixed mtimes, gzip without a timestamp): the digests a test
computes here are the digests the registry must answer with.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ALL_MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST)

BUSYBOX_APPLETS = ("sh", "echo", "cat", "ls", "true", "false", "env", "sleep", "uname", "id", "wc")
MTIME = 1_700_000_000


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def busybox_binary() -> Path:
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        path = Path(candidate)
        if path.is_file():
            return path.resolve()
    pytest.fail(
        "/bin/busybox is missing: install Debian's busybox-static (scripts/install-test-deps)",
        pytrace=False,
    )


def _tar_bytes(entries: list[tarfile.TarInfo], payloads: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info in entries:
            data = payloads.get(info.name)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _dir(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, MTIME
    return info


def _file(name: str, size: int, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, mode, MTIME
    return info


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, target, 0o777, MTIME
    return info


def busybox_rootfs_bytes(extra_files: dict[str, bytes] | None = None) -> bytes:
    """An uncompressed rootfs tar: /bin/busybox, /bin/sh and friends, /etc/hostname, /tmp."""
    busybox = busybox_binary().read_bytes()
    payloads: dict[str, bytes] = {"bin/busybox": busybox}
    entries = [_dir("bin"), _dir("etc"), _dir("tmp"), _file("bin/busybox", len(busybox), 0o755)]
    entries += [_symlink(f"bin/{applet}", "busybox") for applet in BUSYBOX_APPLETS]
    for name, data in sorted((extra_files or {}).items()):
        entries.append(_file(name, len(data)))
        payloads[name] = data
    return _tar_bytes(entries, payloads)


def busybox_rootfs_tar(path: Path, extra_files: dict[str, bytes] | None = None) -> Path:
    path.write_bytes(busybox_rootfs_bytes(extra_files))
    return path


def files_tar_bytes(files: dict[str, bytes]) -> bytes:
    """A small uncompressed layer tar holding the given files (parent directories added)."""
    dirs = sorted({str(Path(name).parent) for name in files if str(Path(name).parent) != "."})
    entries = [_dir(d) for d in dirs] + [_file(n, len(d)) for n, d in sorted(files.items())]
    return _tar_bytes(entries, dict(files))


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict[str, str] | None = None
    annotations: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform:
            out["platform"] = self.platform
        if self.annotations:
            out["annotations"] = self.annotations
        return out


@dataclass
class Image:
    """One single-platform image written to a layout: its manifest and what it references."""

    manifest: Descriptor
    manifest_bytes: bytes
    config: Descriptor
    layers: list[Descriptor]


class OciLayout:
    """An OCI image layout directory, written by hand (image-spec `image-layout.md`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs" / "sha256"
        self.blobs.mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        self.refs: list[Descriptor] = []

    def add_blob(self, data: bytes, media_type: str) -> Descriptor:
        digest = sha256_digest(data)
        (self.blobs / digest.split(":", 1)[1]).write_bytes(data)
        return Descriptor(media_type, digest, len(data))

    def blob(self, digest: str) -> bytes:
        return (self.blobs / digest.split(":", 1)[1]).read_bytes()

    def add_image(
        self,
        layers_tar: list[bytes],
        *,
        os_name: str = "linux",
        architecture: str = "amd64",
        variant: str | None = None,
        cmd: list[str] | None = None,
        labels: dict[str, str] | None = None,
    ) -> Image:
        """Write a single-platform OCI image (gzip layers, OCI config) and return it."""
        layer_descs = [self.add_blob(gzip_bytes(tar), OCI_LAYER_GZIP) for tar in layers_tar]
        config: dict[str, Any] = {
            "created": "2024-01-01T00:00:00Z",
            "architecture": architecture,
            "os": os_name,
            "config": {"Cmd": cmd or ["/bin/sh"], "Labels": labels or {}},
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar) for tar in layers_tar]},
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "portside e2e"}],
        }
        if variant:
            config["variant"] = variant
        config_desc = self.add_blob(canonical_json(config), OCI_CONFIG)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config_desc.to_json(),
            "layers": [d.to_json() for d in layer_descs],
        }
        manifest_bytes = canonical_json(manifest)
        platform = {"architecture": architecture, "os": os_name}
        if variant:
            platform["variant"] = variant
        desc = self.add_blob(manifest_bytes, OCI_MANIFEST)
        desc = Descriptor(desc.media_type, desc.digest, desc.size, platform=platform)
        return Image(desc, manifest_bytes, config_desc, layer_descs)

    def add_index(self, images: list[Image], annotations: dict[str, str] | None = None) -> tuple[Descriptor, bytes]:
        index: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [img.manifest.to_json() for img in images],
        }
        if annotations:
            index["annotations"] = annotations
        data = canonical_json(index)
        return self.add_blob(data, OCI_INDEX), data

    def tag(self, desc: Descriptor, ref: str) -> None:
        """Name `desc` in index.json so that `oci:DIR:ref` finds it."""
        self.refs = [d for d in self.refs if (d.annotations or {}).get("org.opencontainers.image.ref.name") != ref]
        self.refs.append(
            Descriptor(
                desc.media_type, desc.digest, desc.size, desc.platform, {"org.opencontainers.image.ref.name": ref}
            )
        )
        index = {"schemaVersion": 2, "manifests": [d.to_json() for d in self.refs]}
        (self.root / "index.json").write_text(json.dumps(index, indent=2))

    @classmethod
    def read_index(cls, root: Path) -> dict[str, Any]:
        return json.loads((root / "index.json").read_text())

    def copy_to(self, dest: Path) -> None:
        shutil.copytree(self.root, dest)


def busybox_layout(root: Path, tag: str = "v1", marker: str = "portside-e2e") -> tuple[OciLayout, Image]:
    """A layout holding one runnable linux/amd64 busybox image tagged `tag`."""
    layout = OciLayout(root)
    rootfs = busybox_rootfs_bytes({"etc/marker": marker.encode() + b"\n"})
    image = layout.add_image([rootfs], cmd=["/bin/sh"], labels={"org.example.marker": marker})
    layout.tag(image.manifest, tag)
    return layout, image


def two_platform_layout(
    root: Path, tag: str = "multi", name: str = "portside-e2e", runnable_amd64: bool = False
) -> tuple[OciLayout, Descriptor, bytes, list[Image]]:
    """A layout whose `tag` is an OCI index of a linux/amd64 and a linux/arm64/v8 image.

    Each image has two small layers: a shared one and a platform-specific one; with
    `runnable_amd64` the amd64 image also gets the busybox rootfs as its first layer.
    """
    layout = OciLayout(root)
    shared = files_tar_bytes({"etc/shared.txt": f"{name} shared layer\n".encode()})
    images = []
    for arch, variant in (("amd64", None), ("arm64", "v8")):
        platform = f"linux/{arch}" + (f"/{variant}" if variant else "")
        own = files_tar_bytes({"etc/platform.txt": f"{name} {platform}\n".encode()})
        layers = [shared, own]
        if runnable_amd64 and arch == "amd64":
            layers.insert(0, busybox_rootfs_bytes())
        images.append(
            layout.add_image(layers, architecture=arch, variant=variant, labels={"org.example.platform": platform})
        )
    index_desc, index_bytes = layout.add_index(images, annotations={"org.example.name": name})
    layout.tag(index_desc, tag)
    return layout, index_desc, index_bytes, images
