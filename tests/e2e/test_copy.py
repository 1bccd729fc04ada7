"""The copy engine (portside.remote.copy) and `portside copy` / `portside sync` between real
registries over loopback HTTP, each with auth: Portside (token auth, as `admin`) and the CNCF
Distribution registry (Debian's `docker-registry`, htpasswd Basic auth), in the three
directions replication uses. Loopback proxies count what is sent, cut an upload mid-blob
and corrupt what a source serves."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import pty
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from portside.remote.client import RemoteRegistry
from portside.remote.copy import Copier, CopyOptions, CopyReport
from portside.remote.endpoints import RegistryEndpoint
from portside.remote.errors import RemoteProtocolError, RemoteUnreachable
from portside.remote.journal import FileJournal
from portside.remote.transfer import blob_exists, list_tags, manifest_digest
from tests.e2e.clients import Podman, require, run, skopeo
from tests.e2e.images import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    OciLayout,
    busybox_layout,
    canonical_json,
    sha256_digest,
    two_platform_layout,
)
from tests.e2e.loopback_proxy import proxy
from tests.servers import ADMIN_PASSWORD, Distribution, Portside
from tests.trust.fixtures import SIGNED

pytestmark = pytest.mark.e2e

HELLO = SIGNED / "cosign-singularity-hello-world"
HELLO_DIGEST = "sha256:432f982638b3aefab73cc58ab28f5c16e96fdb504e8c134fc58dff4bae8bf338"
DIST_USER, DIST_PASSWORD = "copier", "Distribution-Pass-1"


@dataclass
class HtpasswdDistribution(Distribution):
    """Distribution behind htpasswd Basic auth."""

    name: ClassVar[str] = "distribution"

    def command(self) -> list[str]:
        argv = super().command()
        htpasswd = self.data_dir.parent / f"htpasswd-{self.port}"
        line = run([require("htpasswd"), "-Bbn", DIST_USER, DIST_PASSWORD]).stdout.strip()
        htpasswd.write_text(line + "\n")
        config = Path(argv[-1])
        config.write_text(config.read_text() + f"auth:\n  htpasswd:\n    realm: portside-tests\n    path: {htpasswd}\n")
        return argv


@dataclass
class Peer:
    """A registry under test with its credentials and the namespace tests write under."""

    kind: str
    host: str
    port: int
    user: str
    password: str
    namespace: str

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def creds(self) -> str:
        return f"{self.user}:{self.password}"

    @property
    def authorization(self) -> str:
        return "Basic " + base64.b64encode(self.creds.encode()).decode()

    def client(self, url: str | None = None) -> RemoteRegistry:
        return RemoteRegistry(url or self.url, self.authorization)

    def repo(self, name: str) -> str:
        return f"{self.namespace}/{name}"


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Peer]]:
    root = tmp_path_factory.mktemp("copy")
    central = Portside(data_dir=root / "central" / "data", open_registry=False).start()
    edge = Portside(data_dir=root / "edge" / "data", open_registry=False).start()
    dist = HtpasswdDistribution(data_dir=root / "dist" / "data").start()
    yield {
        "portside": Peer("portside", central.host, central.port, "admin", ADMIN_PASSWORD, "library"),
        "edge": Peer("portside", edge.host, edge.port, "admin", ADMIN_PASSWORD, "library"),
        "distribution": Peer("distribution", dist.host, dist.port, DIST_USER, DIST_PASSWORD, "mirror"),
    }
    for server in (central, edge, dist):
        server.stop()


DIRECTIONS = [("portside", "distribution"), ("distribution", "portside"), ("portside", "edge")]


def _pair(peers: dict[str, Peer], direction: tuple[str, str]) -> tuple[Peer, Peer]:
    return peers[direction[0]], peers[direction[1]]


# -- putting fixtures into a source registry (by the client's own pushes, not the engine) --


async def _push_from_layout(registry: RemoteRegistry, repo: str, read: Any, digest: str, media_type: str) -> None:
    body = read(digest)
    manifest = json.loads(body)
    if media_type in (OCI_INDEX, "application/vnd.docker.distribution.manifest.list.v2+json"):
        for child in manifest["manifests"]:
            await _push_from_layout(registry, repo, read, child["digest"], child["mediaType"])
    else:
        for blob in [manifest["config"], *manifest["layers"]]:
            await registry.push_blob(repo, read(blob["digest"]))
    await registry.put_manifest(repo, digest, body, media_type)


async def push_layout(peer: Peer, repo: str, root: Path, refs: dict[str, list[str]] | None = None) -> None:
    """Push every manifest of the layout's index.json, by digest, under `refs[digest]` tags
    and under its ref name (cosign's `_cosign:` prefix dropped)."""
    index = json.loads((root / "index.json").read_text())

    def read(digest: str) -> bytes:
        return (root / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()

    async with peer.client() as registry:
        for entry in index["manifests"]:
            await _push_from_layout(registry, repo, read, entry["digest"], entry["mediaType"])
            tags = list((refs or {}).get(entry["digest"], []))
            name = (entry.get("annotations") or {}).get("org.opencontainers.image.ref.name")
            if name:
                tags.append(name.removeprefix("_cosign:"))
            for tag in tags:
                await registry.put_manifest(repo, tag, read(entry["digest"]), entry["mediaType"])


def copy(src: Peer, dst: Peer, *args: Any, options: CopyOptions | None = None, **kwargs: Any) -> CopyReport:
    dst_url = kwargs.pop("dst_url", None)

    async def work() -> CopyReport:
        async with src.client() as source, dst.client(dst_url) as target:
            return await Copier(source, target, options).copy(*args, **kwargs)

    return asyncio.run(work())


def ask(peer: Peer, work: Any) -> Any:
    async def go() -> Any:
        async with peer.client() as registry:
            return await work(registry)

    return asyncio.run(go())


def _raw_image(root: Path, layer: bytes, tag: str) -> tuple[OciLayout, str, str]:
    """A layout with one image whose single layer is stored uncompressed as given."""
    layout = OciLayout(root)
    layer_desc = layout.add_blob(layer, "application/vnd.oci.image.layer.v1.tar")
    config = layout.add_blob(
        canonical_json({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}),
        OCI_CONFIG,
    )
    body = canonical_json(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.to_json(), "layers": [layer_desc.to_json()]}
    )
    manifest = layout.add_blob(body, OCI_MANIFEST)
    layout.tag(manifest, tag)
    return layout, manifest.digest, layer_desc.digest


async def list_referrers(registry: RemoteRegistry, repo: str, digest: str) -> list[dict[str, Any]] | None:
    """The referrers API's list, or None where there is no such API."""
    return await RegistryEndpoint(registry).referrers(repo, digest)


# -- the engine ---------------------------------------------------------------------------


@pytest.mark.parametrize("direction", DIRECTIONS, ids=lambda d: "-to-".join(d))
def test_image_with_all_its_tags(peers: dict[str, Peer], direction: tuple[str, str], tmp_path: Path) -> None:
    src, dst = _pair(peers, direction)
    layout, image = busybox_layout(tmp_path / "img", tag="v1", marker="all-tags")
    other, other_image = busybox_layout(tmp_path / "other", tag="v2", marker="another digest")
    src_repo, dst_repo = src.repo(f"tags-{direction[1]}"), dst.repo(f"tags-from-{direction[0]}")
    asyncio.run(push_layout(src, src_repo, layout.root, {image.manifest.digest: ["v1.0", "latest"]}))
    asyncio.run(push_layout(src, src_repo, other.root))

    report = copy(src, dst, src_repo, "v1", dst_repo, options=CopyOptions(all_tags=True))

    assert report.digest == report.destination_digest == image.manifest.digest
    assert sorted(report.tags) == ["latest", "v1", "v1.0"]  # not v2, which names another digest
    assert sorted(ask(dst, lambda r: list_tags(r, dst_repo))) == ["latest", "v1", "v1.0"]
    for tag in ("v1", "v1.0", "latest"):
        assert ask(dst, lambda r, t=tag: manifest_digest(r, dst_repo, t)) == image.manifest.digest
    assert report.blobs_copied == 2 and report.manifests == [image.manifest.digest]
    for blob in (image.config, *image.layers):
        assert ask(dst, lambda r, b=blob: blob_exists(r, dst_repo, b.digest))

    again = copy(src, dst, src_repo, "v1", dst_repo, options=CopyOptions(all_tags=True))
    assert again.manifests == [] and again.blobs_copied == 0 and again.bytes_copied == 0


@pytest.mark.parametrize("direction", DIRECTIONS, ids=lambda d: "-to-".join(d))
def test_index_with_and_without_platform_filter(
    peers: dict[str, Peer], direction: tuple[str, str], tmp_path: Path
) -> None:
    src, dst = _pair(peers, direction)
    layout, index, _, images = two_platform_layout(tmp_path / "multi", tag="multi")
    src_repo = src.repo("multi")
    asyncio.run(push_layout(src, src_repo, layout.root))

    whole = copy(src, dst, src_repo, "multi", dst.repo("multi-all"))
    assert whole.destination_digest == index.digest and not whole.filtered
    assert set(whole.manifests) == {index.digest, *(image.manifest.digest for image in images)}
    stored = json.loads(ask(dst, lambda r: r.manifest(dst.repo("multi-all"), index.digest)).body)
    assert [m["digest"] for m in stored["manifests"]] == [image.manifest.digest for image in images]

    arm = copy(src, dst, src_repo, "multi", dst.repo("multi-arm"), options=CopyOptions(platforms=("linux/arm64",)))
    assert arm.filtered and arm.digest == index.digest and arm.destination_digest != index.digest
    filtered = ask(dst, lambda r: r.manifest_by_tag(dst.repo("multi-arm"), "multi"))
    assert filtered.digest == arm.destination_digest
    assert [m["digest"] for m in json.loads(filtered.body)["manifests"]] == [images[1].manifest.digest]
    assert not ask(dst, lambda r: blob_exists(r, dst.repo("multi-arm"), images[0].layers[1].digest))


def _oci_referrer(root: Path, subject: str, subject_size: int) -> tuple[Path, str]:
    """An OCI 1.1 artifact (an SBOM-like document) whose subject is the signed image."""
    layout = OciLayout(root)
    empty = layout.add_blob(b"{}", "application/vnd.oci.empty.v1+json")
    sbom = layout.add_blob(b'{"packages": ["busybox"]}', "application/spdx+json")
    body = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/spdx+json",
            "config": empty.to_json(),
            "layers": [sbom.to_json()],
            "subject": {
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "digest": subject,
                "size": subject_size,
            },
        }
    )
    manifest = layout.add_blob(body, OCI_MANIFEST)
    layout.tag(manifest, "sbom")
    return layout.root, manifest.digest


def test_referrers_from_portside_to_distribution_and_back(peers: dict[str, Peer], tmp_path: Path) -> None:
    central, dist, edge = peers["portside"], peers["distribution"], peers["edge"]
    src_repo = central.repo("signed")
    asyncio.run(push_layout(central, src_repo, HELLO, {HELLO_DIGEST: ["hello"]}))
    sbom_root, sbom_digest = _oci_referrer(tmp_path / "sbom", HELLO_DIGEST, 525)
    asyncio.run(push_layout(central, src_repo, sbom_root))
    assert [r["digest"] for r in ask(central, lambda r: list_referrers(r, src_repo, HELLO_DIGEST))] == [sbom_digest]
    hexpart = HELLO_DIGEST.split(":")[1]

    # To Distribution 2.8, which has no referrers API: the sha256-<hex> index stands in.
    there = copy(central, dist, src_repo, "hello", dist.repo("signed"), options=CopyOptions(referrers=True))
    assert sbom_digest in there.referrers
    assert ask(dist, lambda r: list_referrers(r, dist.repo("signed"), HELLO_DIGEST)) is None
    fallback = ask(dist, lambda r: r.manifest_by_tag(dist.repo("signed"), f"sha256-{hexpart}"))
    assert [m["digest"] for m in json.loads(fallback.body)["manifests"]] == [sbom_digest]
    tags = set(ask(dist, lambda r: list_tags(r, dist.repo("signed"))))
    assert {"hello", f"sha256-{hexpart}.sig", f"sha256-{hexpart}.att", f"sha256-{hexpart}"} <= tags

    # And on to another Portside, from the fallback tag to its referrers API.
    back = copy(dist, edge, dist.repo("signed"), "hello", edge.repo("signed"), options=CopyOptions(referrers=True))
    assert sbom_digest in back.referrers
    assert [r["digest"] for r in ask(edge, lambda r: list_referrers(r, edge.repo("signed"), HELLO_DIGEST))] == [
        sbom_digest
    ]
    # Portside to Portside: the referrers API on both sides.
    direct = copy(central, edge, src_repo, "hello", edge.repo("signed-direct"), options=CopyOptions(referrers=True))
    assert sbom_digest in direct.referrers
    listed = ask(edge, lambda r: list_referrers(r, edge.repo("signed-direct"), HELLO_DIGEST))
    assert [r["digest"] for r in listed] == [sbom_digest]
    assert f"sha256-{hexpart}" not in ask(edge, lambda r: list_tags(r, edge.repo("signed-direct")))
    # cosign's signature came along byte for byte and still verifies there.
    verified = _portside(
        "verify", "--key", str(HELLO / "cosign.pub"), "-u", "admin", "--password-stdin",
        f"{edge.host}/{edge.repo('signed')}:hello", input=ADMIN_PASSWORD,
    )  # fmt: skip
    assert "verified" in verified.stdout, verified.stdout + verified.stderr


@pytest.mark.parametrize("target", ["distribution", "edge"])
def test_blobs_mounted_from_another_repository_of_the_destination(
    peers: dict[str, Peer], target: str, tmp_path: Path
) -> None:
    src, dst = peers["portside"], peers[target]
    layout, image = busybox_layout(tmp_path / "img", tag="v1", marker="mount")
    src_repo = src.repo("mounted")
    asyncio.run(push_layout(src, src_repo, layout.root, {image.manifest.digest: ["v1"]}))
    copy(src, dst, src_repo, "v1", dst.repo("mount-first"))

    with proxy(dst.port) as counting:
        report = copy(
            src, dst, src_repo, "v1", dst.repo("mount-second"),
            options=CopyOptions(mount_from=(dst.repo("mount-first"),)), dst_url=counting.url,
        )  # fmt: skip
    assert report.blobs_mounted == 2 and report.blobs_copied == 0 and report.bytes_copied == 0
    mounts = [path for method, path in counting.requests if method == "POST" and "mount=" in path]
    assert len(mounts) == 2
    assert not [method for method, _ in counting.requests if method in ("PATCH",)]
    assert counting.sent < 20_000  # requests and the manifest, never the 1 MiB busybox layer
    assert ask(dst, lambda r: manifest_digest(r, dst.repo("mount-second"), "v1")) == image.manifest.digest


@pytest.mark.parametrize("target", ["distribution", "edge"])
def test_an_interrupted_upload_resumes_without_sending_again(
    peers: dict[str, Peer], target: str, tmp_path: Path
) -> None:
    src, dst = peers["portside"], peers[target]
    chunk = 256 * 1024
    layer = os.urandom(4 * chunk + 1000)  # random: nothing on the way compresses it
    layout, digest, layer_digest = _raw_image(tmp_path / "big", layer, "big")
    src_repo = src.repo("resume")
    asyncio.run(push_layout(src, src_repo, layout.root))

    cut_at = int(2.5 * chunk)  # in the middle of the third chunk
    with proxy(dst.port, cut_after=cut_at) as cutting:
        report = copy(src, dst, src_repo, digest, dst.repo("resumed"), options=CopyOptions(chunk_size=chunk),
                      dst_url=cutting.url)  # fmt: skip
    assert cutting.cuts == 1
    if dst.kind == "portside":
        assert report.bytes_resumed >= 2 * chunk  # the two acknowledged chunks were not sent again
        assert cutting.sent < len(layer) + chunk + 64 * 1024
    else:
        # Distribution 2.8 keeps the bytes of a cut PATCH but its signed session state still
        # names the offset before it, and it refuses the session from then on ("upload
        # resumed at wrong offset", 404 BLOB_UPLOAD_INVALID on the status GET): the engine
        # starts a new session, and the blob is sent again, once.
        assert report.bytes_resumed == 0
        assert cutting.sent < cut_at + len(layer) + 64 * 1024
    received = ask(dst, lambda r: _read(r, dst.repo("resumed"), layer_digest))
    assert received == layer


async def _read(registry: RemoteRegistry, repo: str, digest: str) -> bytes:
    return b"".join([piece async for piece in registry.blob(repo, digest)])


@pytest.mark.parametrize("chunk_size", [64 * 1024, 8 << 20], ids=["chunked", "whole"])
def test_a_blob_that_does_not_match_its_digest_is_never_written(
    peers: dict[str, Peer], chunk_size: int, tmp_path: Path
) -> None:
    src, dst = peers["portside"], peers["distribution"]
    marker = b"PORTSIDE-COPY-MARKER-ORIGINAL"
    layer = os.urandom(300 * 1024) + marker + os.urandom(1024)
    layout, digest, layer_digest = _raw_image(tmp_path / "bad", layer, "bad")
    src_repo = src.repo(f"corrupt-{chunk_size}")
    asyncio.run(push_layout(src, src_repo, layout.root))
    dst_repo = dst.repo(f"corrupt-{chunk_size}")

    with proxy(src.port, replace=(marker, b"PORTSIDE-COPY-MARKER-TAMPERED")) as corrupting:
        source = Peer(src.kind, corrupting.host, corrupting.port, src.user, src.password, src.namespace)
        with pytest.raises(RemoteProtocolError, match="does not match its digest"):
            copy(source, dst, src_repo, digest, dst_repo, options=CopyOptions(chunk_size=chunk_size))
    assert not ask(dst, lambda r: blob_exists(r, dst_repo, layer_digest))
    assert ask(dst, lambda r: manifest_digest(r, dst_repo, digest)) is None


def test_speed_limit_is_honoured(peers: dict[str, Peer], tmp_path: Path) -> None:
    src, dst = peers["portside"], peers["edge"]
    layer = os.urandom(1 << 20)
    layout, digest, _ = _raw_image(tmp_path / "slow", layer, "slow")
    asyncio.run(push_layout(src, src.repo("slow"), layout.root))
    started = time.monotonic()
    report = copy(src, dst, src.repo("slow"), digest, dst.repo("slow"), options=CopyOptions(speed=256))
    elapsed = time.monotonic() - started
    assert report.blobs_copied == 2
    assert elapsed >= 3.0, f"1 MiB at 256 KB/s took {elapsed:.2f}s"  # 4 s at the limit


# -- the commands -------------------------------------------------------------------------


def _portside(
    *args: str, input: str | None = None, check: bool = True, docker_config: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_CONFIG": str(docker_config or "/nonexistent-portside-copy-tests")}
    proc = subprocess.run(
        [sys.executable, "-m", "portside", *args], input=input, capture_output=True, text=True, env=env, timeout=300
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"portside {' '.join(args)} → {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_copy_and_sync_commands(peers: dict[str, Peer], tmp_path: Path) -> None:
    central, dist, edge = peers["portside"], peers["distribution"], peers["edge"]
    layout, index, _, images = two_platform_layout(tmp_path / "multi", tag="multi", runnable_amd64=True)
    plain, image = busybox_layout(tmp_path / "plain", tag="v1", marker="copied by portside")
    asyncio.run(push_layout(central, "library/cli/multi", layout.root))
    asyncio.run(push_layout(central, "library/cli/plain", plain.root, {image.manifest.digest: ["v1", "stable"]}))

    creds = ("--src-creds", central.creds, "--dest-creds", dist.creds)
    multi = f"{central.host}/library/cli/multi:multi"
    done = _portside("copy", "--all", "--json", *creds, f"docker://{multi}", f"{dist.host}/mirror/cli/multi")
    result = json.loads(done.stdout)
    assert result["destination_digest"] == index.digest and result["tags"] == ["multi"]
    assert result["blobs"]["copied"] == 6  # two configs, busybox, the shared layer and one of each platform
    single = json.loads(_portside("copy", "--json", *creds, multi, f"{dist.host}/mirror/cli/amd:x").stdout)
    assert single["destination_digest"] == images[0].manifest.digest  # this machine's platform
    assert single["tags"] == ["x"]

    missing = _portside(
        "copy", "--json", *creds, f"{central.host}/library/cli/none:v1", f"{dist.host}/mirror/x", check=False
    )
    assert missing.returncode == 4 and "error" in json.loads(missing.stdout)
    assert _portside("copy", "--json", "nohost", f"{dist.host}/x", check=False).returncode == 2

    # sync a namespace from the centre to the edge: everything once, then nothing
    sync_args = ("sync", "--json", "--src-creds", central.creds, "--dest-creds", edge.creds)
    first = json.loads(
        _portside(
            "sync", "--json", "--src-creds", central.creds, "-u", "admin", "--password-stdin",
            f"{central.host}/library/cli/", f"{edge.host}/library/mirror", input=edge.password + "\n",
        ).stdout
    )  # fmt: skip
    copied = {repo["destination_repository"]: sorted(t for c in repo["copied"] for t in c["tags"])
              for repo in first["repositories"]}  # fmt: skip
    assert copied == {"library/mirror/multi": ["multi"], "library/mirror/plain": ["stable", "v1"]}
    second = json.loads(_portside(*sync_args, f"{central.host}/library/cli/", f"{edge.host}/library/mirror").stdout)
    assert all(not repo["copied"] for repo in second["repositories"])
    assert sorted(second["repositories"][1]["unchanged"]) == ["stable", "v1"]

    # a tag moved at the source: only it is copied
    _, moved = busybox_layout(tmp_path / "moved", tag="stable", marker="moved")
    asyncio.run(push_layout(central, "library/cli/plain", tmp_path / "moved"))
    third = json.loads(
        _portside(*sync_args, f"{central.host}/library/cli/plain", f"{edge.host}/library/mirror/plain").stdout
    )
    assert [c["tags"] for c in third["repositories"][0]["copied"]] == [["stable"]]
    assert third["repositories"][0]["unchanged"] == ["v1"]

    # non-terminal output: one line per item on standard error
    lines = _portside("copy", *creds, f"{central.host}/library/cli/plain:v1", f"{dist.host}/mirror/cli/lines")
    assert "manifest mirror/cli/lines:v1" in lines.stderr and "copied " in lines.stderr


def test_copied_image_runs_under_podman(peers: dict[str, Peer], podman: Podman, tmp_path: Path) -> None:
    central, dist = peers["portside"], peers["distribution"]
    layout, image = busybox_layout(tmp_path / "run", tag="v1", marker="copied and run")
    asyncio.run(push_layout(central, central.repo("runme"), layout.root, {image.manifest.digest: ["v1"]}))
    copy(central, dist, central.repo("runme"), "v1", dist.repo("runme"))
    ref = f"{dist.host}/{dist.repo('runme')}:v1"
    podman("pull", "--tls-verify=false", "--creds", dist.creds, ref)
    out = podman("run", "--rm", ref, "cat", "/etc/marker")
    assert out.stdout.strip() == "copied and run"


def test_oci_layouts_as_source_and_destination(peers: dict[str, Peer], tmp_path: Path) -> None:
    central = peers["portside"]
    layout, index, _, images = two_platform_layout(tmp_path / "src", tag="multi", name="layouts")
    creds = ("--dest-creds", central.creds)
    up = json.loads(
        _portside(
            "copy", "--all", "--json", *creds, f"oci:{layout.root}:multi", f"{central.host}/library/from-oci"
        ).stdout
    )
    assert up["destination_digest"] == index.digest and up["tags"] == ["multi"]
    assert ask(central, lambda r: manifest_digest(r, "library/from-oci", "multi")) == index.digest

    out = tmp_path / "out"
    pushed = f"{central.host}/library/from-oci:multi"
    down = _portside("copy", "--all", "--json", "--src-creds", central.creds, pushed, f"oci:{out}:copied")
    assert json.loads(down.stdout)["destination_digest"] == index.digest
    raw = skopeo("inspect", "--raw", f"oci:{out}:copied").stdout.encode()
    assert sha256_digest(raw) == index.digest
    for image in images:
        for blob in (image.config, *image.layers):
            assert (out / "blobs" / "sha256" / blob.digest.split(":")[1]).read_bytes() == layout.blob(blob.digest)
    # a new index of one platform of it, in a layout named without a tag: the source's tag
    arm = json.loads(
        _portside("copy", "--json", "--platform", "linux/arm64", f"oci:{out}:copied", f"oci:{tmp_path / 'arm'}").stdout
    )
    assert arm["filtered"] and arm["tags"] == ["copied"]
    raw = skopeo("inspect", "--raw", f"oci:{tmp_path / 'arm'}:copied").stdout.encode()
    assert sha256_digest(raw) == arm["destination_digest"]
    assert [m["digest"] for m in json.loads(raw)["manifests"]] == [images[1].manifest.digest]


def test_a_copy_run_again_resumes_the_upload_an_ended_run_left(peers: dict[str, Peer], tmp_path: Path) -> None:
    src, dst = peers["portside"], peers["edge"]
    chunk = 256 * 1024
    layer = os.urandom(4 * chunk + 1000)
    layout, digest, layer_digest = _raw_image(tmp_path / "big", layer, "big")
    asyncio.run(push_layout(src, src.repo("rerun"), layout.root))
    journal_path = tmp_path / "uploads.json"
    options = CopyOptions(chunk_size=chunk, retries=0)  # the first run gives up at the cut

    async def run_copy(url: str) -> CopyReport:
        async with src.client() as source, dst.client(url) as target:
            copier = Copier(source, target, options, journal=FileJournal(journal_path))
            return await copier.copy(src.repo("rerun"), digest, dst.repo("rerun"))

    with proxy(dst.port, cut_after=int(2.5 * chunk)) as cutting, pytest.raises(RemoteUnreachable):
        asyncio.run(run_copy(cutting.url))
    assert list(json.loads(journal_path.read_text())) == [f"{cutting.url}/{dst.repo('rerun')}@{layer_digest}"]

    # Run again at the same address (the journal knows uploads by the target's URL).
    with proxy(dst.port, port=cutting.port) as counting:
        report = asyncio.run(run_copy(counting.url))
    assert report.bytes_resumed >= 2 * chunk
    assert report.bytes_copied <= len(layer) - 2 * chunk + 1000
    assert counting.sent < len(layer) - 2 * chunk + chunk + 64 * 1024
    assert json.loads(journal_path.read_text()) == {}
    assert ask(dst, lambda r: _read(r, dst.repo("rerun"), layer_digest)) == layer


def test_progress_bars_on_a_terminal(peers: dict[str, Peer], tmp_path: Path) -> None:
    """On a terminal (a pty here), rich draws a bar per blob and one for the whole, with
    sizes and rate; each blob's outcome stays as a line when its bar goes."""
    central, dist = peers["portside"], peers["distribution"]
    layout, digest, _ = _raw_image(tmp_path / "bars", os.urandom(3 << 20), "bars")
    asyncio.run(push_layout(central, central.repo("bars"), layout.root))
    primary, secondary = pty.openpty()
    env = {**os.environ, "DOCKER_CONFIG": "/nonexistent-portside-copy-tests", "COLUMNS": "120", "TERM": "xterm"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "portside", "copy", "--speed", "1024", "--src-creds", central.creds,
         "--dest-creds", dist.creds, f"{central.host}/{central.repo('bars')}:bars", f"{dist.host}/mirror/bars"],
        stdin=secondary, stdout=secondary, stderr=secondary, env=env,
    )  # fmt: skip
    os.close(secondary)
    output = b""
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:  # EIO: the other end closed
            break
        if not data:
            break
        output += data
    assert proc.wait(timeout=120) == 0, output.decode(errors="replace")
    os.close(primary)
    text = output.decode(errors="replace")
    assert "total" in text and "MiB" in text and "/s" in text  # the overall bar: size and rate
    assert "━" in text  # rich's bar
    assert "copied (3145728 bytes)" in text
    assert f"copied {dist.host}/mirror/bars@{digest}" in text


def test_credentials_stored_by_portside_login(peers: dict[str, Peer], tmp_path: Path) -> None:
    """`portside login` writes docker's config.json, and `copy` reads each side's entry."""
    central, dist = peers["portside"], peers["distribution"]
    layout, image = busybox_layout(tmp_path / "img", tag="v1", marker="login")
    asyncio.run(push_layout(central, central.repo("login"), layout.root))
    config = tmp_path / "docker"
    for peer in (central, dist):
        _portside("login", peer.host, "-u", peer.user, "--password-stdin", input=peer.password, docker_config=config)
    done = _portside(
        "copy",
        "--json",
        f"{central.host}/{central.repo('login')}:v1",
        f"{dist.host}/mirror/login",
        docker_config=config,
    )
    assert json.loads(done.stdout)["destination_digest"] == image.manifest.digest
    # Without them: `library` is public, so the source answers anyone; Distribution refuses.
    refused = _portside(
        "copy", "--json", f"{central.host}/{central.repo('login')}:v1", f"{dist.host}/mirror/login", check=False
    )
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "refused the credentials" in json.loads(refused.stdout)["error"]
