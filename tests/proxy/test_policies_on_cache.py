"""A proxy project's pull policies judge what it caches: an image signed upstream by the real
cosign (the shared fixture) arrives with its signature and passes a `require_signature`
policy whose key verifies it; an unsigned one is refused 412, from the upstream and from
the cache alike; `prevent_vul` refuses what was never scanned."""

from __future__ import annotations

import json

import httpx

from tests.api import oci
from tests.mgmt.conftest import Harbor
from tests.proxy.test_pull_through import AUTH, proxy_project, pull, push
from tests.proxy.upstream import FaultyUpstream
from tests.servers import Distribution
from tests.trust.fixtures import SIGNED, Layout

HELLO = SIGNED / "cosign-singularity-hello-world"
IMAGE = "sha256:432f982638b3aefab73cc58ab28f5c16e96fdb504e8c134fc58dff4bae8bf338"
SIG = "sha256:f764ee0fbe0e49555602e3c34e82be58a63da388204d93f948710c74a9730682"
SIG_TAG = "sha256-432f982638b3aefab73cc58ab28f5c16e96fdb504e8c134fc58dff4bae8bf338.sig"
KEY = (HELLO / "cosign.pub").read_text()


def push_layout(upstream: Distribution, repo: str, layout: Layout, digest: str, reference: str) -> None:
    payload = layout.blob(digest)
    assert payload is not None
    document = json.loads(payload)
    with httpx.Client(base_url=upstream.url) as c:
        for descriptor in [document.get("config"), *document.get("layers", [])]:
            if descriptor:
                data = layout.blob(descriptor["digest"])
                assert data is not None
                oci.push_blob(c, repo, data)
        r = c.put(f"/v2/{repo}/manifests/{reference}", content=payload, headers={"content-type": document["mediaType"]})
        assert r.status_code == 201, r.text


async def test_signature_policy_judges_cached_content(
    harbor: Harbor, client: httpx.AsyncClient, upstream_registry: Distribution, faulty: FaultyUpstream
) -> None:
    layout = Layout(HELLO)
    push_layout(upstream_registry, "lib/hello", layout, IMAGE, "v1")
    push_layout(upstream_registry, "lib/hello", layout, SIG, SIG_TAG)
    unsigned = push(upstream_registry, "lib/plain", "v1")
    await proxy_project(harbor, faulty.url, require_signature="cosign")
    r = await harbor.call("POST", "/projects/cache/trust/keys", json={"name": "hello", "public_key": KEY})
    assert r.status_code == 201, r.text

    r = await pull(client, "cache/lib/hello", "v1")
    assert r.status_code == 200, r.text
    assert r.headers["docker-content-digest"] == IMAGE
    r = await pull(client, "cache/lib/plain", "v1")
    assert r.status_code == 412 and "PROJECTPOLICYVIOLATION" in r.text, r.text

    # From the cache, with the upstream gone: the same verdicts.
    upstream_registry.stop()
    r = await pull(client, "cache/lib/hello", "v1")
    assert r.status_code == 200, r.text
    r = await pull(client, "cache/lib/hello", SIG_TAG)
    assert r.status_code == 200
    r = await pull(client, "cache/lib/plain", unsigned.digest)
    assert r.status_code == 412


async def test_vulnerability_policy_refuses_what_was_never_scanned(
    harbor: Harbor, client: httpx.AsyncClient, upstream_registry: Distribution, faulty: FaultyUpstream
) -> None:
    push(upstream_registry, "lib/app", "v1")
    await proxy_project(harbor, faulty.url, prevent_vul="true", severity="high")
    r = await client.get("/v2/cache/lib/app/manifests/v1", headers={**AUTH, "Accept": "*/*"})
    assert r.status_code == 412 and "PROJECTPOLICYVIOLATION" in r.text, r.text
