"""Several instances behind nginx: uploads that move between instances, a crash in the
middle of concurrent pushes, tokens and caches shared by every instance, a real client."""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.access.accounts import Principal
from tests.access.flow import TokenFlow, repo_scope
from tests.api import oci
from tests.e2e.clients import skopeo
from tests.e2e.images import busybox_layout, sha256_digest
from tests.scale.conftest import Cluster
from tests.servers import ADMIN_PASSWORD, still_running

pytestmark = pytest.mark.slow

ADMIN = ("admin", ADMIN_PASSWORD)
MiB = 1024 * 1024


def _basic() -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()}


def _client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers=_basic(), timeout=60.0)


def test_chunked_upload_continues_on_other_instances(cluster: Cluster) -> None:
    """Started on one instance, continued on a second, completed on a third: the session
    and the running hash live in the shared database, the parts in the shared bucket."""
    a, b, c = (_client(i.url) for i in cluster.instances)
    repo = f"library/{oci.unique('moving')}"
    data = oci.random_bytes(13 * MiB + 12345)  # crosses several 5 MiB parts, with a remainder
    cuts = [0, 3 * MiB, 9 * MiB + 7, 11 * MiB, len(data)]
    try:
        r = a.post(f"/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, r.text
        url = oci.location(r)
        for n, (start, end) in enumerate(zip(cuts, cuts[1:], strict=False)):
            via = (a, b, c)[n % 3]
            r = via.patch(
                url.path,
                params=url.params,
                content=data[start:end],
                headers={"content-range": f"{start}-{end - 1}", "content-type": "application/octet-stream"},
            )
            assert r.status_code == 202, r.text
            assert r.headers["range"] == f"0-{end - 1}"
            url = oci.location(r)
            # every instance reports the same progress
            status = (b, c, a)[n % 3].get(url.path, params=url.params)
            assert status.status_code == 204 and status.headers["range"] == f"0-{end - 1}"
        r = b.put(url.path, params=oci.with_params(url, digest=oci.digest(data)).params)
        assert r.status_code == 201, r.text
        for via in (a, b, c):
            got = via.get(f"/v2/{repo}/blobs/{oci.digest(data)}", follow_redirects=True)
            assert got.status_code == 200 and got.content == data
    finally:
        for x in (a, b, c):
            x.close()


def test_tag_moved_through_one_instance_is_seen_at_once_by_the_others(cluster: Cluster) -> None:
    """Each instance caches manifest lookups; a change made through one must be what the
    others serve right after the change was acknowledged."""
    clients = [_client(i.url) for i in cluster.instances]
    repo = f"library/{oci.unique('retag')}"
    try:
        for generation in range(4):
            image = oci.image_manifest()
            for blob in image.blobs:
                oci.push_blob(clients[0], repo, blob)
            r = clients[generation % 3].put(
                f"/v2/{repo}/manifests/latest", content=image.body, headers={"content-type": image.media_type}
            )
            assert r.status_code == 201, r.text
            for c in clients:
                for _ in range(3):  # the second and third reads come from each instance's cache
                    got = c.get(f"/v2/{repo}/manifests/latest", headers={"accept": oci.ACCEPT_ALL})
                    assert got.status_code == 200 and got.headers["docker-content-digest"] == image.digest
        r = clients[1].delete(f"/v2/{repo}/manifests/{image.digest}")
        assert r.status_code == 202
        for c in clients:
            assert c.get(f"/v2/{repo}/manifests/latest", headers={"accept": oci.ACCEPT_ALL}).status_code == 404
    finally:
        for c in clients:
            c.close()


def test_token_from_one_instance_is_accepted_by_the_others(cluster: Cluster) -> None:
    first, *others = cluster.instances
    repo = f"library/{oci.unique('token')}"
    with TokenFlow(first.url, Principal("admin", "admin", ADMIN[1], sysadmin=True)) as flow:
        flow.discover()
        assert flow.realm == f"{cluster.url}/service/token"  # clients are sent to the balancer
        flow.realm = f"{first.url}/service/token"  # ...but this token comes from one instance
        token = flow.token(repo_scope(repo, "pull,push"))
    image = oci.image_manifest()
    for n, instance in enumerate(others):
        with httpx.Client(base_url=instance.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
            if n == 0:
                for blob in image.blobs:
                    oci.push_blob(c, repo, blob)
                r = c.put(f"/v2/{repo}/manifests/v1", content=image.body, headers={"content-type": image.media_type})
                assert r.status_code == 201, r.text
            got = c.get(f"/v2/{repo}/manifests/v1", headers={"accept": oci.ACCEPT_ALL})
            assert got.status_code == 200 and got.content == image.body
    # a tampered token is refused everywhere
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for instance in cluster.instances:
        r = httpx.get(f"{instance.url}/v2/{repo}/manifests/v1", headers={"Authorization": f"Bearer {forged}"})
        assert r.status_code == 401


@dataclass
class _Push:
    repo: str
    image: oci.Manifest
    acknowledged: bool = False
    attempts: int = 0
    errors: list[str] = field(default_factory=list)


def _push_with_retries(base_url: str, push: _Push, deadline: float) -> None:
    """Push the whole image, starting over after any failure, as a client would."""
    while time.monotonic() < deadline:
        push.attempts += 1
        try:
            with _client(base_url) as c:
                for blob in push.image.blobs:
                    r = c.post(f"/v2/{push.repo}/blobs/uploads/")
                    if r.status_code != 202:
                        raise RuntimeError(f"POST {r.status_code} {r.text[:200]}")
                    url = oci.location(r)
                    # two chunks, so a crash can land in the middle of a session
                    half = len(blob.data) // 2
                    r = c.patch(
                        url.path,
                        params=url.params,
                        content=blob.data[:half],
                        headers={"content-range": f"0-{half - 1}"},
                    )
                    if r.status_code != 202:
                        raise RuntimeError(f"PATCH {r.status_code} {r.text[:200]}")
                    url = oci.location(r)
                    r = c.put(
                        url.path, params=oci.with_params(url, digest=blob.digest).params, content=blob.data[half:]
                    )
                    if r.status_code != 201:
                        raise RuntimeError(f"PUT blob {r.status_code} {r.text[:200]}")
                r = c.put(
                    f"/v2/{push.repo}/manifests/v1",
                    content=push.image.body,
                    headers={"content-type": push.image.media_type},
                )
                if r.status_code != 201:
                    raise RuntimeError(f"PUT manifest {r.status_code} {r.text[:200]}")
                push.acknowledged = True
                return
        except (httpx.HTTPError, RuntimeError) as exc:
            push.errors.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.2)


def test_sigkill_of_one_instance_during_concurrent_pushes(cluster: Cluster) -> None:
    shared_base = oci.layer(2 * MiB)
    pushes = [
        _Push(f"library/{oci.unique('storm')}", oci.image_manifest(layers=[shared_base, oci.layer(3 * MiB + n)]))
        for n in range(20)
    ]
    deadline = time.monotonic() + 240
    threads = [threading.Thread(target=_push_with_retries, args=(cluster.url, p, deadline)) for p in pushes]
    for t in threads:
        t.start()
    # Kill an instance while the pushes are in full flight: `kill -9` of its `portside
    # serve` alone, as an operator would; its server processes end with it.
    victim = cluster.instances[1]
    time.sleep(1.0)
    server_processes = victim.kill_main_process()
    assert server_processes
    assert still_running(server_processes, within=2.0) == []
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)

    failed = [p for p in pushes if not p.acknowledged]
    assert not failed, [(p.repo, p.errors[-3:]) for p in failed]
    retried = sum(p.attempts - 1 for p in pushes)
    print(f"pushes retried after the crash: {retried}")

    # Every acknowledged push is whole, through every surviving instance and the balancer.
    survivors = [i for i in cluster.instances if i is not victim]
    for base in [cluster.url, *(i.url for i in survivors)]:
        with _client(base) as c:
            for p in pushes:
                got = c.get(f"/v2/{p.repo}/manifests/v1", headers={"accept": oci.ACCEPT_ALL})
                assert got.status_code == 200 and got.content == p.image.body, (base, p.repo, got.status_code)
                if base == cluster.url:
                    for blob in p.image.blobs:
                        b = c.get(f"/v2/{p.repo}/blobs/{blob.digest}", follow_redirects=True)
                        assert b.status_code == 200 and b.content == blob.data, (p.repo, blob.digest)

    # No manifest anywhere in the registry references a missing blob.
    with _client(cluster.url) as c:
        repos = c.get("/v2/_catalog", params={"n": "1000"}).json()["repositories"]
        for repo in repos:
            for tag in c.get(f"/v2/{repo}/tags/list").json().get("tags") or []:
                m = c.get(f"/v2/{repo}/manifests/{tag}", headers={"accept": oci.ACCEPT_ALL})
                assert m.status_code == 200
                doc = m.json()
                for d in [doc.get("config"), *doc.get("layers", [])]:
                    if d:
                        assert c.head(f"/v2/{repo}/blobs/{d['digest']}").status_code == 200, (repo, d["digest"])

    # The killed instance comes back and serves the same content.
    victim.start()
    with _client(victim.url) as c:
        for p in pushes[:5]:
            assert c.get(f"/v2/{p.repo}/manifests/v1", headers={"accept": oci.ACCEPT_ALL}).content == p.image.body


@pytest.mark.e2e
def test_skopeo_through_the_balancer(cluster: Cluster, tmp_path: Path) -> None:
    """A real client against the cluster: token auth through nginx, upload sessions spread
    over the instances by round robin, and a round trip back to an OCI layout."""
    layout, image = busybox_layout(tmp_path / "src", tag="v1", marker="cluster")
    dest = f"docker://{cluster.host}/library/{oci.unique('skopeo')}:v1"
    creds = f"--dest-creds={ADMIN[0]}:{ADMIN[1]}"
    skopeo("copy", "--dest-tls-verify=false", creds, f"oci:{layout.root}:v1", dest)
    out = tmp_path / "out"
    skopeo("copy", "--src-tls-verify=false", f"--src-creds={ADMIN[0]}:{ADMIN[1]}", dest, f"oci:{out}:v1")
    for d in [image.manifest, image.config, *image.layers]:
        copied = (out / "blobs" / "sha256" / d.digest.split(":")[1]).read_bytes()
        assert sha256_digest(copied) == d.digest
