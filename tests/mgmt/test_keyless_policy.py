"""Keyless (Fulcio-certified) cosign signatures through the pull policy of a live server:
the conforma test image, signed by the real cosign against a private Sigstore, pushed as it
is with its signature under cosign's tag, passes a project that trusts that Sigstore's root
and the signing identity, and is refused, with the reason, when the identity, the issuer or
the root is another, when no root was imported, and when the signature was tampered with."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api import oci
from tests.mgmt.test_signature_policy import _api, _project, _pull, _push_tree, _refused, _registry, _trust
from tests.scan.scanning import scanning_server
from tests.servers import Portside
from tests.trust.fixtures import PUBLIC_GOOD_ROOT, SIGNED, Layout

CONFORMA = SIGNED / "cosign-conforma-keyless-testimage"
IMAGE = "sha256:bb2863eb5a15ce3551748cd6aecd40db02c96c0276ae062354b415ad37330fee"
SIGS = "sha256:4912946aa9657bed0670396e6b0862038a1294225fac21be92a3938e0c62abe4"
SIG_TAG = IMAGE.replace(":", "-") + ".sig"
ROOT = json.loads((CONFORMA / "trusted_root.json").read_text())
SERVICE_ACCOUNT = "https://kubernetes.io/namespaces/default/serviceaccounts/default"
CLUSTER = "https://kubernetes.default.svc.cluster.local"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    with scanning_server(tmp_path_factory.mktemp("keyless-policy") / "data") as started:
        yield started


def _keyless_project(server: Portside, **metadata: str) -> str:
    """A project asking for cosign signatures, holding the image and its keyless signature."""
    project = _project(server, enable_content_trust_cosign="true", **metadata)
    layout = Layout(CONFORMA)
    with _registry(server) as registry:
        _push_tree(registry, f"{project}/hello", layout, IMAGE, "v1")
        _push_tree(registry, f"{project}/hello", layout, SIGS, SIG_TAG)
    return project


def _identity(subject: str = SERVICE_ACCOUNT, issuer: str = CLUSTER, regexp: bool = False) -> dict[str, Any]:
    return {"identities": [{"issuer": issuer, "subject": subject, "subject_regexp": regexp}]}


def test_a_keyless_signature_passes_with_the_root_and_identity_the_project_trusts(server: Portside) -> None:
    project = _keyless_project(server)
    assert "signatures found: 1" in _refused(_pull(server, project))

    _trust(server, project, keyless=_identity(), trusted_root=ROOT)
    assert _pull(server, project).status_code == 200
    assert _pull(server, project, IMAGE).status_code == 200
    with _api(server) as client:
        path = f"/projects/{project}/repositories/hello/artifacts/v1"
        listed = client.get(f"{path}/signatures").json()
        dry = client.get(f"{path}/policy").json()
    assert [(s["digest"], s["kind"], s["verified"]) for s in listed] == [(SIGS, "cosign", True)], listed
    signer = listed[0]["signatures"][0]["signer"]
    assert SERVICE_ACCOUNT in signer and CLUSTER in signer, listed
    assert dry["allowed"] is True

    # A subject pattern the identity matches as a whole.
    _trust(
        server,
        project,
        keyless=_identity(r"https://kubernetes\.io/namespaces/[^/]+/serviceaccounts/.*", regexp=True),
        trusted_root=ROOT,
    )
    assert _pull(server, project).status_code == 200


@pytest.mark.parametrize(
    ("keyless", "root", "reason"),
    [
        (_identity("https://kubernetes.io/namespaces/prod/serviceaccounts/deployer"), ROOT, "identity"),
        (_identity(issuer="https://token.actions.githubusercontent.com"), ROOT, "identity"),
        (_identity(r"https://kubernetes\.io/namespaces", regexp=True), ROOT, "identity"),
        (_identity(), "public-good", "Rekor the trusted root does not name"),
    ],
    ids=["other-subject", "other-issuer", "partial-pattern", "other-root"],
)
def test_a_keyless_signature_is_refused_for_another_identity_or_root(
    server: Portside, keyless: dict[str, Any], root: Any, reason: str
) -> None:
    project = _keyless_project(server)
    trusted_root = json.loads(PUBLIC_GOOD_ROOT.read_text()) if root == "public-good" else root
    _trust(server, project, keyless=keyless, trusted_root=trusted_root)
    message = _refused(_pull(server, project))
    assert "signatures found: 1, none verifies" in message and reason in message, message


def test_identities_without_a_trusted_root_verify_nothing(server: Portside) -> None:
    project = _keyless_project(server)
    _trust(server, project, keyless=_identity())
    message = _refused(_pull(server, project))
    assert "signatures found: 1" in message, message


def test_a_tampered_keyless_signature_is_refused(server: Portside) -> None:
    project = _project(server, enable_content_trust_cosign="true")
    layout = Layout(CONFORMA)
    signature = layout.json(SIGS)
    layer = signature["layers"][0]
    annotation = "dev.cosignproject.cosign/signature"
    raw = bytearray(layer["annotations"][annotation].encode())
    raw[10] = ord("A") if raw[10] != ord("A") else ord("B")
    layer["annotations"][annotation] = raw.decode()
    body = json.dumps(signature).encode()
    with _registry(server) as registry:
        _push_tree(registry, f"{project}/hello", layout, IMAGE, "v1")
        for descriptor in [signature["config"], *signature["layers"]]:
            data = layout.blob(descriptor["digest"])
            assert data is not None
            oci.push_blob(registry, f"{project}/hello", data)
        r = registry.put(
            f"/v2/{project}/hello/manifests/{SIG_TAG}", content=body, headers={"content-type": oci.OCI_MANIFEST}
        )
        assert r.status_code == 201, r.text
    _trust(server, project, keyless=_identity(), trusted_root=ROOT)
    message = _refused(_pull(server, project))
    assert "none verifies" in message, message


@pytest.mark.parametrize(
    ("notary", "message"),
    [
        ({"root_keys": [{"repository": "app", "keys": ["not-a-key"]}]}, "notary.root_keys[0].keys[0]"),
        ({"root_keys": [{"repository": "App!", "keys": ["ab" * 32]}]}, "notary.root_keys[0].repository"),
        ({"root_keys": [{"repository": "app", "keys": []}]}, "notary.root_keys[0].keys must list"),
        (
            {
                "root_keys": [
                    {"repository": "app", "keys": ["-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"]}
                ]
            },
            "is not a PEM key",
        ),
        (
            {"root_keys": [{"repository": "*", "keys": ["ab" * 32]}, {"repository": "*", "keys": ["cd" * 32]}]},
            "listed once",
        ),
        ({"pins": []}, "unknown notary field"),
    ],
)
def test_notary_root_pins_are_checked_before_they_are_kept(server: Portside, notary: Any, message: str) -> None:
    project = _project(server)
    with _api(server) as client:
        r = client.put(f"/projects/{project}/trust", json={"notary": notary})
        assert r.status_code == 400 and message in r.text, r.text
        pinned = {"root_keys": [{"repository": "app", "keys": ["AB" * 32]}]}
        assert client.put(f"/projects/{project}/trust", json={"notary": pinned}).status_code == 200
        kept = client.get(f"/projects/{project}/trust").json()["notary"]
    assert kept == {"root_keys": [{"repository": "app", "keys": ["ab" * 32]}]}, kept
