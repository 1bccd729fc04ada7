"""GC runs in a loop while clients push: no push or pull fails because of it, and every
image still tagged afterwards pulls whole.

Four pushers push 25 images each (shared base layers, some indexes, some signatures,
a mount), deleting some of their earlier tags as they go, while garbage collection with
`delete_untagged` runs back to back through the API. Garbage made before the storm (and
older than the grace period) must be gone afterwards, so GC had real work throughout.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from dataclasses import dataclass, field

import httpx

from tests.api import oci
from tests.servers import ADMIN_PASSWORD, Portside
from tests.upkeep.conftest import LIVE_GRACE_SECONDS

API = "/api/v2.0"
PUSHERS = 4
IMAGES = 25
SEED = "storm/seed"


@dataclass
class Pushed:
    repo: str
    tag: str
    manifest: oci.Manifest
    signature: oci.Manifest | None = None


@dataclass
class Storm:
    pushed: list[Pushed] = field(default_factory=list)
    untagged: list[Pushed] = field(default_factory=list)
    done: int = 0  # pushers finished


async def _ok(response: httpx.Response, *statuses: int) -> httpx.Response:
    assert response.status_code in statuses, oci.error_text(response)
    return response


async def _push_blob(client: httpx.AsyncClient, repo: str, blob: oci.Blob, two_step: bool) -> None:
    if (await client.head(f"/v2/{repo}/blobs/{blob.digest}")).status_code == 200:
        return  # already there, as docker and skopeo skip it
    if two_step:
        r = await _ok(await client.post(f"/v2/{repo}/blobs/uploads/"), 202)
        url = oci.with_params(oci.location(r), digest=blob.digest)
        await _ok(await client.put(url, content=blob.data, headers={"content-type": "application/octet-stream"}), 201)
    else:
        await _ok(
            await client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": blob.digest}, content=blob.data), 201
        )


async def _push(client: httpx.AsyncClient, repo: str, manifest: oci.Manifest, tag: str | None, two_step: bool) -> None:
    for child in manifest.children:
        await _push(client, repo, child, None, two_step)
    for blob in manifest.blobs:
        await _push_blob(client, repo, blob, two_step)
    headers = {"content-type": manifest.media_type}
    await _ok(
        await client.put(f"/v2/{repo}/manifests/{tag or manifest.digest}", content=manifest.body, headers=headers), 201
    )


def _image(bases: list[oci.Blob]) -> oci.Manifest:
    return oci.image_manifest(oci.config_blob(), [*bases, oci.layer(int.from_bytes(os.urandom(2)) % 3000 + 500)])


async def _pusher(server: Portside, number: int, bases: list[oci.Blob], storm: Storm) -> None:
    repo = f"storm/p{number}"
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as client:
        # The first shared layer arrives by a cross-repository mount from the seed.
        r = await client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": bases[0].digest, "from": SEED})
        await _ok(r, 201)
        for i in range(IMAGES):
            if i % 5 == 4:
                manifest = oci.index_manifest([_image(bases), _image(bases)])
            else:
                manifest = _image(bases)
            item = Pushed(repo, f"i{i}", manifest)
            await _push(client, repo, manifest, item.tag, two_step=i % 2 == 0)
            if i % 6 == 0:
                item.signature = oci.artifact_manifest(
                    "application/vnd.dev.cosign.artifact.sig.v1+json", subject=manifest
                )
                await _push(client, repo, item.signature, None, two_step=False)
            storm.pushed.append(item)
            if i % 4 == 0 and i >= 2:
                # An earlier image loses its tag: GC may take it once it is older than the grace period.
                earlier = next(p for p in storm.pushed if p.repo == repo and p.tag == f"i{i - 2}")
                await _ok(await client.delete(f"/v2/{repo}/manifests/{earlier.tag}"), 202)
                storm.pushed.remove(earlier)
                storm.untagged.append(earlier)
    storm.done += 1


_DELETED = re.compile(r"(\d+) blobs and (\d+) manifests deleted")


async def _collect(admin: httpx.AsyncClient) -> tuple[int, int]:
    """One GC run through the API, to its end; (blobs, manifests) it deleted."""
    body = {"schedule": {"type": "Manual"}, "parameters": {"delete_untagged": True}}
    r = await _ok(await admin.post(f"{API}/system/gc/schedule", json=body), 201)
    job = r.headers["Location"].removeprefix(API)
    while True:
        state = (await _ok(await admin.get(f"{API}{job}"), 200)).json()
        if state["job_status"] not in ("Pending", "Running"):
            break
        await asyncio.sleep(0.2)
    log = (await admin.get(f"{API}{job}/log")).text
    assert state["job_status"] == "Success", log
    found = _DELETED.findall(log)
    assert found, log
    return int(found[-1][0]), int(found[-1][1])


async def _pull(client: httpx.AsyncClient, repo: str, reference: str, manifest: oci.Manifest) -> None:
    r = await _ok(await client.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": oci.ACCEPT_ALL}), 200)
    assert r.content == manifest.body
    for child in manifest.children:
        await _pull(client, repo, child.digest, child)
    for blob in manifest.blobs:
        r = await _ok(await client.get(f"/v2/{repo}/blobs/{blob.digest}"), 200)
        assert r.content == blob.data, (repo, blob.digest)


async def _storm(server: Portside) -> None:
    bases = [oci.layer(4096), oci.layer(2048)]
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=120) as client,
        httpx.AsyncClient(base_url=server.url, timeout=120, auth=("admin", ADMIN_PASSWORD)) as admin,
    ):
        seed = _image(bases)
        await _push(client, SEED, seed, "base", two_step=False)
        garbage = [_image(bases) for _ in range(5)]
        for number, image in enumerate(garbage):
            await _push(client, SEED, image, f"old{number}", two_step=True)
            await _ok(await client.delete(f"/v2/{SEED}/manifests/old{number}"), 202)
        await asyncio.sleep(LIVE_GRACE_SECONDS + 0.5)

        storm = Storm()
        pushers = [asyncio.create_task(_pusher(server, n, bases, storm)) for n in range(PUSHERS)]
        runs, deleted_blobs, deleted_manifests = 0, 0, 0
        while storm.done < PUSHERS and not any(p.done() and p.exception() for p in pushers):
            blobs, manifests = await _collect(admin)
            runs, deleted_blobs, deleted_manifests = runs + 1, deleted_blobs + blobs, deleted_manifests + manifests
        await asyncio.gather(*pushers)
        await _collect(admin)
        assert runs >= 1
        assert deleted_manifests >= len(garbage) and deleted_blobs >= 2 * len(garbage)

        # Everything still tagged pulls whole: manifests, index children, every blob.
        await _pull(client, SEED, "base", seed)
        for item in storm.pushed:
            await _pull(client, item.repo, item.tag, item.manifest)
            if item.signature is not None:
                await _pull(client, item.repo, item.signature.digest, item.signature)
                r = await _ok(await client.get(f"/v2/{item.repo}/referrers/{item.manifest.digest}"), 200)
                assert item.signature.digest in {m["digest"] for m in r.json()["manifests"]}
        for image in garbage:
            r = await client.get(f"/v2/{SEED}/manifests/{image.digest}", headers={"Accept": oci.ACCEPT_ALL})
            assert r.status_code == 404, oci.error_text(r)
            r = await client.get(f"/v2/{SEED}/blobs/{image.blobs[0].digest}")
            assert r.status_code == 404, oci.error_text(r)
        # Untagged during the storm: gone, or (if younger than the grace period) still whole.
        for item in storm.untagged:
            r = await client.get(
                f"/v2/{item.repo}/manifests/{item.manifest.digest}", headers={"Accept": oci.ACCEPT_ALL}
            )
            if r.status_code == 200:
                await _pull(client, item.repo, item.manifest.digest, item.manifest)
            else:
                assert r.status_code == 404, oci.error_text(r)
        tags = (await _ok(await client.get(f"/v2/{SEED}/tags/list"), 200)).json()["tags"]
        assert tags == ["base"], json.dumps(tags)


def test_gc_in_a_loop_during_a_push_storm(live: Portside) -> None:
    asyncio.run(asyncio.wait_for(_storm(live), timeout=280))
