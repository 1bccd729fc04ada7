"""Usage arithmetic: every distinct blob and manifest once per project that holds it,
after shared layers, mounts, tag deletes, manifest deletes and blob deletes."""

from __future__ import annotations

import json
import os

from tests.mgmt.conftest import Harbor
from tests.quota.conftest import V2, digest, image_manifest, used

CONFIG = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()


async def test_shared_content_counts_once_per_project(harbor: Harbor, v2: V2) -> None:
    await harbor.project("team")
    await harbor.project("other")
    a, b = os.urandom(1000), os.urandom(2000)
    assert await used(harbor, "team") == 0

    first = await v2.image("team/a", "v1", [a, b], CONFIG)
    content = len(CONFIG) + len(a) + len(b)
    assert await used(harbor, "team") == content + first.size

    # the same image in a second repository of the project adds nothing
    assert (await v2.image("team/b", "v1", [a, b], CONFIG)).digest == first.digest
    assert await used(harbor, "team") == content + first.size

    # a new manifest over blobs the project holds adds only itself
    second = await v2.image("team/b", "v2", [a], CONFIG)
    assert await used(harbor, "team") == content + first.size + second.size

    # a mount into another project counts there too, and changes nothing here
    r = await v2.mount("other/x", digest(b), "team/a")
    assert r.status_code == 201, r.text
    assert await used(harbor, "other") == len(b)
    assert await used(harbor, "team") == content + first.size + second.size
    await v2.image("other/y", "v1", [a, b], CONFIG)
    assert await used(harbor, "other") == content + first.size

    # deleting a tag leaves its manifest; deleting a manifest one repository still holds
    # changes nothing; deleting its last link frees it
    assert (await v2.delete("team/b", "manifests", "v1")).status_code == 202
    assert await used(harbor, "team") == content + first.size + second.size
    assert (await v2.delete("team/a", "manifests", first.digest)).status_code == 202
    assert await used(harbor, "team") == content + first.size + second.size
    assert (await v2.delete("team/b", "manifests", first.digest)).status_code == 202
    assert await used(harbor, "team") == content + second.size

    # blobs stay counted while any repository of the project links them (until GC unlinks)
    assert (await v2.delete("team/a", "blobs", digest(b))).status_code == 202
    assert await used(harbor, "team") == content + second.size
    assert (await v2.delete("team/b", "blobs", digest(b))).status_code == 202
    assert await used(harbor, "team") == content - len(b) + second.size
    # the other project is untouched by all of it
    assert await used(harbor, "other") == content + first.size


async def test_projects_are_told_apart_exactly(harbor: Harbor, v2: V2) -> None:
    """A repository belongs to the project of its first path component, and nothing else:
    `my_proj` is not a pattern matching `myxproj`, nor is `solo` a prefix of `solo-two`."""
    for name in ("solo", "solo-two", "my_proj", "myxproj"):
        await harbor.project(name)
    sizes = {"solo": 300, "solo-two": 50, "my_proj": 70, "myxproj": 90}
    for name, size in sizes.items():
        assert (await v2.blob(f"{name}/app", os.urandom(size))).status_code == 201
    assert (await v2.blob("solo/deeper/path", os.urandom(5))).status_code == 201
    for name, size in sizes.items():
        assert await used(harbor, name) == size + (5 if name == "solo" else 0)


async def test_a_manifest_held_as_a_blob_too_counts_once(harbor: Harbor, v2: V2) -> None:
    await harbor.project("team")
    layer = os.urandom(700)
    pushed = await v2.image("team/app", "v1", [layer], CONFIG)
    expected = len(CONFIG) + len(layer) + pushed.size
    assert await used(harbor, "team") == expected
    # some clients upload a manifest's bytes as a blob as well: still one digest
    assert (await v2.blob("team/other", image_manifest(CONFIG, [layer]))).status_code == 201
    assert await used(harbor, "team") == expected
