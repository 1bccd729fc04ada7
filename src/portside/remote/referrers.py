"""Pushing and listing OCI 1.1 referrers on another registry, with the distribution spec's
fallback for registries that have no referrers API.

A manifest with a `subject` is pushed by digest (`push`). A registry that processed the
subject says so with `OCI-Subject`; one that did not but answers its referrers API is
fine too. Only when that API answers 404 does the client keep the list itself, as the spec
says: an image index tagged `sha256-<hex>` (`fallback_tag`) beside the subject, to which a
descriptor of the pushed manifest is added (its `artifactType`, its annotations copied).

`listed` reads the referrers of a digest the same way round: the API, and on its 404 the
fallback tag; a tag that is missing or holds no index means there are none.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from portside.oci import mediatypes as mt
from portside.remote.client import RemoteRegistry
from portside.remote.errors import RemoteNotFound, RemoteProtocolError

__all__ = ["MAX_REFERRERS", "Attached", "fallback_tag", "listed", "push"]

MAX_REFERRERS = 64  # a subject's referrers read at most: junk must not make a listing endless
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True, slots=True)
class Attached:
    """A pushed referrer: its digest, and the fallback tag it was listed under (None: the
    registry's referrers API lists it)."""

    digest: str
    fallback_tag: str | None


def fallback_tag(digest: str) -> str:
    """The referrers tag schema's tag for `digest`: algorithm (to 32 characters), `-`, the
    encoded part (to 64), characters a tag may not hold replaced by `-`."""
    algorithm, _, encoded = digest.partition(":")
    return _TAG_UNSAFE.sub("-", f"{algorithm[:32]}-{encoded[:64]}")


def _index(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("manifests"), list):
        return None
    if document.get("mediaType", mt.OCI_INDEX) != mt.OCI_INDEX:
        return None
    return document


def _descriptors(index: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [dict(d) for d in index.get("manifests") or [] if isinstance(d, Mapping) and d.get("digest")]


async def push(remote: RemoteRegistry, repository: str, manifest: bytes, media_type: str = mt.OCI_MANIFEST) -> Attached:
    """Push a manifest with a `subject` by digest, keeping the fallback list when needed."""
    document = json.loads(manifest)
    subject = str(document["subject"]["digest"])
    pushed = await remote.push_manifest(
        repository, "sha256:" + hashlib.sha256(manifest).hexdigest(), manifest, media_type
    )
    if pushed.subject == subject:
        return Attached(pushed.digest, None)
    try:
        await remote.referrers(repository, subject)
        return Attached(pushed.digest, None)
    except RemoteNotFound:
        pass
    tag = fallback_tag(subject)
    try:
        found = await remote.manifest_by_tag(repository, tag)
    except RemoteNotFound:
        index: dict[str, Any] = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}
    else:
        parsed = _index(found.body)
        if parsed is None:
            raise RemoteProtocolError(f"{repository}:{tag} is no referrers index; not overwriting it")
        index = parsed
    manifests = _descriptors(index)
    if not any(d["digest"] == pushed.digest for d in manifests):
        # The spec's descriptor: the manifest's artifactType (else its config's media type),
        # and every annotation of the manifest, so a reader can filter without fetching it.
        descriptor: dict[str, Any] = {"mediaType": media_type, "digest": pushed.digest, "size": len(manifest)}
        config = document.get("config")
        artifact_type = document.get("artifactType") or (config.get("mediaType") if isinstance(config, dict) else None)
        if artifact_type:
            descriptor["artifactType"] = artifact_type
        if document.get("annotations"):
            descriptor["annotations"] = document["annotations"]
        manifests.append(descriptor)
    index["manifests"] = manifests
    body = json.dumps(index, separators=(",", ":")).encode()
    await remote.put_manifest(repository, tag, body, mt.OCI_INDEX)
    return Attached(pushed.digest, tag)


async def listed(
    remote: RemoteRegistry, repository: str, digest: str, artifact_type: str | None = None
) -> list[dict[str, Any]]:
    """The descriptors of `digest`'s referrers (at most MAX_REFERRERS); `artifact_type` is
    passed on as a filter, which a registry may ignore: callers check what they get."""
    try:
        index = _index(await remote.referrers(repository, digest, artifact_type))
    except RemoteNotFound:
        try:
            index = _index((await remote.manifest_by_tag(repository, fallback_tag(digest))).body)
        except RemoteNotFound:
            index = None
    return _descriptors(index or {})[:MAX_REFERRERS]
