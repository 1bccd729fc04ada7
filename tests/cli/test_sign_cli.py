"""`portside key generate`, `portside sign`, `portside verify` and `portside login` against a
live Portside with access control: signatures land under cosign's `.sig` tag and verify with
the registry's own verifier too."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from portside.trust import cosign
from portside.trust.keys import load_public_key
from tests.api import oci
from tests.servers import ADMIN_PASSWORD, Distribution, Portside

ADMIN = ("admin", ADMIN_PASSWORD)
PASSWORD = "key-password"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    started = Portside(data_dir=tmp_path_factory.mktemp("sign-cli") / "data", open_registry=False).start()
    try:
        yield started
    finally:
        started.stop()


def portside(
    *args: str, cwd: Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    return subprocess.run(
        [sys.executable, "-m", "portside", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        input=stdin,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
            "HOME": str(cwd),
            "COSIGN_PASSWORD": PASSWORD,
            **(env or {}),
        },
    )


def _keys(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    done = portside("key", "generate", cwd=directory)
    assert done.returncode == 0, done.stderr
    return directory


def _login(server: Portside) -> list[str]:
    return ["-u", ADMIN[0], "--password-stdin"]


def _signatures(server: Portside, repo: str, digest: str) -> tuple[dict[str, object], dict[str, bytes]]:
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=30) as registry:
        found = registry.get(
            f"/v2/{repo}/manifests/{cosign.signature_tag(digest)}",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert found.status_code == 200, found.text
        manifest = found.json()
        blobs = {}
        for layer in manifest["layers"]:
            blobs[layer["digest"]] = registry.get(f"/v2/{repo}/blobs/{layer['digest']}").content
        config = registry.get(f"/v2/{repo}/blobs/{manifest['config']['digest']}")
        assert config.status_code == 200
        assert hashlib.sha256(config.content).hexdigest() == manifest["config"]["digest"].split(":")[1]
    return manifest, blobs


def test_key_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    keys = _keys(tmp_path)
    assert (keys / "cosign.key").read_bytes().startswith(b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")
    assert (keys / "cosign.key").stat().st_mode & 0o077 == 0
    load_public_key((keys / "cosign.pub").read_bytes())
    before = (keys / "cosign.key").read_bytes()
    again = portside("key", "generate", cwd=keys)
    assert again.returncode != 0 and "exists" in again.stderr
    assert (keys / "cosign.key").read_bytes() == before


def test_sign_and_verify_by_tag(server: Portside, tmp_path: Path) -> None:
    first, second = _keys(tmp_path / "first"), _keys(tmp_path / "second")
    repo = f"library/sign{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        image = oci.push_image(registry, repo, "v1")
    ref = f"{server.host}/{repo}:v1"

    unsigned = portside("verify", ref, "--key", "cosign.pub", *_login(server), cwd=first, stdin=ADMIN[1])
    assert unsigned.returncode == 1 and "no signatures" in unsigned.stderr

    signed = portside("sign", ref, "--key", "cosign.key", *_login(server), cwd=first, stdin=ADMIN[1])
    assert signed.returncode == 0, signed.stderr
    assert image.digest in signed.stdout

    ok = portside("verify", ref, "--key", "cosign.pub", *_login(server), cwd=first, stdin=ADMIN[1])
    assert ok.returncode == 0, ok.stderr
    assert "verified" in ok.stdout
    by_digest = portside(
        "verify", f"{server.host}/{repo}@{image.digest}", "--key", "cosign.pub", *_login(server), cwd=first,
        stdin=ADMIN[1],
    )  # fmt: skip
    assert by_digest.returncode == 0, by_digest.stderr

    other = portside("verify", ref, "--key", "cosign.pub", *_login(server), cwd=second, stdin=ADMIN[1])
    assert other.returncode == 1
    assert "not verified" in other.stdout and "verifies" in other.stderr

    wrong = portside(
        "sign", ref, "--key", "cosign.key", *_login(server), cwd=first, stdin=ADMIN[1],
        env={"COSIGN_PASSWORD": "wrong"},
    )  # fmt: skip
    assert wrong.returncode == 1 and "wrong password" in wrong.stderr

    # A second signature, with the other key: both kept, each verifies with its own key.
    again = portside("sign", ref, "--key", "cosign.key", *_login(server), cwd=second, stdin=ADMIN[1])
    assert again.returncode == 0, again.stderr
    manifest, blobs = _signatures(server, repo, image.digest)
    assert len(manifest["layers"]) == 2  # type: ignore[arg-type]
    payload = json.loads(next(iter(blobs.values())))
    assert payload["critical"]["identity"]["docker-reference"] == f"{server.host}/{repo}"
    keys = [load_public_key((d / "cosign.pub").read_bytes()) for d in (first, second)]
    assert [v.verified for v in cosign.verify_manifest(manifest, blobs.get, image.digest, keys)] == [True, True]
    for directory in (first, second):
        done = portside("verify", ref, "--key", "cosign.pub", *_login(server), cwd=directory, stdin=ADMIN[1])
        assert done.returncode == 0, done.stderr


def test_signing_an_index_signs_the_index(server: Portside, tmp_path: Path) -> None:
    keys = _keys(tmp_path / "keys")
    repo = f"library/multi{uuid.uuid4().hex[:8]}"
    index = oci.index_manifest(
        [oci.image_manifest(), oci.image_manifest(config=oci.config_blob(platform=("linux", "arm64")))]
    )
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        oci.push_manifest(registry, repo, index, "multi")
    done = portside("sign", f"{server.host}/{repo}:multi", *_login(server), cwd=keys, stdin=ADMIN[1])
    assert done.returncode == 0, done.stderr
    manifest, blobs = _signatures(server, repo, index.digest)
    key = [load_public_key((keys / "cosign.pub").read_bytes())]
    assert [v.verified for v in cosign.verify_manifest(manifest, blobs.get, index.digest, key)] == [True]
    child = index.children[0].digest
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=30) as registry:
        assert registry.get(f"/v2/{repo}/manifests/{cosign.signature_tag(child)}").status_code == 404


def test_credentials_from_docker_config_and_login(server: Portside, tmp_path: Path) -> None:
    keys = _keys(tmp_path / "keys")
    repo = f"library/cfg{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        oci.push_image(registry, repo, "v1")
    ref = f"{server.host}/{repo}:v1"
    refused = portside("login", server.host, "-u", "admin", "--password-stdin", cwd=keys, stdin="not-it")
    assert refused.returncode == 1 and "failed" in refused.stderr
    assert not (keys / ".docker" / "config.json").exists()
    logged = portside("login", server.host, "-u", "admin", "--password-stdin", cwd=keys, stdin=ADMIN[1])
    assert logged.returncode == 0, logged.stderr
    config = json.loads((keys / ".docker" / "config.json").read_text())
    assert base64.b64decode(config["auths"][server.host]["auth"]).decode() == f"admin:{ADMIN[1]}"
    assert portside("sign", ref, cwd=keys).returncode == 0
    assert portside("verify", ref, cwd=keys).returncode == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "config.json").write_text(json.dumps({"auths": {server.host: config["auths"][server.host]}}))
    done = portside(
        "verify", ref, "--key", str(keys / "cosign.pub"), cwd=tmp_path, env={"DOCKER_CONFIG": str(elsewhere)}
    )
    assert done.returncode == 0, done.stderr
    # `library` is public: anyone may verify, but signing (a push) needs credentials.
    assert portside("verify", ref, "--key", str(keys / "cosign.pub"), cwd=tmp_path).returncode == 0
    anonymous = portside("sign", ref, "--key", str(keys / "cosign.key"), cwd=tmp_path)
    assert anonymous.returncode == 1 and anonymous.stderr.startswith("portside: ")


def test_the_registrys_signature_policy_accepts_portside_signatures(server: Portside, tmp_path: Path) -> None:
    keys = _keys(tmp_path / "keys")
    project = f"signed{uuid.uuid4().hex[:8]}"
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    with httpx.Client(base_url=f"{server.url}/api/v2.0", auth=ADMIN, timeout=60) as api:
        metadata = {"public": "false", "enable_content_trust_cosign": "true"}
        assert api.post("/projects", json={"project_name": project, "metadata": metadata}).status_code == 201
        public_key = (keys / "cosign.pub").read_text()
        r = api.post(f"/projects/{project}/trust/keys", json={"name": "portside", "public_key": public_key})
        assert r.status_code == 201, r.text
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        image = oci.push_image(registry, f"{project}/app", "v1")
        assert registry.get(f"/v2/{project}/app/manifests/v1", headers=accept).status_code == 412
    ref = f"{server.host}/{project}/app:v1"
    done = portside("sign", ref, *_login(server), cwd=keys, stdin=ADMIN[1])
    assert done.returncode == 0, done.stderr
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        for reference in ("v1", image.digest):
            assert registry.get(f"/v2/{project}/app/manifests/{reference}", headers=accept).status_code == 200
    with httpx.Client(base_url=f"{server.url}/api/v2.0", auth=ADMIN, timeout=60) as api:
        signatures = api.get(f"/projects/{project}/repositories/app/artifacts/v1/signatures").json()
        assert [s["kind"] for s in signatures] == ["cosign"] and signatures[0]["verified"] is True, signatures


# -- sigstore bundle referrers (`portside sign --bundle`) ------------------------------------

BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def _referrers(server: Portside, repo: str, digest: str) -> list[dict[str, object]]:
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=30) as registry:
        found = registry.get(f"/v2/{repo}/referrers/{digest}")
        assert found.status_code == 200, found.text
        manifests: list[dict[str, object]] = found.json()["manifests"]
        return manifests


def test_sign_bundle_pushes_a_referrer_by_digest_and_verify_says_so(server: Portside, tmp_path: Path) -> None:
    first, second = _keys(tmp_path / "first"), _keys(tmp_path / "second")
    repo = f"library/bundle{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        image = oci.push_image(registry, repo, "v1")
    ref = f"{server.host}/{repo}:v1"
    signed = portside("sign", ref, "--bundle", *_login(server), cwd=first, stdin=ADMIN[1])
    assert signed.returncode == 0, signed.stderr
    assert "referrer" in signed.stdout and "fallback" not in signed.stdout and "listed under" not in signed.stdout
    [listed] = _referrers(server, repo, image.digest)
    assert listed["artifactType"] == BUNDLE_TYPE
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=30) as registry:
        # By digest only: neither cosign's `.sig` tag nor the fallback tag was written.
        tags = registry.get(f"/v2/{repo}/tags/list").json()["tags"]
        assert tags == ["v1"], tags
        manifest = registry.get(f"/v2/{repo}/manifests/{listed['digest']}", headers={"Accept": oci.OCI_MANIFEST})
        assert manifest.json()["subject"] == image.descriptor()

    ok = portside("verify", ref, "--key", "cosign.pub", *_login(server), cwd=first, stdin=ADMIN[1])
    assert ok.returncode == 0, ok.stderr
    assert f"(sigstore bundle, referrer {listed['digest']}): verified" in ok.stdout, ok.stdout
    other = portside("verify", ref, "--key", "cosign.pub", *_login(server), cwd=second, stdin=ADMIN[1])
    assert other.returncode == 1 and "signed by a key this project does not trust" in other.stdout, other.stdout

    # Both kinds side by side: each listed with its kind, either verifying suffices.
    assert portside("sign", ref, *_login(server), cwd=second, stdin=ADMIN[1]).returncode == 0
    both = portside("verify", ref, "--key", "cosign.pub", *_login(server), cwd=second, stdin=ADMIN[1])
    assert both.returncode == 0, both.stderr
    assert f"(cosign signature, tag {cosign.signature_tag(image.digest)}): verified" in both.stdout, both.stdout
    assert "(sigstore bundle, referrer" in both.stdout and "not verified" in both.stdout


def test_verify_reads_the_bundle_the_real_cosign_made(server: Portside) -> None:
    from tests.mgmt.test_signature_policy import COSIGN_BUNDLE, GADGET, _push_tree
    from tests.trust.fixtures import Layout

    repo = f"library/gadget{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        _push_tree(registry, repo, Layout(GADGET), COSIGN_BUNDLE[0], "v1")
        _push_tree(registry, repo, Layout(GADGET), COSIGN_BUNDLE[1])
    ref = f"{server.host}/{repo}:v1"
    good = portside("verify", ref, "--key", str(GADGET / "cosign.pub"), cwd=GADGET)
    assert good.returncode == 0, good.stderr
    assert f"(sigstore bundle, referrer {COSIGN_BUNDLE[1]}): verified" in good.stdout
    wrong = portside("verify", ref, "--key", str(GADGET / "cosign-wrong.pub"), cwd=GADGET)
    assert wrong.returncode == 1 and "not verified" in wrong.stdout


def test_the_registrys_signature_policy_accepts_a_portside_bundle(server: Portside, tmp_path: Path) -> None:
    from tests.mgmt.test_signature_policy import _refused

    keys, other = _keys(tmp_path / "keys"), _keys(tmp_path / "other")
    project = f"bundled{uuid.uuid4().hex[:8]}"
    accept = {"Accept": oci.OCI_MANIFEST}

    def trust(directory: Path) -> None:
        with httpx.Client(base_url=f"{server.url}/api/v2.0", auth=ADMIN, timeout=60) as api:
            key = {"name": "portside", "public_key": (directory / "cosign.pub").read_text()}
            assert api.put(f"/projects/{project}/trust", json={"cosign_keys": [key]}).status_code == 200

    def pull(repository: str) -> httpx.Response:
        with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
            return registry.get(f"/v2/{project}/{repository}/manifests/v1", headers=accept)

    with httpx.Client(base_url=f"{server.url}/api/v2.0", auth=ADMIN, timeout=60) as api:
        metadata = {"public": "false", "require_signature": "cosign"}
        assert api.post("/projects", json={"project_name": project, "metadata": metadata}).status_code == 201
    trust(keys)
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        image = oci.image_manifest()
        for repository in ("app", "tampered"):
            oci.push_manifest(registry, f"{project}/{repository}", image, "v1")
    assert "signatures found: 0" in _refused(pull("app"))
    done = portside("sign", f"{server.host}/{project}/app:v1", "--bundle", *_login(server), cwd=keys, stdin=ADMIN[1])
    assert done.returncode == 0, done.stderr
    assert pull("app").status_code == 200
    with httpx.Client(base_url=f"{server.url}/api/v2.0", auth=ADMIN, timeout=60) as api:
        listed = api.get(f"/projects/{project}/repositories/app/artifacts/v1/signatures").json()
    assert [(s["kind"], s["verified"]) for s in listed] == [("cosign-bundle", True)], listed

    # Another key than the one that signed: refused as signed by an untrusted key.
    trust(other)
    message = _refused(pull("app"))
    assert "cosign-bundle: signed by a key this project does not trust" in message, message
    trust(keys)

    # The same bundle with its statement changed (another subject's digest added), pushed
    # as its own referrer: refused as altered, the trusted key named by its hint.
    [referrer] = _referrers(server, f"{project}/app", image.digest)
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        manifest = registry.get(f"/v2/{project}/app/manifests/{referrer['digest']}", headers=accept).json()
        document = json.loads(registry.get(f"/v2/{project}/app/blobs/{manifest['layers'][0]['digest']}").content)
        statement = json.loads(base64.b64decode(document["dsseEnvelope"]["payload"]))
        statement["subject"].append({"name": "elsewhere", "digest": {"sha256": "0" * 64}})
        document["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
        tampered = json.dumps(document).encode()
        manifest["layers"][0].update(size=len(tampered), digest=oci.digest(tampered))
        oci.push_blob(registry, f"{project}/tampered", tampered)
        oci.push_blob(registry, f"{project}/tampered", b"{}")
        body = json.dumps(manifest).encode()
        r = registry.put(
            f"/v2/{project}/tampered/manifests/{oci.digest(body)}",
            content=body,
            headers={"content-type": oci.OCI_MANIFEST},
        )
        assert r.status_code == 201, r.text
    message = _refused(pull("tampered"))
    assert "cosign-bundle: signature does not verify: the payload was altered" in message, message


def _manifest(client: httpx.Client, repository: str, reference: str) -> tuple[dict[str, Any], bytes]:
    r = client.get(
        f"/v2/{repository}/manifests/{reference}",
        headers={"Accept": f"{oci.OCI_MANIFEST}, {oci.OCI_INDEX}"},
    )
    assert r.status_code == 200, r.text
    return r.json(), r.content


def test_sign_bundle_keeps_the_fallback_tag_on_a_registry_without_referrers(
    distribution: Distribution, tmp_path: Path
) -> None:
    """Debian's Distribution (2.8) has no referrers API: the bundle is listed under the
    `sha256-<hex>` tag, as the distribution spec's fallback says."""
    keys, other = _keys(tmp_path / "keys"), _keys(tmp_path / "other")
    repository = f"team/app{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=distribution.url, timeout=30) as client:
        image = oci.push_image(client, repository, "v1")
        assert client.get(f"/v2/{repository}/referrers/{image.digest}").status_code == 404
        ref = f"{distribution.host}/{repository}:v1"
        tag = "sha256-" + image.digest.removeprefix("sha256:")
        signed = portside("sign", ref, "--bundle", cwd=keys)
        assert signed.returncode == 0, signed.stderr
        assert f"listed under {repository}:{tag}" in signed.stdout, signed.stdout
        index, _ = _manifest(client, repository, tag)
        [entry] = index["manifests"]
        referrer, body = _manifest(client, repository, entry["digest"])
        assert entry["artifactType"] == BUNDLE_TYPE and entry["annotations"] == referrer["annotations"]
        assert entry["size"] == len(body)
        assert referrer["subject"]["digest"] == image.digest
        sig = client.head(f"/v2/{repository}/manifests/{cosign.signature_tag(image.digest)}")
        assert sig.status_code == 404  # the bundle only, no `.sig`

        # A second bundle joins the list; the first stays.
        assert portside("sign", ref, "--bundle", cwd=other).returncode == 0
        entries = _manifest(client, repository, tag)[0]["manifests"]
        assert [e["digest"] for e in entries][:1] == [entry["digest"]] and len(entries) == 2

        for directory in (keys, other):
            done = portside("verify", ref, cwd=directory)
            assert done.returncode == 0, done.stderr
            assert done.stdout.count("(sigstore bundle, referrer") == 2 and "): verified" in done.stdout

        # A tag in the way that is no index is not overwritten.
        second = oci.push_image(client, repository, "v2")
        r = client.put(
            f"/v2/{repository}/manifests/sha256-{second.digest.removeprefix('sha256:')}",
            content=image.body,
            headers={"content-type": image.media_type},
        )
        assert r.status_code == 201, r.text
        refused = portside("sign", f"{distribution.host}/{repository}:v2", "--bundle", cwd=keys)
        assert refused.returncode == 1 and "no referrers index" in refused.stderr, refused.stderr


def test_verify_finds_cosigns_bundle_under_its_fallback_tag(distribution: Distribution, tmp_path: Path) -> None:
    from tests.mgmt.test_signature_policy import COSIGN_BUNDLE, GADGET, _push_tree
    from tests.trust.fixtures import Layout

    layout = Layout(GADGET)
    image, referrer = COSIGN_BUNDLE
    fallback_tag = "sha256-" + image.removeprefix("sha256:")
    fallback = layout.tagged(fallback_tag)
    repository = f"gadget{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=distribution.url, timeout=30) as client:
        _push_tree(client, repository, layout, image, "v1")
        _push_tree(client, repository, layout, referrer)
        _push_tree(client, repository, layout, fallback, fallback_tag)
    ref = f"{distribution.host}/{repository}:v1"
    # cosign lists its bundle with the empty config's artifactType; the manifest says what it is.
    assert layout.json(fallback)["manifests"][0]["artifactType"] == "application/vnd.oci.empty.v1+json"
    good = portside("verify", ref, "--key", str(GADGET / "cosign.pub"), cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert f"(sigstore bundle, referrer {referrer}): verified" in good.stdout
    wrong = portside("verify", ref, "--key", str(GADGET / "cosign-wrong.pub"), cwd=tmp_path)
    assert wrong.returncode == 1
