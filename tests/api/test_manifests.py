"""Manifests: PUT/GET/HEAD/DELETE by tag and digest, media types, content negotiation."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api import oci


def _assert_served(client: httpx.Client, repo: str, reference: str, manifest: oci.Manifest) -> None:
    r = client.get(f"/v2/{repo}/manifests/{reference}", headers={"accept": oci.ACCEPT_ALL})
    assert r.status_code == 200, oci.error_text(r)
    assert r.content == manifest.body, "the registry stores the exact bytes it was given"
    assert r.headers["content-type"].split(";")[0].strip() == manifest.media_type
    assert r.headers["docker-content-digest"] == manifest.digest
    assert int(r.headers["content-length"]) == manifest.size


def _assert_unknown(client: httpx.Client, repo: str, reference: str) -> None:
    oci.assert_error(
        client.get(f"/v2/{repo}/manifests/{reference}", headers={"accept": oci.ACCEPT_ALL}), 404, "MANIFEST_UNKNOWN"
    )
    h = client.head(f"/v2/{repo}/manifests/{reference}", headers={"accept": oci.ACCEPT_ALL})
    assert h.status_code == 404 and h.content == b""


# Push and pull -------------------------------------------------------------------------------


def test_put_oci_manifest_by_tag(client: httpx.Client, repo: str) -> None:
    m = oci.image_manifest()
    for blob in m.blobs:
        oci.push_blob(client, repo, blob)
    r = oci.put_manifest(client, repo, "v1", m)
    assert r.status_code == 201, oci.error_text(r)
    assert r.headers["docker-content-digest"] == m.digest
    loc = oci.location(r)
    got = client.get(loc, headers={"accept": oci.OCI_MANIFEST})
    assert got.status_code == 200 and got.content == m.body
    _assert_served(client, repo, "v1", m)
    _assert_served(client, repo, m.digest, m)


@pytest.mark.portside_only
def test_put_manifest_by_digest(client: httpx.Client, repo: str) -> None:
    m = oci.image_manifest()
    oci.push_manifest(client, repo, m)  # by digest
    _assert_served(client, repo, m.digest, m)
    tags = client.get(f"/v2/{repo}/tags/list")
    assert tags.status_code == 200 and not tags.json().get("tags")


def test_head_manifest_by_tag_and_digest(client: httpx.Client, repo: str) -> None:
    m = oci.push_image(client, repo, "head")
    for ref in ("head", m.digest):
        r = client.head(f"/v2/{repo}/manifests/{ref}", headers={"accept": oci.ACCEPT_ALL})
        assert r.status_code == 200, oci.error_text(r)
        assert r.content == b""
        assert r.headers["docker-content-digest"] == m.digest
        assert int(r.headers["content-length"]) == m.size
        assert r.headers["content-type"].split(";")[0] == oci.OCI_MANIFEST


def test_manifest_get_has_etag(client: httpx.Client, repo: str) -> None:
    m = oci.push_image(client, repo, "etag")
    r = client.get(f"/v2/{repo}/manifests/etag", headers={"accept": oci.ACCEPT_ALL})
    assert r.status_code == 200 and m.digest in r.headers.get("etag", "")


def test_docker_schema2_manifest(client: httpx.Client, repo: str) -> None:
    m = oci.image_manifest(media_type=oci.DOCKER_MANIFEST)
    oci.push_manifest(client, repo, m, "docker")
    _assert_served(client, repo, "docker", m)
    _assert_served(client, repo, m.digest, m)


def test_docker_manifest_list(client: httpx.Client, repo: str) -> None:
    children = [
        oci.image_manifest(oci.config_blob(oci.DOCKER_CONFIG, p), media_type=oci.DOCKER_MANIFEST)
        for p in (("linux", "amd64"), ("linux", "arm64"))
    ]
    lst = oci.index_manifest(children, media_type=oci.DOCKER_LIST)
    oci.push_manifest(client, repo, lst, "multi")
    _assert_served(client, repo, "multi", lst)
    for child in children:
        _assert_served(client, repo, child.digest, child)


def test_oci_index(client: httpx.Client, repo: str) -> None:
    children = [oci.image_manifest(oci.config_blob(platform=p)) for p in (("linux", "amd64"), ("linux", "arm64"))]
    idx = oci.index_manifest(children, annotations={"org.opencontainers.image.ref.name": "multi"})
    oci.push_manifest(client, repo, idx, "index")
    _assert_served(client, repo, "index", idx)
    _assert_served(client, repo, idx.digest, idx)


def test_index_of_indexes(client: httpx.Client, repo: str) -> None:
    inner = oci.index_manifest([oci.image_manifest()])
    outer = oci.index_manifest([inner])
    oci.push_manifest(client, repo, outer, "nested")
    _assert_served(client, repo, "nested", outer)


def test_oci_artifact_with_empty_config(client: httpx.Client, repo: str) -> None:
    assert oci.digest(oci.EMPTY_JSON) == oci.EMPTY_DIGEST
    m = oci.artifact_manifest("application/vnd.example.thing.v1")
    doc = m.json
    assert doc["config"] == {"mediaType": oci.OCI_EMPTY, "digest": oci.EMPTY_DIGEST, "size": 2}
    oci.push_manifest(client, repo, m, "artifact")
    _assert_served(client, repo, "artifact", m)
    r = client.get(f"/v2/{repo}/blobs/{oci.EMPTY_DIGEST}")
    assert r.status_code == 200 and r.content == b"{}"


def test_artifact_without_layers_uses_empty_layer(client: httpx.Client, repo: str) -> None:
    """The image-spec's guidance for artifacts with no payload: the empty descriptor as layer."""
    m = oci.image_manifest(oci.empty_config(), [oci.empty_config()], artifact_type="application/vnd.example.marker.v1")
    oci.push_manifest(client, repo, m, "marker")
    _assert_served(client, repo, "marker", m)


def test_unknown_layer_media_type_is_stored_as_is(client: httpx.Client, repo: str) -> None:
    weird = oci.Blob(oci.random_bytes(333), "application/vnd.example.weird.layer.v7+zstd")
    cfg = oci.Blob(b'{"hello":"world"}', "application/vnd.example.config.v2+json")
    m = oci.image_manifest(cfg, [weird])
    oci.push_manifest(client, repo, m, "weird")
    _assert_served(client, repo, "weird", m)
    r = client.get(f"/v2/{repo}/blobs/{weird.digest}")
    assert r.status_code == 200 and r.content == weird.data


def test_manifest_without_media_type_field(client: httpx.Client, repo: str) -> None:
    """mediaType is a SHOULD; the Content-Type says what it is."""
    m = oci.image_manifest(include_media_type=False)
    assert "mediaType" not in m.json
    oci.push_manifest(client, repo, m, "nomt")
    _assert_served(client, repo, "nomt", m)


def test_exact_bytes_are_kept(client: httpx.Client, repo: str) -> None:
    """Whitespace, key order and a trailing newline are the client's business."""
    base = oci.image_manifest()
    doc = base.json
    body = (
        "\n\n"
        + json.dumps(
            {"layers": doc["layers"], "config": doc["config"], "schemaVersion": 2, "mediaType": oci.OCI_MANIFEST},
            indent=7,
        )
        + "\n"
    ).encode()
    m = oci.Manifest(body, oci.OCI_MANIFEST, base.blobs)
    oci.push_manifest(client, repo, m, "bytes")
    _assert_served(client, repo, "bytes", m)


@pytest.mark.portside_only
def test_content_type_parameters_are_ignored(client: httpx.Client, repo: str) -> None:
    m = oci.image_manifest()
    for blob in m.blobs:
        oci.push_blob(client, repo, blob)
    r = oci.put_manifest(client, repo, "params", m, content_type=f"{oci.OCI_MANIFEST}; charset=utf-8")
    assert r.status_code == 201, oci.error_text(r)
    _assert_served(client, repo, "params", m)


def test_manifest_is_scoped_to_its_repository(client: httpx.Client, repo: str) -> None:
    m = oci.push_image(client, repo, "mine")
    other = f"{repo}-other"
    oci.push_image(client, other, "theirs")
    _assert_unknown(client, other, m.digest)
    _assert_unknown(client, other, "mine")


# Tags ---------------------------------------------------------------------------------------


def test_retag_moves_the_tag(client: httpx.Client, repo: str) -> None:
    first = oci.push_image(client, repo, "moving")
    second = oci.push_image(client, repo, "moving")
    _assert_served(client, repo, "moving", second)
    _assert_served(client, repo, first.digest, first)


def test_one_manifest_many_tags(client: httpx.Client, repo: str) -> None:
    m = oci.push_image(client, repo, "a")
    for tag in ("b", "C_upper", "v1.2.3-rc.1", "x" * 128):
        r = oci.put_manifest(client, repo, tag, m)
        assert r.status_code == 201, oci.error_text(r)
        _assert_served(client, repo, tag, m)


def test_same_manifest_pushed_twice(client: httpx.Client, repo: str) -> None:
    m = oci.push_image(client, repo, "twice")
    r = oci.put_manifest(client, repo, "twice", m)
    assert r.status_code == 201, oci.error_text(r)
    _assert_served(client, repo, "twice", m)


# Content negotiation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "accept"),
    [
        ("oci", oci.OCI_MANIFEST),
        ("oci", f"{oci.DOCKER_MANIFEST}, {oci.OCI_MANIFEST}"),
        ("oci", f"{oci.DOCKER_MANIFEST};q=0.9, {oci.OCI_MANIFEST};q=0.5, {oci.OCI_INDEX}"),
        ("docker", oci.DOCKER_MANIFEST),
        ("docker", f"{oci.OCI_MANIFEST}, {oci.DOCKER_MANIFEST}, {oci.DOCKER_LIST}"),
        ("index", oci.OCI_INDEX),
        ("index", f"{oci.OCI_MANIFEST}, {oci.OCI_INDEX}"),
        ("list", oci.DOCKER_LIST),
        ("list", f"{oci.DOCKER_MANIFEST}, {oci.DOCKER_LIST}"),
    ],
)
def test_accept_negotiation(client: httpx.Client, repo: str, kind: str, accept: str) -> None:
    if kind == "oci":
        m = oci.image_manifest()
    elif kind == "docker":
        m = oci.image_manifest(media_type=oci.DOCKER_MANIFEST)
    elif kind == "index":
        m = oci.index_manifest([oci.image_manifest()])
    else:
        m = oci.index_manifest([oci.image_manifest(media_type=oci.DOCKER_MANIFEST)], media_type=oci.DOCKER_LIST)
    oci.push_manifest(client, repo, m, "neg")
    for ref in ("neg", m.digest):
        for method in ("GET", "HEAD"):
            r = client.request(method, f"/v2/{repo}/manifests/{ref}", headers={"accept": accept})
            assert r.status_code == 200, oci.error_text(r)
            assert r.headers["content-type"].split(";")[0].strip() == m.media_type
            assert r.headers["docker-content-digest"] == m.digest
            if method == "GET":
                assert r.content == m.body


def test_accept_as_repeated_headers(client: httpx.Client, repo: str) -> None:
    m = oci.push_image(client, repo, "rep")
    headers = [("accept", oci.DOCKER_MANIFEST), ("accept", oci.OCI_MANIFEST), ("accept", oci.OCI_INDEX)]
    r = client.get(f"/v2/{repo}/manifests/rep", headers=headers)
    assert r.status_code == 200 and r.content == m.body
    assert r.headers["content-type"].split(";")[0] == oci.OCI_MANIFEST


@pytest.mark.portside_only
@pytest.mark.parametrize("accept", ["*/*", None])
def test_image_manifest_with_wildcard_or_no_accept(client: httpx.Client, repo: str, accept: str | None) -> None:
    m = oci.push_image(client, repo, "wild")
    headers = {"accept": accept} if accept else {}
    r = client.get(f"/v2/{repo}/manifests/{m.digest}", headers=headers)
    assert r.status_code == 200, oci.error_text(r)
    assert r.content == m.body
    assert r.headers["content-type"].split(";")[0] == oci.OCI_MANIFEST


@pytest.mark.portside_only
def test_index_not_accepted_is_never_relabelled(client: httpx.Client, repo: str) -> None:
    """When Accept leaves the stored type out, a registry may refuse (404/406 with a spec
    error) or serve another manifest it holds (Distribution serves the linux/amd64 child of
    an index), but what it serves must be exactly what the headers say: an accepted type,
    and a Docker-Content-Digest that is the digest of the body."""
    child = oci.image_manifest()
    idx = oci.index_manifest([child])
    oci.push_manifest(client, repo, idx, "strict")
    for ref in ("strict", idx.digest):
        r = client.get(f"/v2/{repo}/manifests/{ref}", headers={"accept": oci.OCI_MANIFEST})
        if r.status_code == 200:
            assert r.headers["content-type"].split(";")[0] == oci.OCI_MANIFEST
            assert r.headers["docker-content-digest"] == oci.digest(r.content)
            assert r.content == child.body
            assert ref != idx.digest, "a request by digest must not answer with other content"
        else:
            oci.assert_error(r, {404, 406}, "MANIFEST_UNKNOWN", "MANIFEST_INVALID", "UNSUPPORTED")


# Delete -------------------------------------------------------------------------------------


def test_delete_by_digest(client: httpx.Client, repo: str) -> None:
    m = oci.push_image(client, repo, "doomed")
    oci.put_manifest(client, repo, "doomed2", m)
    r = client.delete(f"/v2/{repo}/manifests/{m.digest}")
    assert r.status_code == 202, oci.error_text(r)
    _assert_unknown(client, repo, m.digest)
    _assert_unknown(client, repo, "doomed")
    _assert_unknown(client, repo, "doomed2")
    assert "doomed" not in (client.get(f"/v2/{repo}/tags/list").json().get("tags") or [])


@pytest.mark.portside_only
def test_delete_by_tag(client: httpx.Client, repo: str) -> None:
    m = oci.push_image(client, repo, "gone")
    oci.put_manifest(client, repo, "stays", m)
    r = client.delete(f"/v2/{repo}/manifests/gone")
    assert r.status_code == 202, oci.error_text(r)
    _assert_unknown(client, repo, "gone")
    _assert_served(client, repo, "stays", m)
    _assert_served(client, repo, m.digest, m)
    tags = client.get(f"/v2/{repo}/tags/list").json()["tags"]
    assert tags == ["stays"]


def test_delete_unknown_manifest(client: httpx.Client, repo: str) -> None:
    oci.push_image(client, repo, "present")
    r = client.delete(f"/v2/{repo}/manifests/{oci.digest(b'no such manifest')}")
    oci.assert_error(r, 404, "MANIFEST_UNKNOWN")


@pytest.mark.portside_only
def test_delete_unknown_tag(client: httpx.Client, repo: str) -> None:
    oci.push_image(client, repo, "present")
    r = client.delete(f"/v2/{repo}/manifests/absent")
    oci.assert_error(r, 404, "MANIFEST_UNKNOWN")


def test_delete_manifest_in_unknown_repository(client: httpx.Client, repo: str) -> None:
    r = client.delete(f"/v2/{repo}/manifests/{oci.digest(b'x')}")
    oci.assert_error(r, 404, "MANIFEST_UNKNOWN", "NAME_UNKNOWN")


def test_manifest_can_be_pushed_again_after_delete(client: httpx.Client, repo: str) -> None:
    m = oci.push_image(client, repo, "phoenix")
    assert client.delete(f"/v2/{repo}/manifests/{m.digest}").status_code == 202
    r = oci.put_manifest(client, repo, "phoenix", m)
    assert r.status_code == 201, oci.error_text(r)
    _assert_served(client, repo, "phoenix", m)


def test_unknown_tag_and_digest(client: httpx.Client, repo: str) -> None:
    oci.push_image(client, repo, "exists")
    _assert_unknown(client, repo, "nope")
    _assert_unknown(client, repo, oci.digest(b"nope"))


def test_manifest_in_unknown_repository(client: httpx.Client, repo: str) -> None:
    r = client.get(f"/v2/{repo}/manifests/latest", headers={"accept": oci.ACCEPT_ALL})
    oci.assert_error(r, 404, "MANIFEST_UNKNOWN", "NAME_UNKNOWN")


@pytest.mark.portside_only
def test_manifest_fetched_as_blob_is_not_a_layer_leak(client: httpx.Client, repo: str) -> None:
    """The spec lets a manifest be reachable as a blob, but then its bytes must be exact."""
    m = oci.push_image(client, repo, "asblob")
    r = client.get(f"/v2/{repo}/blobs/{m.digest}")
    if r.status_code == 200:
        assert r.content == m.body
    else:
        oci.assert_error(r, 404, "BLOB_UNKNOWN")


def test_tags_are_case_sensitive(client: httpx.Client, repo: str) -> None:
    lower = oci.push_image(client, repo, "latest")
    upper = oci.push_image(client, repo, "Latest")
    _assert_served(client, repo, "latest", lower)
    _assert_served(client, repo, "Latest", upper)
    assert sorted(client.get(f"/v2/{repo}/tags/list").json()["tags"]) == ["Latest", "latest"]


def test_non_ascii_bytes_are_kept(client: httpx.Client, repo: str) -> None:
    base = oci.image_manifest()
    doc = base.json
    doc["annotations"] = {"org.example.note": "Grüße, 世界 — ✓", "escaped": "caf\u00e9"}
    body = json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")
    m = oci.Manifest(body, oci.OCI_MANIFEST, base.blobs)
    oci.push_manifest(client, repo, m, "utf8")
    _assert_served(client, repo, "utf8", m)


@pytest.mark.portside_only
def test_manifest_with_sha512_blobs(client: httpx.Client, repo: str) -> None:
    cfg = oci.config_blob()
    cfg.algorithm = "sha512"
    lay = oci.layer(1000)
    lay.algorithm = "sha512"
    m = oci.image_manifest(cfg, [lay])
    assert m.json["layers"][0]["digest"].startswith("sha512:")
    oci.push_manifest(client, repo, m, "sha512")
    _assert_served(client, repo, "sha512", m)


@pytest.mark.parametrize("keyword", ["blobs", "manifests", "tags", "blobs/uploads", "referrers", "tags/list", "v2"])
def test_repository_names_that_look_like_routes(client: httpx.Client, repo: str, keyword: str) -> None:
    """Names may contain the API's own path words; the routes must still resolve."""
    name = f"{repo}/{keyword}"
    m = oci.push_image(client, name, "v1")
    _assert_served(client, name, "v1", m)
    _assert_served(client, name, m.digest, m)
    r = client.get(f"/v2/{name}/tags/list")
    assert r.status_code == 200 and r.json() == {"name": name, "tags": ["v1"]}, oci.error_text(r)
    for blob in m.blobs:
        b = client.get(f"/v2/{name}/blobs/{blob.digest}")
        assert b.status_code == 200 and b.content == blob.data
    # The shorter name is a different repository, which holds nothing.
    assert client.get(f"/v2/{repo}/manifests/v1").status_code == 404
    # Chunked uploads work there too.
    data = oci.random_bytes(1000)
    url = oci.start_upload(client, name)
    r = client.patch(url, content=data, headers={"content-range": f"0-{len(data) - 1}"})
    assert r.status_code == 202, oci.error_text(r)
    assert client.get(oci.location(r)).status_code == 204
    r = client.put(oci.with_params(oci.location(r), digest=oci.digest(data)))
    assert r.status_code == 201, oci.error_text(r)
    assert client.get(f"/v2/{name}/blobs/{oci.digest(data)}").content == data
