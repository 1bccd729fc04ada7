"""The signature pull policy on a live server, with images signed by the real cosign (the
shared fixtures, pushed as they are): a project that asks for cosign signatures
(`enable_content_trust_cosign`, or `require_signature`) refuses 412 PROJECTPOLICYVIOLATION
what is unsigned, signed by a key it does not trust, or whose signature was tampered
with, saying which, through the API and skopeo; it lets through what a key of its trust
policy (or the system's defaults) verifies; signature manifests themselves stay readable;
the dry run, the signatures listing and Harbor's accessories say the same."""

from __future__ import annotations

import base64
import html
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from portside.trust.cosign import SignatureLayer
from portside.trust.cosign import verify as cosign_verify
from portside.trust.keys import load_public_key
from portside.trust.notation import ARTIFACT_TYPE, COSE
from tests.api import oci
from tests.scan.scanning import scanning_server
from tests.servers import ADMIN_PASSWORD, Portside
from tests.trust import notation_cose
from tests.trust.fixtures import CONTAINERS_IMAGE, SIGNED, Layout

ADMIN = ("admin", ADMIN_PASSWORD)
ACCEPT = {
    "Accept": ", ".join([oci.OCI_MANIFEST, oci.OCI_INDEX, "application/vnd.docker.distribution.manifest.v2+json"])
}
HELLO = SIGNED / "cosign-singularity-hello-world"
IMAGE = "sha256:432f982638b3aefab73cc58ab28f5c16e96fdb504e8c134fc58dff4bae8bf338"
SIG = "sha256:f764ee0fbe0e49555602e3c34e82be58a63da388204d93f948710c74a9730682"
SIG_TAG = "sha256-432f982638b3aefab73cc58ab28f5c16e96fdb504e8c134fc58dff4bae8bf338.sig"
TRUSTED_KEY = (HELLO / "cosign.pub").read_text()
OTHER_KEY = (CONTAINERS_IMAGE / "cosign2.pub").read_text()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    with scanning_server(tmp_path_factory.mktemp("signature-policy") / "data") as started:
        yield started


def _api(server: Portside) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/api/v2.0", auth=ADMIN, timeout=60)


def _registry(server: Portside) -> httpx.Client:
    return httpx.Client(base_url=server.url, auth=ADMIN, timeout=60)


def _push_raw(
    client: httpx.Client, repo: str, layout: Layout, digest: str, reference: str, body: bytes | None = None
) -> None:
    payload = body if body is not None else layout.blob(digest)
    assert payload is not None
    document = json.loads(payload)
    for descriptor in [document.get("config"), *document.get("layers", [])]:
        if descriptor:
            data = layout.blob(descriptor["digest"])
            assert data is not None
            oci.push_blob(client, repo, data)
    r = client.put(
        f"/v2/{repo}/manifests/{reference}", content=payload, headers={"content-type": document["mediaType"]}
    )
    assert r.status_code == 201, r.text


def _project(server: Portside, **metadata: str) -> str:
    name = f"trust{uuid.uuid4().hex[:8]}"
    with _api(server) as client:
        r = client.post("/projects", json={"project_name": name, "metadata": {"public": "false", **metadata}})
        assert r.status_code == 201, r.text
    return name


def _signed_image(server: Portside, project: str, *, signature: bytes | None = None) -> None:
    layout = Layout(HELLO)
    with _registry(server) as registry:
        _push_raw(registry, f"{project}/hello", layout, IMAGE, "v1")
        _push_raw(registry, f"{project}/hello", layout, SIG, SIG_TAG, signature)


def _pull(server: Portside, project: str, reference: str = "v1") -> httpx.Response:
    with _registry(server) as registry:
        return registry.get(f"/v2/{project}/hello/manifests/{reference}", headers=ACCEPT)


def _refused(response: httpx.Response) -> str:
    assert response.status_code == 412, response.text
    error = response.json()["errors"][0]
    assert error["code"] == "PROJECTPOLICYVIOLATION"
    return str(error["message"])


def _trust(server: Portside, project: str, **document: Any) -> dict[str, Any]:
    with _api(server) as client:
        r = client.put(f"/projects/{project}/trust", json=document)
        assert r.status_code == 200, r.text
        return dict(r.json())


def test_unsigned_and_untrusted_images_are_refused_and_a_trusted_key_lets_them_through(server: Portside) -> None:
    project = _project(server, enable_content_trust_cosign="true")
    with _registry(server) as registry:
        layout = Layout(HELLO)
        _push_raw(registry, f"{project}/hello", layout, IMAGE, "v1")
    message = _refused(_pull(server, project))
    assert "not signed by cosign" in message and "signatures found: 0" in message, message

    _signed_image(server, project)
    message = _refused(_pull(server, project))  # signed, but the project trusts no key yet
    assert "signatures found: 1, none verifies" in message, message
    # The signature itself, and the image's layers' HEAD, stay readable to verifiers.
    assert _pull(server, project, SIG_TAG).status_code == 200

    _trust(server, project, cosign_keys=[{"name": "other", "public_key": OTHER_KEY}])
    assert "none verifies" in _refused(_pull(server, project))

    with _api(server) as client:
        r = client.post(f"/projects/{project}/trust/keys", json={"name": "singularity", "public_key": TRUSTED_KEY})
        assert r.status_code == 201, r.text
        key_id = r.json()["id"]
    for reference in ("v1", IMAGE):
        assert _pull(server, project, reference).status_code == 200

    with _api(server) as client:
        path = f"/projects/{project}/repositories/hello/artifacts/v1"
        dry = client.get(f"{path}/policy").json()
        assert dry["allowed"] is True and {r["rule"]: r["enabled"] for r in dry["rules"]}["signature"] is True
        signatures = client.get(f"{path}/signatures").json()
        assert [s["kind"] for s in signatures] == ["cosign"] and signatures[0]["verified"] is True
        assert signatures[0]["signatures"][0]["signer"], signatures
        accessories = client.get(f"{path}/accessories")
        assert accessories.headers["X-Total-Count"] == "1"
        item = accessories.json()[0]
        assert item["type"] == "signature.cosign" and item["digest"] == SIG and item["verified"] is True
        assert item["subject_artifact_digest"] == IMAGE

        # Removing the key refuses the pull again at once (the policy is read anew).
        assert client.delete(f"/projects/{project}/trust/keys/{key_id}").status_code == 200
    _refused(_pull(server, project))


def test_a_tampered_signature_fails_for_its_reason(server: Portside) -> None:
    project = _project(server, require_signature="cosign")
    layout = Layout(HELLO)
    document = layout.json(SIG)
    layer = document["layers"][0]
    signature = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
    forged = signature[:-1] + bytes([signature[-1] ^ 1])
    layer["annotations"]["dev.cosignproject.cosign/signature"] = base64.b64encode(forged).decode()
    _signed_image(server, project, signature=json.dumps(document).encode())
    _trust(server, project, cosign_keys=[{"name": "singularity", "public_key": TRUSTED_KEY}])
    message = _refused(_pull(server, project))
    assert "none verifies" in message and "policy 'require_signature=cosign'" in message, message


def test_the_systems_keys_count_for_projects_that_take_the_defaults(server: Portside) -> None:
    project = _project(server, enable_content_trust_cosign="true")
    _signed_image(server, project)
    with _api(server) as client:
        r = client.put("/system/trust", json={"cosign_keys": [{"name": "company", "public_key": TRUSTED_KEY}]})
        assert r.status_code == 200, r.text
        assert r.json()["cosign_keys"][0]["algorithm"] == "ECDSA P-256"
    try:
        assert _pull(server, project).status_code == 200
        _trust(server, project, use_system_defaults=False)
        _refused(_pull(server, project))
    finally:
        with _api(server) as client:
            client.put("/system/trust", json={})


def _skopeo_inspect(server: Portside, image: str) -> subprocess.CompletedProcess[str]:
    host = server.url.removeprefix("http://")
    command = ["skopeo", "inspect", "--raw", "--tls-verify=false", "--creds", f"{ADMIN[0]}:{ADMIN[1]}"]
    return subprocess.run([*command, f"docker://{host}/{image}"], capture_output=True, text=True, timeout=120)


def test_skopeo_gets_the_refusal(server: Portside) -> None:
    project = _project(server, enable_content_trust_cosign="true")
    _signed_image(server, project)
    inspected = _skopeo_inspect(server, f"{project}/hello:v1")
    assert inspected.returncode != 0 and "not signed by cosign" in inspected.stderr, inspected.stderr
    _trust(server, project, cosign_keys=[{"name": "singularity", "public_key": TRUSTED_KEY}])
    inspected = _skopeo_inspect(server, f"{project}/hello:v1")
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["config"]["digest"].startswith("sha256:")


def test_bad_trust_documents_are_refused_and_change_nothing(server: Portside) -> None:
    project = _project(server)
    with _api(server) as client:
        for body, word in (
            ({"cosign_keys": [{"name": "x", "public_key": "not a key"}]}, "public_key"),
            ({"cosign_keys": [{"name": "a b", "public_key": TRUSTED_KEY}]}, "name"),
            ({"keyless": {"identities": [{"issuer": "https://i", "subject": "(", "subject_regexp": True}]}}, "regular"),
            ({"notation": {"certificates": [{"name": "c", "type": "ca", "certificate": "junk"}]}}, "certificate"),
            ({"surprise": 1}, "unknown"),
        ):
            r = client.put(f"/projects/{project}/trust", json=body)
            assert r.status_code == 400 and word in r.text, (body, r.text)
        assert client.get(f"/projects/{project}/trust").json()["cosign_keys"] == []
        r = client.put(f"/projects/{project}", json={"metadata": {"require_signature": "gpg"}})
        assert r.status_code == 400 and "require_signature" in r.text


def test_the_artifact_page_shows_each_signature_and_why_a_pull_is_refused(server: Portside) -> None:
    from tests.ui.test_admin import Browser

    project = _project(server, enable_content_trust_cosign="true")
    _signed_image(server, project)
    browser = Browser(server, ADMIN)
    try:
        page = browser.get(f"/projects/{project}/repositories/hello/-/artifacts/{IMAGE}")
        assert page.status_code == 200, page.text
        text = html.unescape(page.text)
        assert "A pull of this artifact is refused by the project's policy." in text
        assert "not signed by cosign" in text and ">failed<" in text
        _trust(server, project, cosign_keys=[{"name": "singularity", "public_key": TRUSTED_KEY}])
        text = html.unescape(browser.get(f"/projects/{project}/repositories/hello/-/artifacts/{IMAGE}").text)
        assert ">verified<" in text and "refused by the project's policy" not in text
    finally:
        browser.close()


def test_the_settings_page_edits_the_signature_policy_and_its_keys(server: Portside) -> None:
    from tests.ui.test_admin import Browser

    project = _project(server)
    _signed_image(server, project)
    browser = Browser(server, ADMIN)
    settings = f"/projects/{project}/settings"
    try:
        assert "This project trusts no cosign key" in browser.get(settings).text
        r = browser.post(settings, {"part": "trust", "enable_content_trust_cosign": "on", "use_system_defaults": "on"})
        assert r.status_code == 303, r.text
        _refused(_pull(server, project))
        bad = browser.post(settings, {"part": "trust-key-add", "key_name": "ci", "public_key": "not a key"})
        assert bad.status_code == 400 and "public_key" in html.unescape(bad.text)
        r = browser.post(settings, {"part": "trust-key-add", "key_name": "ci", "public_key": TRUSTED_KEY})
        assert r.status_code == 303, r.text
        assert _pull(server, project).status_code == 200
        page = html.unescape(browser.get(settings).text)
        assert "ECDSA P-256" in page and ">ci<" in page
        with _api(server) as client:
            key_id = client.get(f"/projects/{project}/trust").json()["cosign_keys"][0]["id"]
        assert browser.post(settings, {"part": "trust-key-remove", "key_id": key_id}).status_code == 303
        _refused(_pull(server, project))
        with _api(server) as client:
            assert client.get(f"/projects/{project}").json()["metadata"]["enable_content_trust_cosign"] == "true"
    finally:
        browser.close()


GADGET = SIGNED / "cosign-notation-inspektor-gadget-oci-store"
GADGET_KEY = (GADGET / "cosign.pub").read_text()
GADGET_WRONG_KEY = (GADGET / "cosign-wrong.pub").read_text()
NOTATION_CERT = (GADGET / "notation-test.io.crt").read_text()
NOTATION_WRONG_CERT = (GADGET / "notation-wrong-xyz.io.crt").read_text()
COSIGN_OCI11 = (
    "sha256:2f096beb75baadce98f52500552f1d7eabf19f4c35007869350d6f496084e992",
    "sha256:597cc6be74829b950036142f8b8ac8f14469658185ca3fb17e51eabcdb74c977",
)
COSIGN_BUNDLE = (
    "sha256:d217fb2d81d4314d48ade41ad3cad13324861d296e4e786e6498f3123951709c",
    "sha256:3dd951802bf189790e9a5cff9b269fd295896dbd3938f5518ec8f2e93c05fb57",
)
NOTATION = (
    "sha256:7418beed5ba60cb39d90e819b07c8ceb078a8dbedbdca53a8e9b01b3628fb988",
    "sha256:698ea4c298a5365a4542ef288f13dd290ff8691848351fabc9c7cd9730e11dd7",
)


def _push_tree(client: httpx.Client, repo: str, layout: Layout, digest: str, reference: str | None = None) -> None:
    """A manifest of the layout with what it needs: an index's children, a manifest's blobs."""
    payload = layout.blob(digest)
    assert payload is not None, digest
    document = json.loads(payload)
    for child in document.get("manifests", []):
        if layout.blob(child["digest"]) is not None:
            _push_tree(client, repo, layout, child["digest"])
    for descriptor in [document.get("config"), *document.get("layers", [])]:
        data = layout.blob(descriptor["digest"]) if descriptor else None
        if data is not None:
            oci.push_blob(client, repo, data)
    media_type = document.get("mediaType") or "application/vnd.oci.image.manifest.v1+json"
    r = client.put(f"/v2/{repo}/manifests/{reference or digest}", content=payload, headers={"content-type": media_type})
    assert r.status_code == 201, r.text


def _gadget(server: Portside, project: str, image: tuple[str, str]) -> None:
    layout = Layout(GADGET)
    with _registry(server) as registry:
        _push_tree(registry, f"{project}/hello", layout, image[0], "v1")
        _push_tree(registry, f"{project}/hello", layout, image[1])


@pytest.mark.parametrize("image", [COSIGN_OCI11, COSIGN_BUNDLE], ids=["cosign-oci11-referrer", "sigstore-bundle"])
def test_cosign_referrers_and_bundles_verify_with_the_projects_key(server: Portside, image: tuple[str, str]) -> None:
    project = _project(server, require_signature="cosign")
    _gadget(server, project, image)
    _trust(server, project, cosign_keys=[{"name": "wrong", "public_key": GADGET_WRONG_KEY}])
    assert "none verifies" in _refused(_pull(server, project))
    _trust(server, project, cosign_keys=[{"name": "gadget", "public_key": GADGET_KEY}])
    assert _pull(server, project).status_code == 200
    with _api(server) as client:
        listed = client.get(f"/projects/{project}/repositories/hello/artifacts/v1/signatures").json()
    assert [(s["digest"], s["verified"]) for s in listed] == [(image[1], True)], listed


def test_notation_signatures_verify_under_the_projects_trust_policy(server: Portside) -> None:
    project = _project(server, enable_content_trust="true")
    _gadget(server, project, NOTATION)
    assert "this project trusts no Notation certificate" in _refused(_pull(server, project))
    certificate = {"name": "testio", "type": "ca", "certificate": NOTATION_WRONG_CERT}
    _trust(server, project, notation={"certificates": [certificate], "verification_level": "permissive"})
    assert "none verifies" in _refused(_pull(server, project))
    # The signing certificate was valid for one day in January 2026: strict verification
    # refuses it for that; permissive (as the upstream test's policy) only logs it.
    certificate = {"name": "testio", "type": "ca", "certificate": NOTATION_CERT}
    _trust(server, project, notation={"certificates": [certificate], "verification_level": "strict"})
    message = _refused(_pull(server, project))
    assert "authenticTimestamp validation failed" in message and "is not valid now" in message, message
    _trust(server, project, notation={"certificates": [certificate], "verification_level": "permissive"})
    assert _pull(server, project).status_code == 200
    with _api(server) as client:
        listed = client.get(f"/projects/{project}/repositories/hello/artifacts/v1/signatures").json()
    assert listed[0]["kind"] == "notation" and listed[0]["verified"] is True
    assert "test.io" in listed[0]["signatures"][0]["signer"], listed


def _cose_signed(server: Portside, project: str, signer: notation_cose.Signer, *, tampered: bool = False) -> str:
    """An image pushed as `hello:v1` with a Notation COSE signature referring to it."""
    with _registry(server) as registry:
        image = oci.image_manifest()
        oci.push_manifest(registry, f"{project}/hello", image, "v1")
        parts = notation_cose.parts(signer, image.digest)
        parts.payload = notation_cose.descriptor(image.digest, image.media_type, image.size)
        if tampered:
            parts.signature = signer.sign(parts.to_be_signed())
            parts.protected[notation_cose.SIGNING_TIME] = notation_cose.epoch(notation_cose.NOW)
        envelope = oci.Blob(parts.encode(), COSE)
        oci.push_manifest(
            registry, f"{project}/hello", oci.artifact_manifest(ARTIFACT_TYPE, subject=image, layers=[envelope])
        )
    return image.digest


def test_notation_cose_signatures_verify_under_the_projects_trust_policy(server: Portside) -> None:
    """COSE envelopes made here as the Notary Project's specification lays them out (no
    tool on this machine writes them), ECDSA and RSA-PSS, checked as the JWS ones are."""
    project = _project(server, enable_content_trust="true")
    ecdsa, rsa_pss = notation_cose.make_signer("ES256"), notation_cose.make_signer("PS256")
    digest = _cose_signed(server, project, ecdsa)
    assert "this project trusts no Notation certificate" in _refused(_pull(server, project))
    other = {"name": "acme", "type": "ca", "certificate": rsa_pss.root_pem}
    _trust(server, project, notation={"certificates": [other]})
    message = _refused(_pull(server, project))
    assert "none verifies" in message and "does not lead to a certificate in the trust store" in message, message
    trusted = {"name": "acme", "type": "ca", "certificate": ecdsa.root_pem}
    _trust(server, project, notation={"certificates": [trusted]})
    for reference in ("v1", digest):
        assert _pull(server, project, reference).status_code == 200
    with _api(server) as client:
        path = f"/projects/{project}/repositories/hello/artifacts/v1"
        [listed] = client.get(f"{path}/signatures").json()
        assert listed["kind"] == "notation" and listed["verified"] is True, listed
        assert listed["signatures"][0]["signer"] == notation_cose.LEAF_SUBJECT, listed
        [accessory] = client.get(f"{path}/accessories").json()
        assert accessory["type"] == "signature.notation" and accessory["verified"] is True

    signed_by_rsa = _project(server, require_signature="notation")
    _cose_signed(server, signed_by_rsa, rsa_pss)
    _trust(server, signed_by_rsa, notation={"certificates": [other]})
    assert _pull(server, signed_by_rsa).status_code == 200

    tampered = _project(server, require_signature="notation")
    _cose_signed(server, tampered, ecdsa, tampered=True)
    _trust(server, tampered, notation={"certificates": [trusted]})
    message = _refused(_pull(server, tampered))
    assert "integrity validation failed" in message and "the envelope was altered" in message, message


TIMESTAMPED = SIGNED / "notation-e2e-with-timestamped-signature"
TIMESTAMPED_IMAGE = (
    "sha256:53b0191218aed9a3c1f7c661736ac40cfc8eb928642348fd843ba3f0483c0c20",
    "sha256:6a5cd3a886707a317935dcaf13954fc80ef9aeb665262b6ae4fe469ad7ea3aea",
)
TESTCERT7 = (TIMESTAMPED / "testcert7.extracted-from-x5c.crt").read_text()
TSA_ROOT = (Path(__file__).parents[1] / "trust" / "fixtures_tsa" / "identity-verification-root-2020.crt").read_text()


def test_an_expired_certificate_with_a_valid_timestamp_passes_after_cert_expiry(server: Portside) -> None:
    """testcert7 was valid one day in January 2025; the signature's RFC 3161 countersignature
    (a public TSA's, at 2025-01-21T09:17:46Z) is what says it signed within that day."""
    project = _project(server, enable_content_trust="true")
    layout = Layout(TIMESTAMPED)
    with _registry(server) as registry:
        _push_tree(registry, f"{project}/hello", layout, TIMESTAMPED_IMAGE[0], "v1")
        _push_tree(registry, f"{project}/hello", layout, TIMESTAMPED_IMAGE[1])
    ca = {"name": "e2e", "type": "ca", "certificate": TESTCERT7}
    # The signature's own expiry (12:39Z that day) is logged, not enforced, so the timestamp decides.
    policy = {"verification_level": "strict", "verification_override": {"expiry": "log"}}
    _trust(server, project, notation={**policy, "certificates": [ca], "verify_timestamp": "afterCertExpiry"})
    message = _refused(_pull(server, project))
    assert "authenticTimestamp validation failed" in message, message
    assert "no timestamp vouches for the signing time" in message, message

    tsa = {"name": "public-tsa", "type": "tsa", "certificate": TSA_ROOT}
    stored = _trust(
        server, project, notation={**policy, "certificates": [ca, tsa], "verify_timestamp": "afterCertExpiry"}
    )
    assert stored["notation"]["verify_timestamp"] == "afterCertExpiry"
    assert stored["notation"]["verification_override"] == {"expiry": "log"}
    assert _pull(server, project).status_code == 200
    with _api(server) as client:
        listed = client.get(f"/projects/{project}/repositories/hello/artifacts/v1/signatures").json()
    [signature] = listed[0]["signatures"]
    assert listed[0]["kind"] == "notation" and signature["verified"] is True, listed
    assert signature["signer"] == "CN=testcert7,O=Notary,L=Seattle,ST=WA,C=US"
    assert any(w.startswith("expiry validation failed") for w in signature["warnings"]), signature

    # A tsa store that does not hold the TSA's root refuses it, for that reason.
    wrong = {"name": "public-tsa", "type": "tsa", "certificate": TESTCERT7}
    _trust(server, project, notation={**policy, "certificates": [ca, wrong], "verify_timestamp": "afterCertExpiry"})
    message = _refused(_pull(server, project))
    assert "the timestamp countersignature is not valid (tsa:public-tsa)" in message, message
    assert "does not lead to a trusted time-stamping authority certificate" in message, message


def test_bad_notation_timestamp_settings_are_refused(server: Portside) -> None:
    project = _project(server)
    with _api(server) as client:
        for notation, word in (
            ({"verify_timestamp": "sometimes"}, "verify_timestamp"),
            ({"verification_override": {"integrity": "log"}}, "integrity"),
            ({"verification_override": ["expiry"]}, "verification_override"),
        ):
            r = client.put(f"/projects/{project}/trust", json={"notation": notation})
            assert r.status_code == 400 and word in r.text, (notation, r.text)


def test_images_pushed_into_a_project_that_signs_on_push_are_signed_and_pass_its_policy(server: Portside) -> None:
    project = _project(server, enable_content_trust_cosign="true", sign_on_push="true")
    with _registry(server) as registry:
        image = oci.image_manifest()
        oci.push_manifest(registry, f"{project}/hello", image, "v1")
        tag = image.digest.replace(":", "-") + ".sig"
        deadline = time.monotonic() + 30
        while registry.get(f"/v2/{project}/hello/manifests/{tag}", headers=ACCEPT).status_code != 200:
            assert time.monotonic() < deadline, "no signature was written"
            time.sleep(0.1)
        assert _pull(server, project).status_code == 200
        signature = registry.get(f"/v2/{project}/hello/manifests/{tag}", headers=ACCEPT).json()
        payload = registry.get(f"/v2/{project}/hello/blobs/{signature['layers'][0]['digest']}").content
    with _api(server) as client:
        public = client.get(f"/projects/{project}/trust").json()["server_signing_key"]
    # What Portside wrote is a cosign signature anyone can check with the published key.
    layer = SignatureLayer.from_descriptor(signature["layers"][0])
    verdict = cosign_verify(layer, payload, image.digest, [load_public_key(public)])
    assert verdict.verified, verdict.reason
    claims = json.loads(payload)["critical"]
    assert claims["image"]["docker-manifest-digest"] == image.digest
    assert claims["identity"]["docker-reference"].endswith(f"/{project}/hello")
    # The key is the project's own: a project without sign on push does not trust it.
    other = _project(server, enable_content_trust_cosign="true")
    with _registry(server) as registry:
        oci.push_manifest(registry, f"{other}/hello", image, "v1")
    assert "signatures found: 0" in _refused(_pull(server, other))


def test_artifact_lists_carry_accessories_and_signed_tags_as_harbor_asks(server: Portside) -> None:
    project = _project(server)
    _signed_image(server, project)
    with _api(server) as client:
        path = f"/projects/{project}/repositories/hello/artifacts"
        plain = client.get(f"{path}/v1").json()
        assert "accessories" not in plain and "signed" not in plain["tags"][0]
        listed = client.get(path, params={"with_accessory": "true", "with_signature": "true"}).json()
        image = next(a for a in listed if a["digest"] == IMAGE)
        assert [a["digest"] for a in image["accessories"]] == [SIG]
        assert image["accessories"][0]["artifact_id"] == next(a["id"] for a in listed if a["digest"] == SIG)
        assert image["accessories"][0]["subject_artifact_id"] == image["id"]
        assert image["tags"][0]["signed"] is False  # signed, but by no key the project trusts
        _trust(server, project, cosign_keys=[{"name": "singularity", "public_key": TRUSTED_KEY}])
        one = client.get(f"{path}/v1", params={"with_accessory": "true", "with_signature": "true"}).json()
        assert one["tags"][0]["signed"] is True and one["accessories"][0]["verified"] is True
