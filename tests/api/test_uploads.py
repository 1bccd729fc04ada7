"""Blob uploads: sessions, monolithic, mount, chunked and streamed PATCH, status, cancel."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.api import oci

OCTET = {"content-type": "application/octet-stream"}


def _range_end(response: httpx.Response) -> int:
    value = response.headers.get("range")
    assert value is not None, f"no Range header: {oci.error_text(response)}"
    m = re.fullmatch(r"(?:bytes=)?0-(\d+)", value)
    assert m, f"Range {value!r} is not 0-<end>"
    return int(m.group(1))


def _patch(client: httpx.Client, url: httpx.URL, data: bytes, start: int | None) -> httpx.Response:
    headers = dict(OCTET)
    if start is not None:
        headers["content-range"] = f"{start}-{start + len(data) - 1}"
    return client.patch(url, content=data, headers=headers)


def _stream(data: bytes, piece: int = 7919) -> Iterator[bytes]:
    for i in range(0, len(data), piece):
        yield data[i : i + piece]


def _assert_blob(client: httpx.Client, repo: str, data: bytes, algorithm: str = "sha256") -> None:
    d = oci.digest(data, algorithm)
    r = client.get(f"/v2/{repo}/blobs/{d}")
    assert r.status_code == 200, oci.error_text(r)
    assert r.content == data


def _assert_invisible(client: httpx.Client, repo: str, d: str) -> None:
    r = client.head(f"/v2/{repo}/blobs/{d}")
    assert r.status_code == 404, oci.error_text(r)
    oci.assert_error(client.get(f"/v2/{repo}/blobs/{d}"), 404, "BLOB_UNKNOWN")


# Sessions ---------------------------------------------------------------------------------


def test_post_starts_session(client: httpx.Client, repo: str) -> None:
    r = client.post(f"/v2/{repo}/blobs/uploads/", headers={"content-length": "0"})
    assert r.status_code == 202, oci.error_text(r)
    uuid = r.headers.get("docker-upload-uuid")
    assert uuid, "Docker-Upload-UUID header"
    loc = oci.location(r)
    assert uuid in str(loc), "the Location names the session"
    assert f"/v2/{repo}/blobs/uploads/" in loc.path
    assert r.headers.get("range") is not None
    _range_end(r)


def test_each_post_gets_its_own_session(client: httpx.Client, repo: str) -> None:
    ids = set()
    for _ in range(3):
        r = client.post(f"/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202
        ids.add(r.headers["docker-upload-uuid"])
    assert len(ids) == 3


def test_post_then_put_monolithic(client: httpx.Client, repo: str) -> None:
    data = oci.random_bytes(10_000)
    d = oci.digest(data)
    url = oci.start_upload(client, repo)
    r = client.put(oci.with_params(url, digest=d), content=data, headers=OCTET)
    assert r.status_code == 201, oci.error_text(r)
    assert r.headers["docker-content-digest"] == d
    loc = oci.location(r)
    got = client.get(loc)
    assert got.status_code == 200 and got.content == data
    _assert_blob(client, repo, data)


@pytest.mark.portside_only
def test_single_post_monolithic(client: httpx.Client, repo: str) -> None:
    data = oci.random_bytes(5000)
    d = oci.digest(data)
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": d}, content=data, headers=OCTET)
    assert r.status_code == 201, oci.error_text(r)
    assert r.headers["docker-content-digest"] == d
    got = client.get(oci.location(r))
    assert got.status_code == 200 and got.content == data


@pytest.mark.portside_only
def test_single_post_with_wrong_digest(client: httpx.Client, repo: str) -> None:
    data = oci.random_bytes(5000)
    claimed = oci.digest(b"something else" + data)
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": claimed}, content=data, headers=OCTET)
    oci.assert_error(r, 400, "DIGEST_INVALID")
    _assert_invisible(client, repo, claimed)
    _assert_invisible(client, repo, oci.digest(data))


@pytest.mark.portside_only
def test_single_post_sha512(client: httpx.Client, repo: str) -> None:
    data = oci.random_bytes(3000)
    d = oci.digest(data, "sha512")
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": d}, content=data, headers=OCTET)
    assert r.status_code == 201, oci.error_text(r)
    _assert_blob(client, repo, data, "sha512")


def test_empty_blob(client: httpx.Client, repo: str) -> None:
    oci.push_blob(client, repo, b"")
    r = client.get(f"/v2/{repo}/blobs/{oci.digest(b'')}")
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-length"] == "0"


# Mount ------------------------------------------------------------------------------------


def test_mount_from_repository_that_has_the_blob(client: httpx.Client, repo: str) -> None:
    blob = oci.layer(2222)
    source = f"{repo}-src"
    oci.push_blob(client, source, blob)
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": blob.digest, "from": source})
    assert r.status_code == 201, oci.error_text(r)
    assert r.headers["docker-content-digest"] == blob.digest
    got = client.get(oci.location(r))
    assert got.status_code == 200 and got.content == blob.data
    _assert_blob(client, repo, blob.data)


def test_mount_falls_back_to_a_new_session(client: httpx.Client, repo: str) -> None:
    source = f"{repo}-empty-src"
    oci.push_blob(client, source, oci.layer(10))
    blob = oci.layer(1234)
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": blob.digest, "from": source})
    assert r.status_code == 202, oci.error_text(r)
    assert r.headers.get("docker-upload-uuid")
    url = oci.location(r)
    # The session is a real one: the client uploads the blob through it.
    done = client.put(oci.with_params(url, digest=blob.digest), content=blob.data, headers=OCTET)
    assert done.status_code == 201, oci.error_text(done)
    _assert_blob(client, repo, blob.data)


def test_mount_from_unknown_repository_falls_back(client: httpx.Client, repo: str) -> None:
    blob = oci.layer(99)
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": blob.digest, "from": f"{repo}-does-not-exist"})
    assert r.status_code == 202, oci.error_text(r)
    assert r.headers.get("location")


def test_mounted_blob_survives_delete_in_source(client: httpx.Client, repo: str) -> None:
    blob = oci.layer(512)
    source = f"{repo}-src2"
    oci.push_blob(client, source, blob)
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": blob.digest, "from": source})
    assert r.status_code == 201
    assert client.delete(f"/v2/{source}/blobs/{blob.digest}").status_code == 202
    _assert_blob(client, repo, blob.data)


# Chunked and streamed PATCH ----------------------------------------------------------------


def test_chunked_upload_with_content_range(client: httpx.Client, repo: str) -> None:
    data = oci.random_bytes(300_001)
    url = oci.start_upload(client, repo)
    offset = 0
    for size in (100_000, 100_000, 100_001):
        r = _patch(client, url, data[offset : offset + size], offset)
        assert r.status_code == 202, oci.error_text(r)
        offset += size
        assert _range_end(r) == offset - 1
        assert r.headers.get("docker-upload-uuid")
        url = oci.location(r)
    r = client.put(oci.with_params(url, digest=oci.digest(data)), headers={"content-length": "0"})
    assert r.status_code == 201, oci.error_text(r)
    assert r.headers["docker-content-digest"] == oci.digest(data)
    _assert_blob(client, repo, data)


def test_streamed_patch_without_content_range(client: httpx.Client, repo: str) -> None:
    """A PATCH of unknown length (chunked transfer encoding), then another, then PUT."""
    data = oci.random_bytes(1_000_003)
    url = oci.start_upload(client, repo)
    half = 600_000
    r = client.patch(url, content=_stream(data[:half]), headers=OCTET)
    assert r.status_code == 202, oci.error_text(r)
    assert _range_end(r) == half - 1
    url = oci.location(r)
    r = client.patch(url, content=_stream(data[half:]), headers=OCTET)
    assert r.status_code == 202, oci.error_text(r)
    assert _range_end(r) == len(data) - 1
    url = oci.location(r)
    r = client.put(oci.with_params(url, digest=oci.digest(data)))
    assert r.status_code == 201, oci.error_text(r)
    _assert_blob(client, repo, data)


def test_put_with_final_chunk(client: httpx.Client, repo: str) -> None:
    data = oci.random_bytes(50_000)
    url = oci.start_upload(client, repo)
    r = _patch(client, url, data[:20_000], 0)
    assert r.status_code == 202
    url = oci.location(r)
    headers = {**OCTET, "content-range": f"20000-{len(data) - 1}"}
    r = client.put(oci.with_params(url, digest=oci.digest(data)), content=data[20_000:], headers=headers)
    assert r.status_code == 201, oci.error_text(r)
    _assert_blob(client, repo, data)


def test_put_with_final_chunk_without_content_range(client: httpx.Client, repo: str) -> None:
    data = oci.random_bytes(40_000)
    url = oci.start_upload(client, repo)
    r = _patch(client, url, data[:10_000], 0)
    url = oci.location(r)
    r = client.put(oci.with_params(url, digest=oci.digest(data)), content=data[10_000:], headers=OCTET)
    assert r.status_code == 201, oci.error_text(r)
    _assert_blob(client, repo, data)


@pytest.mark.portside_only
def test_out_of_order_chunk_is_416(client: httpx.Client, repo: str) -> None:
    data = oci.random_bytes(3000)
    url = oci.start_upload(client, repo)
    r = _patch(client, url, data[:1000], 0)
    assert r.status_code == 202
    url = oci.location(r)
    # A gap: the next chunk must start at 1000.
    r = _patch(client, url, data[1500:2000], 1500)
    assert r.status_code == 416, oci.error_text(r)
    # An overlap is just as wrong.
    r = _patch(client, url, data[500:1500], 500)
    assert r.status_code == 416, oci.error_text(r)
    # The session is intact: status still shows 1000 bytes, and the upload completes.
    s = client.get(url)
    assert s.status_code == 204, oci.error_text(s)
    assert _range_end(s) == 999
    url = oci.location(s)
    r = _patch(client, url, data[1000:], 1000)
    assert r.status_code == 202, oci.error_text(r)
    r = client.put(oci.with_params(oci.location(r), digest=oci.digest(data)))
    assert r.status_code == 201, oci.error_text(r)
    _assert_blob(client, repo, data)


@pytest.mark.portside_only
def test_first_chunk_must_start_at_zero(client: httpx.Client, repo: str) -> None:
    url = oci.start_upload(client, repo)
    r = _patch(client, url, b"x" * 100, 5)
    assert r.status_code == 416, oci.error_text(r)


@pytest.mark.portside_only
def test_final_chunk_out_of_order_is_416(client: httpx.Client, repo: str) -> None:
    data = oci.random_bytes(2000)
    url = oci.start_upload(client, repo)
    url = oci.location(_patch(client, url, data[:1000], 0))
    headers = {**OCTET, "content-range": "1200-1999"}
    r = client.put(oci.with_params(url, digest=oci.digest(data)), content=data[1000:], headers=headers)
    assert r.status_code == 416, oci.error_text(r)
    _assert_invisible(client, repo, oci.digest(data))


def test_upload_status(client: httpx.Client, repo: str) -> None:
    data = oci.random_bytes(4321)
    url = oci.start_upload(client, repo)
    url = oci.location(_patch(client, url, data, 0))
    r = client.get(url)
    assert r.status_code == 204, oci.error_text(r)
    assert _range_end(r) == len(data) - 1
    assert r.headers.get("docker-upload-uuid")
    assert oci.location(r).path == url.path


def test_upload_session_is_gone_after_completion(client: httpx.Client, repo: str) -> None:
    data = oci.random_bytes(100)
    url = oci.start_upload(client, repo)
    assert client.put(oci.with_params(url, digest=oci.digest(data)), content=data).status_code == 201
    oci.assert_error(client.get(url), 404, "BLOB_UPLOAD_UNKNOWN")
    oci.assert_error(_patch(client, url, b"more", None), 404, "BLOB_UPLOAD_UNKNOWN")


def test_cancel_upload(client: httpx.Client, repo: str) -> None:
    data = oci.random_bytes(1000)
    url = oci.start_upload(client, repo)
    url = oci.location(_patch(client, url, data, 0))
    r = client.delete(url)
    assert r.status_code == 204, oci.error_text(r)
    oci.assert_error(client.get(url), 404, "BLOB_UPLOAD_UNKNOWN")
    oci.assert_error(_patch(client, url, b"late", None), 404, "BLOB_UPLOAD_UNKNOWN")
    r = client.put(oci.with_params(url, digest=oci.digest(data)))
    oci.assert_error(r, 404, "BLOB_UPLOAD_UNKNOWN")
    _assert_invisible(client, repo, oci.digest(data))


@pytest.mark.portside_only
def test_cancel_unknown_upload(client: httpx.Client, repo: str) -> None:
    oci.start_upload(client, repo)
    r = client.delete(f"/v2/{repo}/blobs/uploads/{oci.unique('nosuch')}")
    oci.assert_error(r, 404, "BLOB_UPLOAD_UNKNOWN")


@pytest.mark.portside_only
@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT"])
def test_unknown_upload_is_404(client: httpx.Client, repo: str, method: str) -> None:
    oci.start_upload(client, repo)  # the repository exists; the session does not
    url = f"/v2/{repo}/blobs/uploads/3f2b1c9e-0000-4000-8000-000000000000"
    params = {"digest": oci.digest(b"abc")} if method == "PUT" else None
    r = client.request(method, url, params=params, content=b"abc" if method != "GET" else None)
    oci.assert_error(r, 404, "BLOB_UPLOAD_UNKNOWN")


@pytest.mark.portside_only
@pytest.mark.parametrize("owner_sent", [b"", b"the owner's first chunk"], ids=["no-bytes-yet", "with-bytes"])
def test_session_belongs_to_its_repository(client: httpx.Client, repo: str, owner_sent: bytes) -> None:
    url = oci.start_upload(client, repo)
    if owner_sent:
        r = _patch(client, url, owner_sent, 0)
        assert r.status_code == 202, oci.error_text(r)
        url = oci.location(r)
    other = f"{repo}-thief"
    oci.start_upload(client, other)
    stolen = httpx.URL(str(url).replace(f"/v2/{repo}/", f"/v2/{other}/"))
    data = b"not yours"
    oci.assert_error(client.get(stolen), 404, "BLOB_UPLOAD_UNKNOWN")
    oci.assert_error(_patch(client, stolen, data, 0), 404, "BLOB_UPLOAD_UNKNOWN")
    oci.assert_error(
        client.put(oci.with_params(stolen, digest=oci.digest(data)), content=data), 404, "BLOB_UPLOAD_UNKNOWN"
    )
    oci.assert_error(client.delete(stolen), 404, "BLOB_UPLOAD_UNKNOWN")
    _assert_invisible(client, other, oci.digest(data))
    # The rightful owner still has the session, bytes and all.
    status = client.get(url)
    assert status.status_code == 204 and status.headers["range"] == f"0-{max(len(owner_sent) - 1, 0)}"


@pytest.mark.portside_only
def test_upload_ids_cannot_be_made_up(client: httpx.Client, repo: str) -> None:
    """Ids prove themselves (a session has no row until its first bytes): one the registry
    did not issue, or issued and then altered, names no session."""
    url = oci.start_upload(client, repo)
    issued = url.path.rsplit("/", 1)[1]
    altered = issued[:-1] + ("0" if issued[-1] != "0" else "1")
    made_up = ["0" * len(issued), altered, uuid.uuid4().hex, issued[:32]]
    data = b"made up"
    for upload_id in made_up:
        forged = url.copy_with(path=url.path.rsplit("/", 1)[0] + "/" + upload_id)
        oci.assert_error(client.get(forged), 404, "BLOB_UPLOAD_UNKNOWN")
        oci.assert_error(_patch(client, forged, data, 0), 404, "BLOB_UPLOAD_UNKNOWN")
        put = client.put(oci.with_params(forged, digest=oci.digest(data)), content=data)
        oci.assert_error(put, 404, "BLOB_UPLOAD_UNKNOWN")
        oci.assert_error(client.delete(forged), 404, "BLOB_UPLOAD_UNKNOWN")
    _assert_invisible(client, repo, oci.digest(data))
    assert client.get(url).status_code == 204


# Digest verification ------------------------------------------------------------------------


def test_wrong_digest_is_rejected_and_invisible(client: httpx.Client, repo: str) -> None:
    data = oci.random_bytes(8000)
    claimed = oci.digest(data + b"!")
    url = oci.start_upload(client, repo)
    r = client.put(oci.with_params(url, digest=claimed), content=data, headers=OCTET)
    oci.assert_error(r, 400, "DIGEST_INVALID")
    _assert_invisible(client, repo, claimed)
    _assert_invisible(client, repo, oci.digest(data))


def test_wrong_digest_after_chunks(client: httpx.Client, repo: str) -> None:
    data = oci.random_bytes(8000)
    url = oci.start_upload(client, repo)
    url = oci.location(_patch(client, url, data[:4000], 0))
    url = oci.location(_patch(client, url, data[4000:], 4000))
    claimed = oci.digest(b"not this")
    r = client.put(oci.with_params(url, digest=claimed))
    oci.assert_error(r, 400, "DIGEST_INVALID")
    _assert_invisible(client, repo, claimed)
    _assert_invisible(client, repo, oci.digest(data))


@pytest.mark.portside_only
def test_sha512_digest_is_verified(client: httpx.Client, repo: str) -> None:
    data = oci.random_bytes(6000)
    url = oci.start_upload(client, repo)
    url = oci.location(_patch(client, url, data, 0))
    bad = oci.digest(data + b"x", "sha512")
    oci.assert_error(client.put(oci.with_params(url, digest=bad)), 400, "DIGEST_INVALID")
    url = oci.start_upload(client, repo)
    good = oci.digest(data, "sha512")
    r = client.put(oci.with_params(url, digest=good), content=data, headers=OCTET)
    assert r.status_code == 201, oci.error_text(r)
    assert r.headers["docker-content-digest"] == good
    _assert_blob(client, repo, data, "sha512")


def test_chunked_sha512_upload(client: httpx.Client, repo: str) -> None:
    data = oci.random_bytes(70_000)
    url = oci.start_upload(client, repo)
    url = oci.location(_patch(client, url, data[:30_000], 0))
    url = oci.location(_patch(client, url, data[30_000:], 30_000))
    r = client.put(oci.with_params(url, digest=oci.digest(data, "sha512")))
    assert r.status_code == 201, oci.error_text(r)
    _assert_blob(client, repo, data, "sha512")


@pytest.mark.parametrize("bad", ["md5:" + "a" * 32, "sha256:xyz", "sha256", "sha256:" + "A" * 64])
def test_unsupported_or_malformed_digest_is_400(client: httpx.Client, repo: str, bad: str) -> None:
    url = oci.start_upload(client, repo)
    r = client.put(oci.with_params(url, digest=bad), content=b"data", headers=OCTET)
    oci.assert_error(r, 400, "DIGEST_INVALID", "UNSUPPORTED")


def test_put_without_digest_is_refused(client: httpx.Client, repo: str) -> None:
    url = oci.start_upload(client, repo)
    r = client.put(url, content=b"data", headers=OCTET)
    oci.assert_error(r, 400, "DIGEST_INVALID", "BLOB_UPLOAD_INVALID")


def test_same_blob_uploaded_twice(client: httpx.Client, repo: str) -> None:
    blob = oci.layer(5000)
    oci.push_blob(client, repo, blob)
    oci.push_blob(client, repo, blob)
    _assert_blob(client, repo, blob.data)


@pytest.mark.portside_only
def test_content_range_must_match_body_length(client: httpx.Client, repo: str) -> None:
    url = oci.start_upload(client, repo)
    r = client.patch(url, content=b"x" * 50, headers={**OCTET, "content-range": "0-99"})
    assert r.status_code in (400, 416), oci.error_text(r)
    if r.status_code == 400:
        oci.assert_error(r, 400, "BLOB_UPLOAD_INVALID", "SIZE_INVALID")
    s = client.get(url)
    assert s.status_code == 204
    # Nothing of the bad chunk was kept: the next chunk still starts at 0.
    r = _patch(client, url, b"y" * 10, 0)
    assert r.status_code == 202, oci.error_text(r)
    assert _range_end(r) == 9


@pytest.mark.portside_only
@pytest.mark.parametrize("header", ["abc", "5-2", "bytes=0-9/10"])
def test_malformed_content_range(client: httpx.Client, repo: str, header: str) -> None:
    url = oci.start_upload(client, repo)
    r = client.patch(url, content=b"z" * 10, headers={**OCTET, "content-range": header})
    assert r.status_code in (400, 416), oci.error_text(r)
    if r.status_code == 400:
        oci.errors(r)


@pytest.mark.portside_only
def test_mount_with_malformed_digest(client: httpx.Client, repo: str) -> None:
    source = f"{repo}-src"
    oci.push_blob(client, source, oci.layer(10))
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": "sha256:nothex", "from": source})
    if r.status_code != 202:
        oci.assert_error(r, 400, "DIGEST_INVALID")


def test_upload_of_several_mib_in_many_chunks(client: httpx.Client, repo: str) -> None:
    data = oci.random_bytes(6 * 1024 * 1024 + 3)
    url = oci.start_upload(client, repo)
    step = 1024 * 1024
    for offset in range(0, len(data), step):
        r = _patch(client, url, data[offset : offset + step], offset)
        assert r.status_code == 202, oci.error_text(r)
        url = oci.location(r)
    r = client.put(oci.with_params(url, digest=oci.digest(data)))
    assert r.status_code == 201, oci.error_text(r)
    h = client.head(f"/v2/{repo}/blobs/{oci.digest(data)}")
    assert int(h.headers["content-length"]) == len(data)
    r = client.get(f"/v2/{repo}/blobs/{oci.digest(data)}", headers={"range": "bytes=5242880-5242889"})
    assert r.status_code == 206 and r.content == data[5242880:5242890]


@pytest.mark.portside_only
def test_mount_requires_the_source_to_hold_the_blob(client: httpx.Client, repo: str) -> None:
    """A blob held only by a third repository must not be mountable by naming some other
    source: that would let a repository read blobs not linked to it."""
    secret = oci.layer(4096)
    oci.push_blob(client, f"{repo}-holder", secret)
    decoy = f"{repo}-decoy"
    oci.push_blob(client, decoy, oci.layer(16))
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": secret.digest, "from": decoy})
    assert r.status_code == 202, oci.error_text(r)
    _assert_invisible(client, repo, secret.digest)


@pytest.mark.portside_only
@pytest.mark.parametrize("upload_id", ["..", "...", "..%2F..%2Fblobs", "%2e%2e", "a" * 300, "x y"])
def test_hostile_upload_ids(client: httpx.Client, repo: str, upload_id: str) -> None:
    oci.start_upload(client, repo)
    url = f"/v2/{repo}/blobs/uploads/{upload_id}"
    for method in ("GET", "PATCH", "DELETE"):
        r = client.request(method, url, content=b"evil" if method == "PATCH" else None)
        oci.assert_error(r, {400, 404}, "BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID", "NAME_UNKNOWN", "NAME_INVALID")
    r = client.put(url, params={"digest": oci.digest(b"evil")}, content=b"evil")
    oci.assert_error(r, {400, 404}, "BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID", "NAME_UNKNOWN", "NAME_INVALID")
    _assert_invisible(client, repo, oci.digest(b"evil"))


@pytest.mark.portside_only
def test_mount_sha512_blob(client: httpx.Client, repo: str) -> None:
    blob = oci.Blob(oci.random_bytes(900), algorithm="sha512")
    source = f"{repo}-src512"
    oci.push_blob(client, source, blob)
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": blob.digest, "from": source})
    assert r.status_code == 201, oci.error_text(r)
    _assert_blob(client, repo, blob.data, "sha512")


@pytest.mark.portside_only
def test_single_post_of_empty_blob(client: httpx.Client, repo: str) -> None:
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": oci.digest(b"")}, content=b"")
    assert r.status_code == 201, oci.error_text(r)
    _assert_blob(client, repo, b"")


def test_mount_into_repository_that_already_has_the_blob(client: httpx.Client, repo: str) -> None:
    blob = oci.layer(321)
    source = f"{repo}-src3"
    oci.push_blob(client, source, blob)
    oci.push_blob(client, repo, blob)
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": blob.digest, "from": source})
    assert r.status_code == 201, oci.error_text(r)
    _assert_blob(client, repo, blob.data)


@pytest.mark.portside_only
def test_single_post_streamed_without_length(client: httpx.Client, repo: str) -> None:
    data = oci.random_bytes(700_001)
    r = client.post(
        f"/v2/{repo}/blobs/uploads/", params={"digest": oci.digest(data)}, content=_stream(data), headers=OCTET
    )
    assert "content-length" not in r.request.headers
    assert r.status_code == 201, oci.error_text(r)
    _assert_blob(client, repo, data)
