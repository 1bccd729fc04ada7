"""Signing on push, for pipelines that cannot hold a key: in a project whose metadata says
`sign_on_push`, every image or index pushed by tag is signed as cosign signs: a
simple-signing payload naming the digest, under the `sha256-<hex>.sig` tag, one layer per
signature (an existing `.sig` keeps its signatures). The key is the project's own (ECDSA
P-256, made on first use and kept with the registry's other keys) or one held outside
Portside, reached through a command or a plug-in (mgmt/signing_keys.py). The project's
trust policy trusts whichever key signs for it (mgmt/trust_policy.py), so what Portside
signed passes its own pull policy, and `GET /projects/{p}/trust` shows the public key for
verifiers elsewhere (`cosign verify --key`, `portside verify --key`).

The push never waits for it: signing is queued as a task after the manifest is stored; a
failure (a key that cannot be reached, a command that fails or answers what does not
verify) is logged and the image stays unsigned (a pull policy then says so).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging

from portside.errors import ManifestUnknown
from portside.meta.accounts import Project, ProjectStore
from portside.meta.stores import ManifestRecord
from portside.mgmt.signing_keys import SigningFailed, SigningKeys, checked_signature
from portside.oci import mediatypes as mt
from portside.oci.digest import Digest
from portside.oci.manifest import Manifest
from portside.registry.manifests import ManifestService
from portside.registry.uploads import UploadService
from portside.trust import cosign

__all__ = ["ServerSigner"]

log = logging.getLogger("portside.trust")

_EMPTY_CONFIG = b"{}"


async def _once(data: bytes):  # type: ignore[no-untyped-def]
    yield data


class ServerSigner:
    def __init__(
        self, projects: ProjectStore, keys: SigningKeys, manifests: ManifestService, uploads: UploadService, host: str
    ):
        """`host`: the registry's host[:port] as clients name it (the payloads' docker-reference)."""
        self._projects = projects
        self._keys = keys
        self._manifests = manifests
        self._uploads = uploads
        self._host = host
        self._tasks: set[asyncio.Task[None]] = set()

    async def public_key(self, project: Project) -> str | None:
        """The PEM of the key Portside signs `project`'s pushes with (None: it does not sign)."""
        if project.metadata.get("sign_on_push") != "true":
            return None
        try:
            return await self._keys.for_project(project).public_key_pem()
        except SigningFailed as error:
            # The project then trusts no key of Portside's: its pushes stay unsigned too.
            log.warning("project %s: no public key to sign on push with: %s", project.name, error)
            return None

    async def pushed(self, repository: str, manifest: Manifest) -> None:
        """Told of a push by tag: queue its signing when the project signs on push."""
        from portside.mgmt.pull_policy import signed_content

        if manifest.subject is not None:
            return
        record = ManifestRecord(manifest.digest, manifest.media_type, manifest.payload)
        if not signed_content(record):
            return
        task = asyncio.create_task(self._sign_pushed(repository, manifest.digest))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sign_pushed(self, repository: str, digest: Digest) -> None:
        try:
            project = await self._projects.get_project(repository.split("/", 1)[0])
            if project is not None and project.metadata.get("sign_on_push") == "true":
                await self.sign(project, repository, digest)
        except SigningFailed as error:
            log.warning("%s@%s stays unsigned: %s", repository, digest, error)
        except Exception:
            log.exception("signing %s@%s on push failed", repository, digest)

    async def wait(self) -> None:
        """Until every signing queued so far has ended (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def sign(self, project: Project, repository: str, digest: Digest) -> str:
        """Sign `digest` of `repository` with `project`'s key; the `.sig` manifest's digest.
        SigningFailed, before anything is written, when the key cannot sign."""
        key = self._keys.for_project(project)
        payload = json.dumps(
            {
                "critical": {
                    "identity": {"docker-reference": f"{self._host}/{repository}"},
                    "image": {"docker-manifest-digest": str(digest)},
                    "type": cosign.SIGNATURE_TYPE,
                },
                "optional": None,
            },
            separators=(",", ":"),
        ).encode()
        raw = checked_signature(key, await key.public_key_pem(), payload, await key.sign(payload))
        signature = base64.b64encode(raw).decode()
        for blob in (payload, _EMPTY_CONFIG):
            await self._uploads.upload_whole(repository, Digest.of(blob), _once(blob), len(blob), project.project_id)
        tag = cosign.signature_tag(str(digest))
        layers: list[dict[str, object]] = []
        try:
            existing = json.loads((await self._manifests.get(repository, tag)).payload)
            layers = [layer for layer in existing.get("layers", []) if isinstance(layer, dict)]
        except (ManifestUnknown, ValueError):
            pass
        layers.append(
            {
                "mediaType": cosign.SIMPLE_SIGNING,
                "size": len(payload),
                "digest": str(Digest.of(payload)),
                "annotations": {cosign.SIGNATURE_ANNOTATION: signature},
            }
        )
        manifest = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "size": len(_EMPTY_CONFIG), "digest": str(Digest.of(_EMPTY_CONFIG))},
            "layers": layers,
        }
        body = json.dumps(manifest, separators=(",", ":")).encode()
        stored = await self._manifests.put(repository, tag, body, mt.OCI_MANIFEST, project.project_id)
        return str(stored.digest)
