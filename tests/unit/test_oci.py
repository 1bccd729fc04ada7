import json

import pytest

from portside.errors import DigestInvalid, ManifestInvalid, NameInvalid
from portside.oci import mediatypes as mt
from portside.oci.digest import Digest
from portside.oci.manifest import parse_manifest
from portside.oci.reference import check_name, check_tag, is_tag

SHA = "sha256:" + "a" * 64


def test_digest_round_trip_and_algorithms():
    assert str(Digest.parse(SHA)) == SHA
    assert Digest.parse("sha512:" + "b" * 128).algorithm == "sha512"
    assert Digest.of(b"hello") == Digest.parse(
        "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    )


@pytest.mark.parametrize(
    "text",
    ["sha256:abc", "md5:" + "a" * 32, "sha256:" + "A" * 64, "nocolon", "sha256:" + "g" * 64, "sha512:" + "a" * 64],
)
def test_bad_digests_are_refused(text):
    with pytest.raises(DigestInvalid):
        Digest.parse(text)


@pytest.mark.parametrize("name", ["library/busybox", "a", "a-b/c__d/e.f", "x/y/z", "a--b"])
def test_valid_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "A/b", "a//b", "-a", "a/", "a_", "a___b", "a" * 256, "a/./b"])
def test_invalid_names(name):
    with pytest.raises(NameInvalid):
        check_name(name)


def test_tags():
    assert is_tag("v1.0_rc-1") and is_tag("_x") and is_tag("a" * 128)
    assert not is_tag(".x") and not is_tag("-x") and not is_tag("a" * 129) and not is_tag("a:b")
    with pytest.raises(ManifestInvalid):
        check_tag("bad/tag")


def _desc(media_type, data=b"x"):
    return {"mediaType": media_type, "digest": str(Digest.of(data)), "size": len(data)}


def _parse(doc, content_type=None):
    payload = json.dumps(doc).encode()
    return parse_manifest(payload, content_type, Digest.of(payload))


def test_image_manifest_lists_its_blobs_and_artifact_type():
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": _desc("application/vnd.oci.image.config.v1+json", b"c"),
        "layers": [_desc("application/x-custom-layer", b"l")],
    }
    manifest = _parse(doc)
    assert manifest.media_type == mt.OCI_MANIFEST
    assert [str(b.digest) for b in manifest.blobs] == [str(Digest.of(b"c")), str(Digest.of(b"l"))]
    assert manifest.artifact_type == "application/vnd.oci.image.config.v1+json"


def test_artifact_with_subject():
    subject = _desc(mt.OCI_MANIFEST, b"s")
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom",
        "config": _desc(mt.OCI_EMPTY, b"{}"),
        "layers": [],
        "subject": subject,
    }
    manifest = _parse(doc)
    assert manifest.artifact_type == "application/vnd.example.sbom"
    assert manifest.subject is not None and str(manifest.subject.digest) == subject["digest"]


def test_index_children_and_media_type_from_content_type():
    doc = {"schemaVersion": 2, "manifests": [_desc(mt.DOCKER_MANIFEST, b"a"), _desc(mt.DOCKER_MANIFEST, b"b")]}
    manifest = _parse(doc, mt.DOCKER_MANIFEST_LIST)
    assert manifest.media_type == mt.DOCKER_MANIFEST_LIST and manifest.is_index
    assert len(manifest.children) == 2 and not manifest.blobs


@pytest.mark.parametrize(
    "doc, content_type, message",
    [
        ({"schemaVersion": 1, "name": "x", "tag": "y", "fsLayers": []}, mt.DOCKER_SCHEMA1_SIGNED, "schema1"),
        ({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST}, None, "config"),
        ({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": {"digest": "x"}}, None, "mediaType"),
        ({"schemaVersion": 2, "mediaType": "text/plain", "config": {}}, None, "unsupported"),
        ({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [{}]}, mt.OCI_MANIFEST, "does not match"),
        ([1, 2], None, "object"),
    ],
)
def test_invalid_manifests(doc, content_type, message):
    with pytest.raises(ManifestInvalid, match=message):
        _parse(doc, content_type)
