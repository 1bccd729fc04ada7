"""Validation and the spec's error bodies: names, tags, digests, manifests, sizes.

Invalid tags: the OCI spec's error code list (which a body's code "MUST be one of") has
no TAG_INVALID (that is a Docker schema1-era code), so an invalid tag in a manifest PUT
is a 400 MANIFEST_INVALID here.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.api import oci
from tests.servers import Portside

MIB = 1024 * 1024


def _push_blobs(client: httpx.Client, repo: str, manifest: oci.Manifest, skip: set[str] = frozenset()) -> None:
    for blob in manifest.blobs:
        if blob.digest not in skip:
            oci.push_blob(client, repo, blob)


# Error body shape ---------------------------------------------------------------------------


def test_error_body_shape_and_content_type(client: httpx.Client, repo: str) -> None:
    r = client.get(f"/v2/{repo}/manifests/nothing-here")
    assert r.status_code == 404
    assert r.headers["content-type"].split(";")[0] == "application/json"
    body = r.json()
    assert list(body) == ["errors"]
    err = body["errors"][0]
    assert err["code"] in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN")
    assert isinstance(err["message"], str) and err["message"]


@pytest.mark.portside_only
@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v2/{repo}/manifests/nothing", 404, "MANIFEST_UNKNOWN"),
        ("GET", "/v2/{repo}/blobs/" + oci.digest(b"zip"), 404, "BLOB_UNKNOWN"),
        ("GET", "/v2/{repo}/blobs/uploads/00000000-0000-4000-8000-000000000000", 404, "BLOB_UPLOAD_UNKNOWN"),
        ("GET", "/v2/{repo}/tags/list", 404, "NAME_UNKNOWN"),
        ("GET", "/v2/Bad_Name/tags/list", 400, "NAME_INVALID"),
    ],
)
def test_every_error_has_code_message_detail(
    client: httpx.Client, repo: str, method: str, path: str, status: int, code: str
) -> None:
    """Portside always writes all three keys of the spec's error object."""
    r = client.request(method, path.format(repo=repo))
    oci.assert_error(r, status, code)
    oci.assert_detail_present(r)


@pytest.mark.portside_only
def test_method_not_allowed_uses_spec_body(client: httpx.Client, repo: str) -> None:
    r = client.post(f"/v2/{repo}/tags/list")
    oci.assert_error(r, 405, "UNSUPPORTED")


# Repository names ---------------------------------------------------------------------------


BAD_NAMES = [
    "UPPER/case",
    "conf/Mixed",
    "conf/double..dot",
    "conf/-leading",
    "conf/trailing-",
    "conf/trailing.",
    "conf/_under",
    "conf/a___b",
    "conf/spa%20ce",
    "conf/" + "a" * 256,
]


@pytest.mark.portside_only
@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_repository_name(client: httpx.Client, name: str) -> None:
    oci.assert_error(client.get(f"/v2/{name}/tags/list"), 400, "NAME_INVALID")
    oci.assert_error(client.get(f"/v2/{name}/manifests/latest"), 400, "NAME_INVALID")
    oci.assert_error(client.post(f"/v2/{name}/blobs/uploads/"), 400, "NAME_INVALID")
    m = oci.image_manifest()
    oci.assert_error(oci.put_manifest(client, name, "latest", m), 400, "NAME_INVALID")


@pytest.mark.portside_only
def test_mount_from_invalid_repository_name(client: httpx.Client, repo: str) -> None:
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": oci.digest(b"x"), "from": "Bad..Name"})
    if r.status_code != 202:  # a registry may also ignore the bad source and open a session
        oci.assert_error(r, 400, "NAME_INVALID")


@pytest.mark.parametrize("name", ["a", "a/b/c/d/e", "x0.y-z__w/long-name", "a-b--c", "conf/" + "a" * 200, "0digits/9"])
def test_valid_repository_names(client: httpx.Client, name: str) -> None:
    name = f"{name}/{oci.unique('v')}"
    oci.push_image(client, name, "ok")
    assert client.get(f"/v2/{name}/tags/list").json()["tags"] == ["ok"]


# Tags ---------------------------------------------------------------------------------------


@pytest.mark.portside_only
@pytest.mark.parametrize("tag", ["-lead", ".lead", "has+plus", "t" * 129, "sp%20ace"])
def test_invalid_tag_on_put(client: httpx.Client, repo: str, tag: str) -> None:
    m = oci.image_manifest()
    _push_blobs(client, repo, m)
    r = oci.put_manifest(client, repo, tag, m)
    oci.assert_error(r, 400, "MANIFEST_INVALID")


@pytest.mark.portside_only
def test_reference_with_colon_is_neither_tag_nor_valid_digest(client: httpx.Client, repo: str) -> None:
    """`has:colon` parses as a digest of an unknown algorithm, so DIGEST_INVALID is fair too."""
    m = oci.image_manifest()
    _push_blobs(client, repo, m)
    r = oci.put_manifest(client, repo, "has:colon", m)
    oci.assert_error(r, 400, "MANIFEST_INVALID", "DIGEST_INVALID")


@pytest.mark.portside_only
@pytest.mark.parametrize("tag", ["-lead", "t" * 129, ".INVALID_MANIFEST_NAME"])
def test_invalid_tag_on_get(client: httpx.Client, repo: str, tag: str) -> None:
    """What is neither a tag nor a digest names no manifest (the conformance tests' expectation)."""
    oci.push_image(client, repo, "fine")
    r = client.get(f"/v2/{repo}/manifests/{tag}")
    oci.assert_error(r, 404, "MANIFEST_UNKNOWN")


# Manifests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [oci.DOCKER_SCHEMA1, oci.DOCKER_SCHEMA1_SIGNED])
def test_docker_schema1_is_refused(client: httpx.Client, repo: str, content_type: str) -> None:
    m = oci.schema1_manifest(repo, "old")
    oci.push_blob(client, repo, b"")
    r = oci.put_manifest(client, repo, "old", m, content_type=content_type)
    assert 400 <= r.status_code < 500, oci.error_text(r)
    oci.assert_error(r, r.status_code, "MANIFEST_INVALID", "UNSUPPORTED")
    assert client.get(f"/v2/{repo}/manifests/old").status_code == 404


def test_missing_layer_is_manifest_blob_unknown(client: httpx.Client, repo: str) -> None:
    m = oci.image_manifest(layers=[oci.layer(100), oci.layer(200)])
    missing = m.blobs[2].digest
    _push_blobs(client, repo, m, skip={missing})
    r = oci.put_manifest(client, repo, "broken", m)
    oci.assert_error(r, 400, "MANIFEST_BLOB_UNKNOWN")
    assert client.get(f"/v2/{repo}/manifests/broken").status_code == 404
    assert client.get(f"/v2/{repo}/manifests/{m.digest}").status_code == 404


def test_missing_config_is_manifest_blob_unknown(client: httpx.Client, repo: str) -> None:
    m = oci.image_manifest()
    _push_blobs(client, repo, m, skip={m.blobs[0].digest})
    oci.assert_error(oci.put_manifest(client, repo, "noconfig", m), 400, "MANIFEST_BLOB_UNKNOWN")


def test_docker_manifest_missing_layer(client: httpx.Client, repo: str) -> None:
    m = oci.image_manifest(media_type=oci.DOCKER_MANIFEST)
    _push_blobs(client, repo, m, skip={m.blobs[1].digest})
    oci.assert_error(oci.put_manifest(client, repo, "broken", m), 400, "MANIFEST_BLOB_UNKNOWN")


def test_blob_in_another_repository_does_not_count(client: httpx.Client, repo: str) -> None:
    m = oci.image_manifest()
    _push_blobs(client, f"{repo}-elsewhere", m)
    _push_blobs(client, repo, m, skip={m.blobs[1].digest})
    oci.assert_error(oci.put_manifest(client, repo, "borrowed", m), 400, "MANIFEST_BLOB_UNKNOWN")


def test_deleted_blob_does_not_count(client: httpx.Client, repo: str) -> None:
    m = oci.image_manifest()
    _push_blobs(client, repo, m)
    assert client.delete(f"/v2/{repo}/blobs/{m.blobs[1].digest}").status_code == 202
    oci.assert_error(oci.put_manifest(client, repo, "late", m), 400, "MANIFEST_BLOB_UNKNOWN")


@pytest.mark.parametrize("media_type", [oci.OCI_INDEX, oci.DOCKER_LIST])
def test_index_with_missing_child(client: httpx.Client, repo: str, media_type: str) -> None:
    child_type = oci.OCI_MANIFEST if media_type == oci.OCI_INDEX else oci.DOCKER_MANIFEST
    present = oci.image_manifest(media_type=child_type)
    absent = oci.image_manifest(media_type=child_type)
    oci.push_manifest(client, repo, present)
    _push_blobs(client, repo, absent)  # its blobs, but not the manifest itself
    idx = oci.index_manifest([present, absent], media_type=media_type)
    oci.assert_error(oci.put_manifest(client, repo, "partial", idx), 400, "MANIFEST_BLOB_UNKNOWN")
    assert client.get(f"/v2/{repo}/manifests/partial").status_code == 404


def test_index_child_in_another_repository_does_not_count(client: httpx.Client, repo: str) -> None:
    child = oci.image_manifest()
    oci.push_manifest(client, f"{repo}-elsewhere", child)
    idx = oci.index_manifest([child])
    oci.assert_error(oci.put_manifest(client, repo, "borrowed", idx), 400, "MANIFEST_BLOB_UNKNOWN")


@pytest.mark.portside_only
@pytest.mark.parametrize("media_type", [oci.OCI_LAYER_NONDIST, oci.DOCKER_FOREIGN_LAYER])
def test_non_distributable_layer_may_be_missing(client: httpx.Client, repo: str, media_type: str) -> None:
    foreign = oci.Blob(oci.random_bytes(64), media_type)
    normal_type = oci.DOCKER_LAYER if media_type == oci.DOCKER_FOREIGN_LAYER else oci.OCI_LAYER
    manifest_type = oci.DOCKER_MANIFEST if media_type == oci.DOCKER_FOREIGN_LAYER else oci.OCI_MANIFEST
    config = oci.config_blob(oci.DOCKER_CONFIG if manifest_type == oci.DOCKER_MANIFEST else oci.OCI_CONFIG)
    normal = oci.layer(100, normal_type)
    doc = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": config.descriptor(),
        "layers": [
            foreign.descriptor(urls=["https://example.com/foreign/layer.tar.gz"]),
            normal.descriptor(),
        ],
    }
    m = oci.Manifest(json.dumps(doc).encode(), manifest_type)
    oci.push_blob(client, repo, config)
    oci.push_blob(client, repo, normal)
    r = oci.put_manifest(client, repo, "foreign", m)
    assert r.status_code == 201, oci.error_text(r)
    assert client.get(f"/v2/{repo}/manifests/foreign", headers={"accept": manifest_type}).content == m.body


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b"[]",
        b'"a string"',
        b"\xff\xfe\x00garbage",
    ],
)
def test_malformed_manifest_is_manifest_invalid(client: httpx.Client, repo: str, body: bytes) -> None:
    r = client.put(f"/v2/{repo}/manifests/bad", content=body, headers={"content-type": oci.OCI_MANIFEST})
    oci.assert_error(r, 400, "MANIFEST_INVALID")


@pytest.mark.portside_only
@pytest.mark.parametrize(
    "doc",
    [
        {"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST},
        {"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST, "config": {"mediaType": oci.OCI_CONFIG}, "layers": []},
        {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": "nope"},
    ],
)
def test_structurally_invalid_manifest(client: httpx.Client, repo: str, doc: dict) -> None:
    r = client.put(
        f"/v2/{repo}/manifests/bad", content=json.dumps(doc).encode(), headers={"content-type": doc["mediaType"]}
    )
    oci.assert_error(r, 400, "MANIFEST_INVALID")


@pytest.mark.portside_only
def test_bad_descriptor_digest_is_manifest_invalid(client: httpx.Client, repo: str) -> None:
    m = oci.image_manifest()
    _push_blobs(client, repo, m)
    doc = m.json
    doc["layers"][0]["digest"] = "sha256:short"
    r = client.put(
        f"/v2/{repo}/manifests/bad", content=json.dumps(doc).encode(), headers={"content-type": oci.OCI_MANIFEST}
    )
    oci.assert_error(r, 400, "MANIFEST_INVALID", "DIGEST_INVALID")


@pytest.mark.portside_only
def test_schema_version_must_be_2(client: httpx.Client, repo: str) -> None:
    m = oci.image_manifest()
    _push_blobs(client, repo, m)
    doc = m.json
    doc["schemaVersion"] = 3
    r = client.put(
        f"/v2/{repo}/manifests/bad", content=json.dumps(doc).encode(), headers={"content-type": oci.OCI_MANIFEST}
    )
    oci.assert_error(r, 400, "MANIFEST_INVALID")


def test_put_by_digest_with_wrong_digest(client: httpx.Client, repo: str) -> None:
    m = oci.image_manifest()
    _push_blobs(client, repo, m)
    wrong = oci.digest(m.body + b" ")
    r = oci.put_manifest(client, repo, wrong, m)
    oci.assert_error(r, 400, "DIGEST_INVALID")
    assert client.get(f"/v2/{repo}/manifests/{wrong}").status_code == 404
    assert client.get(f"/v2/{repo}/manifests/{m.digest}").status_code == 404


@pytest.mark.portside_only
def test_put_by_sha512_digest(client: httpx.Client, repo: str) -> None:
    m = oci.image_manifest()
    _push_blobs(client, repo, m)
    d512 = oci.digest(m.body, "sha512")
    r = oci.put_manifest(client, repo, d512, m)
    assert r.status_code == 201, oci.error_text(r)
    assert r.headers["docker-content-digest"] == d512
    got = client.get(f"/v2/{repo}/manifests/{d512}", headers={"accept": oci.OCI_MANIFEST})
    assert got.status_code == 200 and got.content == m.body


def _sized_manifest(client: httpx.Client, repo: str, size: int) -> oci.Manifest:
    """An OCI manifest of exactly `size` bytes (padded with an annotation)."""
    base = oci.image_manifest()
    _push_blobs(client, repo, base)
    doc = base.json
    doc["annotations"] = {"pad": ""}
    empty = len(json.dumps(doc, separators=(",", ":")).encode())
    doc["annotations"]["pad"] = "p" * (size - empty)
    body = json.dumps(doc, separators=(",", ":")).encode()
    assert len(body) == size
    return oci.Manifest(body, oci.OCI_MANIFEST, base.blobs)


@pytest.mark.portside_only
def test_manifest_of_exactly_4mib_is_accepted(client: httpx.Client, repo: str) -> None:
    m = _sized_manifest(client, repo, 4 * MIB)
    r = oci.put_manifest(client, repo, "big", m)
    assert r.status_code == 201, oci.error_text(r)
    got = client.get(f"/v2/{repo}/manifests/big", headers={"accept": oci.OCI_MANIFEST})
    assert got.status_code == 200 and got.content == m.body


@pytest.mark.portside_only
@pytest.mark.parametrize("size", [4 * MIB + 1, 5 * MIB])
def test_manifest_over_4mib_is_413(client: httpx.Client, repo: str, size: int) -> None:
    m = _sized_manifest(client, repo, size)
    r = oci.put_manifest(client, repo, "huge", m)
    oci.assert_error(r, 413, "SIZE_INVALID", "MANIFEST_INVALID")
    assert client.get(f"/v2/{repo}/manifests/huge").status_code == 404


@pytest.mark.portside_only
def test_oversized_streamed_manifest_is_413(client: httpx.Client, repo: str) -> None:
    """No Content-Length to judge by: the registry must stop reading and refuse."""
    m = _sized_manifest(client, repo, 6 * MIB)

    def chunks():
        for i in range(0, m.size, 65536):
            yield m.body[i : i + 65536]

    r = client.put(f"/v2/{repo}/manifests/huge", content=chunks(), headers={"content-type": oci.OCI_MANIFEST})
    oci.assert_error(r, 413, "SIZE_INVALID", "MANIFEST_INVALID")


# Listing errors -----------------------------------------------------------------------------


def test_tags_of_unknown_repository(client: httpx.Client, repo: str) -> None:
    oci.assert_error(client.get(f"/v2/{repo}/tags/list"), 404, "NAME_UNKNOWN")


@pytest.mark.portside_only
@pytest.mark.parametrize("n", ["abc", "-1", "1.5"])
def test_bad_page_size_uses_a_spec_code(client: httpx.Client, repo: str, n: str) -> None:
    oci.push_image(client, repo, "t")
    r = client.get(f"/v2/{repo}/tags/list", params={"n": n})
    oci.assert_error(r, 400)
    r = client.get("/v2/_catalog", params={"n": n})
    oci.assert_error(r, 400)


@pytest.mark.portside_only
@pytest.mark.parametrize("bad", ["sha256:abc", "notadigest", "sha256:" + "G" * 64])
def test_malformed_digest_in_manifest_reference(client: httpx.Client, repo: str, bad: str) -> None:
    oci.push_image(client, repo, "t")
    r = client.get(f"/v2/{repo}/manifests/{bad}")
    oci.assert_error(r, {400, 404}, "DIGEST_INVALID", "MANIFEST_INVALID", "MANIFEST_UNKNOWN")


@pytest.mark.portside_only
def test_content_type_cannot_dodge_blob_checks(client: httpx.Client, repo: str) -> None:
    """An image manifest labelled as an index must not slip past the blob checks."""
    m = oci.image_manifest()  # its blobs were never pushed
    r = oci.put_manifest(client, repo, "sneaky", m, content_type=oci.OCI_INDEX)
    oci.assert_error(r, 400, "MANIFEST_INVALID", "MANIFEST_BLOB_UNKNOWN")
    assert client.get(f"/v2/{repo}/manifests/sneaky").status_code == 404


@pytest.mark.portside_only
def test_index_labelled_as_image_manifest_is_refused(client: httpx.Client, repo: str) -> None:
    idx = oci.index_manifest([oci.image_manifest()])  # child never pushed
    r = oci.put_manifest(client, repo, "sneaky", idx, content_type=oci.OCI_MANIFEST)
    oci.assert_error(r, 400, "MANIFEST_INVALID", "MANIFEST_BLOB_UNKNOWN")


@pytest.mark.portside_only
def test_manifest_without_content_type_uses_its_media_type(client: httpx.Client, repo: str) -> None:
    m = oci.image_manifest()
    _push_blobs(client, repo, m)
    r = client.put(f"/v2/{repo}/manifests/noct", content=m.body)
    assert "content-type" not in r.request.headers
    assert r.status_code == 201, oci.error_text(r)
    got = client.get(f"/v2/{repo}/manifests/noct", headers={"accept": oci.ACCEPT_ALL})
    assert got.headers["content-type"].split(";")[0] == oci.OCI_MANIFEST


@pytest.mark.portside_only
def test_subject_may_be_missing_but_must_be_well_formed(client: httpx.Client, repo: str) -> None:
    m = oci.artifact_manifest("application/vnd.example.x")
    _push_blobs(client, repo, m)
    doc = m.json
    doc["subject"] = {"mediaType": oci.OCI_MANIFEST, "digest": "sha256:bogus", "size": 1}
    r = client.put(
        f"/v2/{repo}/manifests/badsub", content=json.dumps(doc).encode(), headers={"content-type": oci.OCI_MANIFEST}
    )
    oci.assert_error(r, 400, "MANIFEST_INVALID", "DIGEST_INVALID")


@pytest.mark.portside_only
def test_manifest_limit_is_configurable(tmp_path: Path) -> None:
    server = Portside(data_dir=tmp_path / "data", env={"PORTSIDE_MAX_MANIFEST_BYTES": "4096"}).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as c:
            repo = "limits/small"
            fits = _sized_manifest(c, repo, 4096)
            r = oci.put_manifest(c, repo, "fits", fits)
            assert r.status_code == 201, oci.error_text(r)
            over = _sized_manifest(c, repo, 4097)
            oci.assert_error(oci.put_manifest(c, repo, "over", over), 413, "SIZE_INVALID", "MANIFEST_INVALID")
    finally:
        server.stop()


@pytest.mark.portside_only
@pytest.mark.parametrize(
    ("body_type", "header_type"),
    [(oci.OCI_MANIFEST, oci.DOCKER_MANIFEST), (oci.DOCKER_MANIFEST, oci.OCI_MANIFEST)],
)
def test_content_type_contradicting_media_type(
    client: httpx.Client, repo: str, body_type: str, header_type: str
) -> None:
    """A body that declares its mediaType while the Content-Type says another: refuse it, or
    at least never serve it under a type its own mediaType contradicts (clients reject that)."""
    m = oci.image_manifest(media_type=body_type)
    _push_blobs(client, repo, m)
    r = oci.put_manifest(client, repo, "mixed", m, content_type=header_type)
    if r.status_code == 201:
        got = client.get(f"/v2/{repo}/manifests/mixed", headers={"accept": oci.ACCEPT_ALL})
        assert got.headers["content-type"].split(";")[0] == body_type, oci.error_text(got)
    else:
        oci.assert_error(r, 400, "MANIFEST_INVALID")
