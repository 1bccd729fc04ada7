"""The copy engine between OCI layout directories: the same engine, no network, so the rules
(children first, filters, digests checked before a blob exists, resumption, tags) are checked
in milliseconds. The registry-to-registry cases are in tests/e2e/test_copy.py."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from portside.cli.copy import _layout_side
from portside.remote.copy import Copier, CopyOptions, ProgressListener, _Throttle, matches_platform
from portside.remote.errors import RemoteProtocolError
from portside.remote.journal import FileJournal
from portside.remote.layout import LayoutEndpoint
from tests.e2e.images import OciLayout, busybox_layout, files_tar_bytes, two_platform_layout


class Recorder(ProgressListener):
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def blob_done(self, digest: str, size: int, outcome: str) -> None:  # type: ignore[override]
        self.events.append(("blob", digest, outcome))

    def manifest_done(self, repository: str, reference: str, digest: str, outcome: str) -> None:  # type: ignore[override]
        self.events.append(("manifest", reference, outcome))


async def test_an_index_is_copied_children_first_and_then_its_tags(tmp_path: Path) -> None:
    layout, index, _, images = two_platform_layout(tmp_path / "src", tag="multi")
    recorder = Recorder()
    target = LayoutEndpoint(tmp_path / "dst")
    report = await Copier(LayoutEndpoint(layout.root), target, progress=recorder).copy("r", "multi", "r")
    assert report.destination_digest == index.digest and report.tags == ["multi"]
    order = [event[1] for event in recorder.events if event[0] == "manifest"]
    children = [image.manifest.digest for image in images]
    assert sorted(order[:2]) == sorted(children) and order[2:] == [index.digest, "multi"]
    for image in images:  # each image's blobs were there before the image
        blobs = {blob.digest for blob in (image.config, *image.layers)}
        position = recorder.events.index(("manifest", image.manifest.digest, "copied"))
        assert blobs <= {event[1] for event in recorder.events[:position] if event[0] == "blob"}
    assert await target.tag_digest("r", "multi") == index.digest

    again = await Copier(LayoutEndpoint(layout.root), target).copy("r", "multi", "r")
    assert again.manifests == [] and again.blobs_copied == 0


async def test_a_platform_filter_makes_a_new_index_and_says_so(tmp_path: Path) -> None:
    layout, index, _, images = two_platform_layout(tmp_path / "src", tag="multi")
    target = LayoutEndpoint(tmp_path / "dst")
    options = CopyOptions(platforms=("linux/arm64/v8",))
    report = await Copier(LayoutEndpoint(layout.root), target, options).copy("r", "multi", "r")
    assert report.filtered and report.digest == index.digest
    stored = await target.manifest("r", report.destination_digest)
    assert [entry["digest"] for entry in json.loads(stored.body)["manifests"]] == [images[1].manifest.digest]
    assert not await target.has_blob("r", images[0].layers[1].digest)
    with pytest.raises(Exception, match="no image for linux/s390x"):
        await Copier(LayoutEndpoint(layout.root), target, CopyOptions(platforms=("linux/s390x",))).copy(
            "r", "multi", "x"
        )


async def test_all_tags_of_a_digest_and_none_of_another(tmp_path: Path) -> None:
    layout, image = busybox_layout(tmp_path / "src", tag="v1")
    layout.tag(image.manifest, "stable")
    other, _ = busybox_layout(tmp_path / "other", tag="v2", marker="other")
    report = await Copier(
        LayoutEndpoint(layout.root), LayoutEndpoint(tmp_path / "dst"), CopyOptions(all_tags=True)
    ).copy("r", "v1", "r")
    assert sorted(report.tags) == ["stable", "v1"]


async def test_a_blob_whose_bytes_are_wrong_is_never_made(tmp_path: Path) -> None:
    layout, image = busybox_layout(tmp_path / "src", tag="v1")
    layer = layout.blobs / image.layers[0].digest.split(":")[1]
    data = bytearray(layer.read_bytes())
    data[-1] ^= 0xFF
    layer.write_bytes(bytes(data))
    target = LayoutEndpoint(tmp_path / "dst")
    with pytest.raises(RemoteProtocolError, match="does not match its digest"):
        await Copier(LayoutEndpoint(layout.root), target, CopyOptions(chunk_size=64 * 1024)).copy("r", "v1", "r")
    assert not await target.has_blob("r", image.layers[0].digest)
    assert await target.tag_digest("r", image.manifest.digest) is None
    assert not list((tmp_path / "dst" / "blobs").glob(".upload-*"))  # the partial upload went too


async def test_an_upload_left_open_is_resumed_from_the_journal(tmp_path: Path) -> None:
    layout, image = busybox_layout(tmp_path / "src", tag="v1")
    layer = image.layers[0]
    target = LayoutEndpoint(tmp_path / "dst")
    journal = FileJournal(tmp_path / "uploads.json")
    # An earlier run sent the first 100 000 bytes and ended.
    upload = await target.upload("r")
    await upload.patch(layout.blob(layer.digest)[:100_000])
    journal.put(f"{target.name}/r@{layer.digest}", upload.handle)

    report = await Copier(LayoutEndpoint(layout.root), target, journal=FileJournal(tmp_path / "uploads.json")).copy(
        "r", "v1", "r"
    )
    assert report.bytes_resumed == 100_000
    assert report.bytes_copied == layer.size - 100_000 + image.config.size
    assert target.blob_path(layer.digest).read_bytes() == layout.blob(layer.digest)
    assert json.loads((tmp_path / "uploads.json").read_text()) == {}


def test_platforms_match_by_os_architecture_and_variant_when_given() -> None:
    arm = {"os": "linux", "architecture": "arm64", "variant": "v8"}
    assert matches_platform(arm, "linux/arm64") and matches_platform(arm, "linux/arm64/v8")
    assert not matches_platform(arm, "linux/arm64/v7") and not matches_platform(arm, "linux/amd64")
    assert not matches_platform(None, "linux/amd64")


async def test_the_throttle_spreads_bytes_over_time() -> None:
    throttle = _Throttle(100_000)
    started = time.monotonic()
    for _ in range(5):
        await throttle.take(50_000)
    assert time.monotonic() - started >= 2.0  # 250 000 bytes at 100 000 a second


def test_oci_layout_names() -> None:
    assert _layout_side("oci:/tmp/dir:v1").layout == Path("/tmp/dir")
    assert _layout_side("oci:/tmp/dir:v1").reference == "v1"
    assert _layout_side("oci:dir@sha256:" + "a" * 64).reference == "sha256:" + "a" * 64
    assert _layout_side("oci:/tmp/dir").reference is None


class _NoChunks(LayoutEndpoint):
    """A target that takes blobs whole only: its uploads refuse every PATCH."""

    async def upload(self, repository: str) -> Any:
        upload = await super().upload(repository)

        async def refuse(data: bytes) -> int:
            raise RemoteProtocolError("PATCH upload: unexpected status 405")

        upload.patch = refuse  # type: ignore[method-assign]
        return upload


async def test_a_target_that_takes_no_chunks_gets_blobs_whole(tmp_path: Path) -> None:
    layout, image = busybox_layout(tmp_path / "src", tag="v1")
    target = _NoChunks(tmp_path / "dst")
    report = await Copier(LayoutEndpoint(layout.root), target, CopyOptions(chunk_size=64 * 1024)).copy("r", "v1", "r")
    assert report.blobs_copied == 2
    assert target.blob_path(image.layers[0].digest).read_bytes() == layout.blob(image.layers[0].digest)


class _InFlight(ProgressListener):
    def __init__(self) -> None:
        self.now = self.most = 0

    def blob_started(self, digest: str, size: int) -> None:
        self.now += 1
        self.most = max(self.most, self.now)

    def blob_done(self, digest: str, size: int, outcome: str) -> None:  # type: ignore[override]
        self.now -= 1


async def test_no_more_blobs_in_flight_than_jobs(tmp_path: Path) -> None:
    layout = OciLayout(tmp_path / "src")
    image = layout.add_image([files_tar_bytes({f"f{n}": os.urandom(50_000)}) for n in range(6)])
    layout.tag(image.manifest, "six")
    watcher = _InFlight()

    class Slow(LayoutEndpoint):
        async def has_blob(self, repository: str, digest: str) -> bool:
            await asyncio.sleep(0.02)  # long enough for the others to pile up, if they could
            return await super().has_blob(repository, digest)

    copier = Copier(LayoutEndpoint(layout.root), Slow(tmp_path / "dst"), CopyOptions(jobs=2), progress=watcher)
    report = await copier.copy("r", "six", "r")
    assert report.blobs_copied == 7 and watcher.most == 2
