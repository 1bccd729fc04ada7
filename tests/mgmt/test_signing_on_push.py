"""Signing on push with keys Portside does not hold, on a live server: a KMS-style command
(a wrapper script around the real `openssl`, over a key file only openssl reads) signs
what is pushed into a project that signs on push, the project's pull policy lets it
through, `portside verify --key` and the trust core accept it, and `/projects/{p}/trust`
shows that key; a command that fails, hangs or answers garbage leaves the image unsigned
and says why in the log, without holding up the push; a project may pick the plug-in
(an entry point of a distribution on the server's path) or Portside's own key instead;
a signer Portside cannot use stops it at start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from portside.trust.cosign import SignatureLayer
from portside.trust.cosign import verify as cosign_verify
from portside.trust.keys import load_public_key
from tests.api import oci
from tests.mgmt import kms_plugin
from tests.servers import ADMIN_PASSWORD, Portside, free_port

ADMIN = ("admin", ADMIN_PASSWORD)
ACCEPT = {"Accept": ", ".join([oci.OCI_MANIFEST, oci.OCI_INDEX])}
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 4  # seconds the server gives the command
# A site's wrapper around its KMS client. Here the client is openssl, and the mode file is
# how these tests make it misbehave.
WRAPPER = """#!/bin/sh
case "$(cat "$0.mode" 2>/dev/null)" in
  fail) echo "kms: access denied for this role" >&2; exit 1 ;;
  slow) exec sleep 30 ;;
  garbage) echo "not a signature" ;;
  *) exec openssl dgst -sha256 -sign "$1" ;;
esac
"""


def _openssl_key(directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    private, public = directory / "key.pem", directory / "pub.pem"
    subprocess.run(
        ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(private)],
        check=True,
        capture_output=True,
    )
    subprocess.run(["openssl", "pkey", "-in", str(private), "-pubout", "-out", str(public)], check=True)
    return private, public


@pytest.fixture(scope="module")
def kms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("kms")
    _openssl_key(directory)
    _openssl_key(directory / "plugin")
    wrapper = directory / "kms-sign"
    wrapper.write_text(WRAPPER)
    wrapper.chmod(0o755)
    kms_plugin.install(directory / "site")
    return directory


def _signer_env(kms: Path) -> dict[str, str]:
    return {
        "PORTSIDE_PUSH_SIGNER": "command",
        "PORTSIDE_PUSH_SIGNER_COMMAND": json.dumps([str(kms / "kms-sign"), str(kms / "key.pem")]),
        "PORTSIDE_PUSH_SIGNER_PUBLIC_KEY_FILE": str(kms / "pub.pem"),
        "PORTSIDE_PUSH_SIGNER_TIMEOUT_SECONDS": str(TIMEOUT),
        "PORTSIDE_PUSH_SIGNER_PLUGIN": "testkms",
        "PORTSIDE_PUSH_SIGNER_PLUGIN_OPTIONS": json.dumps({"key_file": str(kms / "plugin" / "key.pem")}),
        # The plug-in's distribution, and the package its entry point names.
        "PYTHONPATH": os.pathsep.join([str(kms / "site"), str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }


@pytest.fixture(scope="module")
def server(kms: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    started = Portside(
        data_dir=tmp_path_factory.mktemp("signing-on-push") / "data", open_registry=False, env=_signer_env(kms)
    ).start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def mode(kms: Path) -> Iterator[Path]:
    """The wrapper's mode file; the wrapper signs again after the test."""
    path = kms / "kms-sign.mode"
    yield path
    path.unlink(missing_ok=True)


def _project(server: Portside, **metadata: str) -> str:
    name = f"kms{uuid.uuid4().hex[:8]}"
    body = {"project_name": name, "metadata": {"enable_content_trust_cosign": "true", "sign_on_push": "true"}}
    body["metadata"].update(metadata)
    with httpx.Client(base_url=f"{server.url}/api/v2.0", auth=ADMIN, timeout=60) as client:
        r = client.post("/projects", json=body)
        assert r.status_code == 201, r.text
    return name


def _push(server: Portside, repository: str) -> tuple[oci.Manifest, float]:
    """Push a new image as `repository:v1`; it and the seconds the push took."""
    image = oci.image_manifest()
    started = time.monotonic()
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        oci.push_manifest(registry, repository, image, "v1")
    return image, time.monotonic() - started


def _signature(server: Portside, repository: str, digest: str) -> tuple[dict[str, object], bytes]:
    tag = digest.replace(":", "-") + ".sig"
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        while (r := registry.get(f"/v2/{repository}/manifests/{tag}", headers=ACCEPT)).status_code != 200:
            assert time.monotonic() < deadline, f"no signature was written:\n{server.log()[-3000:]}"
            time.sleep(0.1)
        layer = r.json()["layers"][-1]
        return layer, registry.get(f"/v2/{repository}/blobs/{layer['digest']}").content


def _pull(server: Portside, repository: str) -> httpx.Response:
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        return registry.get(f"/v2/{repository}/manifests/v1", headers=ACCEPT)


def _server_key(server: Portside, project: str) -> str:
    with httpx.Client(base_url=f"{server.url}/api/v2.0", auth=ADMIN, timeout=60) as client:
        return str(client.get(f"/projects/{project}/trust").json()["server_signing_key"])


def _key_id(pem: str | bytes) -> str:
    return load_public_key(pem).key_id


def test_the_kms_command_signs_pushes_and_its_signatures_pass_the_policy_and_portside_verify(
    server: Portside, kms: Path
) -> None:
    project = _project(server)
    image, _ = _push(server, f"{project}/hello")
    layer, payload = _signature(server, f"{project}/hello", image.digest)
    assert _pull(server, f"{project}/hello").status_code == 200
    # The trust endpoint shows the command's key, the one its signatures verify with.
    assert _key_id(_server_key(server, project)) == _key_id((kms / "pub.pem").read_bytes())
    verdict = cosign_verify(
        SignatureLayer.from_descriptor(layer), payload, image.digest, [load_public_key((kms / "pub.pem").read_bytes())]
    )
    assert verdict.verified, verdict.reason
    done = subprocess.run(
        [sys.executable, "-m", "portside", "verify", f"{server.host}/{project}/hello:v1"]
        + ["--key", str(kms / "pub.pem"), "-u", "admin", "--password-stdin"],
        input=ADMIN_PASSWORD,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(kms)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verified" in done.stdout


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        ("fail", "kms-sign exited with status 1: kms: access denied for this role"),
        ("slow", f"kms-sign did not answer within {TIMEOUT}s"),
        ("garbage", "the command signer's signature does not verify with its public key"),
    ],
)
def test_a_command_that_fails_leaves_the_image_unsigned_and_the_push_unhurried(
    server: Portside, mode: Path, behaviour: str, reason: str
) -> None:
    mode.write_text(behaviour)
    project = _project(server)
    image, took = _push(server, f"{project}/hello")
    assert took < TIMEOUT - 1, f"the push waited for the signer ({took:.1f}s)"
    said = f"{project}/hello@{image.digest} stays unsigned: {reason}"
    deadline = time.monotonic() + TIMEOUT + 20
    while said not in server.log():
        assert time.monotonic() < deadline, f"no {said!r} in the log:\n{server.log()[-3000:]}"
        time.sleep(0.2)
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        tag = image.digest.replace(":", "-") + ".sig"
        assert registry.get(f"/v2/{project}/hello/manifests/{tag}", headers=ACCEPT).status_code == 404
    refused = _pull(server, f"{project}/hello")
    assert refused.status_code == 412 and "signatures found: 0" in refused.text, refused.text


def test_a_project_may_sign_with_the_plugin_or_portsides_own_key(server: Portside, kms: Path) -> None:
    plugin_key = kms / "plugin" / "pub.pem"
    by_plugin = _project(server, sign_on_push_signer="plugin")
    image, _ = _push(server, f"{by_plugin}/hello")
    layer, payload = _signature(server, f"{by_plugin}/hello", image.digest)
    assert _key_id(_server_key(server, by_plugin)) == _key_id(plugin_key.read_bytes())
    assert cosign_verify(
        SignatureLayer.from_descriptor(layer), payload, image.digest, [load_public_key(plugin_key.read_bytes())]
    ).verified
    assert _pull(server, f"{by_plugin}/hello").status_code == 200

    own = _project(server, sign_on_push_signer="portside")
    image, _ = _push(server, f"{own}/hello")
    _signature(server, f"{own}/hello", image.digest)
    assert _pull(server, f"{own}/hello").status_code == 200
    assert _key_id(_server_key(server, own)) not in (
        _key_id(plugin_key.read_bytes()),
        _key_id((kms / "pub.pem").read_bytes()),
    )

    with httpx.Client(base_url=f"{server.url}/api/v2.0", auth=ADMIN, timeout=60) as client:
        r = client.put(f"/projects/{own}", json={"metadata": {"sign_on_push_signer": "vault"}})
        assert r.status_code == 400 and "sign_on_push_signer must be one of portside, command, plugin" in r.text


def _serve(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portside", "serve", "--listen", f"127.0.0.1:{free_port()}"]
        + ["--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PORTSIDE_ADMIN_PASSWORD": ADMIN_PASSWORD, "PORTSIDE_WORKERS": "1", **env},
    )


def test_start_up_refuses_a_signer_it_cannot_use(tmp_path: Path, kms: Path) -> None:
    missing = _serve(tmp_path, {"PORTSIDE_PUSH_SIGNER": "plugin", "PORTSIDE_PUSH_SIGNER_PLUGIN": "vault"})
    assert missing.returncode == 2
    assert "portside: signing on push: no signer plug-in 'vault' is installed" in missing.stderr, missing.stderr
    incomplete = _serve(tmp_path, {"PORTSIDE_PUSH_SIGNER": "command"})
    assert incomplete.returncode == 2
    assert "push_signer command needs push_signer_command" in incomplete.stderr, incomplete.stderr
    no_key = _serve(
        tmp_path,
        {
            "PORTSIDE_PUSH_SIGNER_COMMAND": json.dumps([str(kms / "kms-sign"), str(kms / "key.pem")]),
            "PORTSIDE_PUSH_SIGNER_PUBLIC_KEY_COMMAND": '["false"]',
        },
    )
    assert no_key.returncode == 2
    assert "portside: signing on push: the command signer: false exited with status 1" in no_key.stderr, no_key.stderr


def test_the_settings_page_offers_the_configured_signers(server: Portside, kms: Path) -> None:
    from tests.ui.test_projects import Browser

    project = _project(server, sign_on_push="true")
    browser = Browser(server, ADMIN)
    try:
        page = browser.get(f"/projects/{project}/settings").text
        assert "The registry&#39;s default (command)" in page or "The registry's default (command)" in page
        for kind in ("portside", "command", "plugin"):
            assert f'<option value="{kind}">' in page, kind
        saved = browser.post(
            f"/projects/{project}/settings", {"part": "trust", "sign_on_push": "on", "sign_on_push_signer": "plugin"}
        )
        assert saved.status_code == 303
        with httpx.Client(base_url=f"{server.url}/api/v2.0", auth=ADMIN, timeout=60) as client:
            metadata = client.get(f"/projects/{project}").json()["metadata"]
        assert metadata["sign_on_push_signer"] == "plugin" and metadata["sign_on_push"] == "true"
        assert '<option value="plugin" selected>' in browser.get(f"/projects/{project}/settings").text
        # Back to the registry's default: the metadata is emptied, not set to a kind.
        browser.post(
            f"/projects/{project}/settings", {"part": "trust", "sign_on_push": "on", "sign_on_push_signer": ""}
        )
        with httpx.Client(base_url=f"{server.url}/api/v2.0", auth=ADMIN, timeout=60) as client:
            assert client.get(f"/projects/{project}").json()["metadata"].get("sign_on_push_signer", "") == ""
    finally:
        browser.close()
