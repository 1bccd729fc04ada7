"""A manifest reference that is neither a tag nor a digest names no manifest: GET, HEAD and
DELETE answer 404 MANIFEST_UNKNOWN (what the OCI conformance tests expect of
`.INVALID_MANIFEST_NAME`); a PUT to one is a bad request, 400 MANIFEST_INVALID (or
DIGEST_INVALID for a malformed digest)."""

from __future__ import annotations

import httpx
import pytest

from tests.api import oci

NEITHER = [
    ".INVALID_MANIFEST_NAME",
    "-lead",
    "t" * 129,
    "has+plus",
    "sp%20ace",
    "%C2%B2",
    "sha256:abc",
    "sha256:" + "g" * 64,
    "md5:" + "a" * 32,
    "has:colon",
    ":",
]


@pytest.mark.parametrize("reference", NEITHER)
@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
def test_reads_and_deletes_of_no_reference(admin: httpx.Client, method: str, reference: str) -> None:
    repo = f"library/{oci.unique('ref')}"
    oci.push_image(admin, repo, "v1")
    r = admin.request(method, f"/v2/{repo}/manifests/{reference}", headers={"accept": oci.ACCEPT_ALL})
    assert r.status_code == 404, oci.error_text(r)
    if method != "HEAD":
        oci.assert_error(r, 404, "MANIFEST_UNKNOWN")
    assert admin.get(f"/v2/{repo}/tags/list").json()["tags"] == ["v1"]


@pytest.mark.parametrize("reference", NEITHER)
def test_pushes_to_no_reference(admin: httpx.Client, reference: str) -> None:
    repo = f"library/{oci.unique('ref')}"
    manifest = oci.image_manifest()
    for blob in manifest.blobs:
        oci.push_blob(admin, repo, blob)
    oci.assert_error(oci.put_manifest(admin, repo, reference, manifest), 400, "MANIFEST_INVALID", "DIGEST_INVALID")


def test_reads_of_no_reference_anonymously_are_refused_first(anonymous: httpx.Client, project: str) -> None:
    """Access is checked before the reference, as for any other read of a private repository."""
    oci.assert_error(anonymous.get(f"/v2/{project}/app/manifests/-lead"), 401, "UNAUTHORIZED")
