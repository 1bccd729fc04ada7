"""Blob GET/HEAD (with Range), DELETE, and repository scoping of blobs."""

from __future__ import annotations

import httpx
import pytest

from tests.api import oci


@pytest.fixture
def stored(client: httpx.Client, repo: str) -> oci.Blob:
    blob = oci.layer(4096 + 17)
    oci.push_blob(client, repo, blob)
    return blob


def test_get_blob(client: httpx.Client, repo: str, stored: oci.Blob) -> None:
    r = client.get(f"/v2/{repo}/blobs/{stored.digest}")
    assert r.status_code == 200, oci.error_text(r)
    assert r.content == stored.data
    assert r.headers["docker-content-digest"] == stored.digest
    assert int(r.headers["content-length"]) == stored.size
    assert r.headers.get("etag"), "blob answers carry an ETag"
    assert "content-encoding" not in r.headers, "blobs go out as stored, never re-encoded"


def test_head_blob(client: httpx.Client, repo: str, stored: oci.Blob) -> None:
    r = client.head(f"/v2/{repo}/blobs/{stored.digest}")
    assert r.status_code == 200, oci.error_text(r)
    assert r.content == b""
    assert r.headers["docker-content-digest"] == stored.digest
    assert int(r.headers["content-length"]) == stored.size
    assert r.headers.get("etag")


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=10-19", 10, 19),
        ("bytes=100-", 100, None),
        ("bytes=-16", None, None),
        ("bytes=4000-999999", 4000, None),
    ],
)
def test_get_blob_range(
    client: httpx.Client, repo: str, stored: oci.Blob, header: str, start: int | None, end: int | None
) -> None:
    size = stored.size
    if start is None:  # suffix range: the last 16 bytes
        start, end = size - 16, size - 1
    elif end is None:
        end = size - 1
    r = client.get(f"/v2/{repo}/blobs/{stored.digest}", headers={"range": header})
    assert r.status_code == 206, oci.error_text(r)
    assert r.content == stored.data[start : end + 1]
    assert r.headers["content-range"] == f"bytes {start}-{end}/{size}"
    assert int(r.headers["content-length"]) == end - start + 1


@pytest.mark.portside_only
def test_get_blob_unsatisfiable_range(client: httpx.Client, repo: str, stored: oci.Blob) -> None:
    r = client.get(f"/v2/{repo}/blobs/{stored.digest}", headers={"range": f"bytes={stored.size + 10}-"})
    assert r.status_code == 416, oci.error_text(r)
    assert r.headers.get("content-range") == f"bytes */{stored.size}"


@pytest.mark.portside_only
def test_head_blob_unsatisfiable_range(client: httpx.Client, repo: str, stored: oci.Blob) -> None:
    r = client.head(f"/v2/{repo}/blobs/{stored.digest}", headers={"range": "bytes=-0"})
    assert r.status_code == 416
    assert r.headers.get("content-range") == f"bytes */{stored.size}"


def test_get_blob_suffix_longer_than_blob_is_all_of_it(client: httpx.Client, repo: str, stored: oci.Blob) -> None:
    r = client.get(f"/v2/{repo}/blobs/{stored.digest}", headers={"range": f"bytes=-{stored.size * 2}"})
    assert r.status_code == 206, oci.error_text(r)
    assert r.content == stored.data
    assert r.headers["content-range"] == f"bytes 0-{stored.size - 1}/{stored.size}"


def test_head_blob_with_range(client: httpx.Client, repo: str, stored: oci.Blob) -> None:
    r = client.head(f"/v2/{repo}/blobs/{stored.digest}", headers={"range": "bytes=100-199"})
    assert r.status_code == 206, oci.error_text(r)
    assert r.content == b""
    assert r.headers["content-range"] == f"bytes 100-199/{stored.size}"
    assert int(r.headers["content-length"]) == 100
    assert r.headers["docker-content-digest"] == stored.digest
    assert r.headers["accept-ranges"] == "bytes"


def test_ranged_answers_keep_the_blob_headers(client: httpx.Client, repo: str, stored: oci.Blob) -> None:
    whole = client.get(f"/v2/{repo}/blobs/{stored.digest}")
    part = client.get(f"/v2/{repo}/blobs/{stored.digest}", headers={"range": "bytes=1-2"})
    assert part.status_code == 206
    for name in ("docker-content-digest", "etag", "accept-ranges", "content-type"):
        assert part.headers[name] == whole.headers[name], name
    assert whole.headers["accept-ranges"] == "bytes"


@pytest.mark.portside_only
@pytest.mark.parametrize(
    "header",
    ["bytes=0-1,5-9", "bytes=abc", "items=0-5", "bytes=9-3", "bytes=-", "bytes 0-5"],
    ids=["several", "not-a-number", "other-unit", "backwards", "empty", "no-equals"],
)
def test_get_blob_with_unusable_range_is_whole(client: httpx.Client, repo: str, stored: oci.Blob, header: str) -> None:
    """Several ranges or a malformed header: the whole blob, as RFC 9110 allows."""
    r = client.get(f"/v2/{repo}/blobs/{stored.digest}", headers={"range": header})
    assert r.status_code == 200, oci.error_text(r)
    assert r.content == stored.data
    assert "content-range" not in r.headers


def test_if_range_with_the_etag_gets_the_range(client: httpx.Client, repo: str, stored: oci.Blob) -> None:
    etag = client.head(f"/v2/{repo}/blobs/{stored.digest}").headers["etag"]
    r = client.get(f"/v2/{repo}/blobs/{stored.digest}", headers={"range": "bytes=10-19", "if-range": etag})
    assert r.status_code == 206, oci.error_text(r)
    assert r.content == stored.data[10:20]


@pytest.mark.parametrize("validator", ['"sha256:0000"', "W/{etag}"], ids=["other-etag", "weak"])
def test_if_range_with_another_validator_gets_the_whole_blob(
    client: httpx.Client, repo: str, stored: oci.Blob, validator: str
) -> None:
    etag = client.head(f"/v2/{repo}/blobs/{stored.digest}").headers["etag"]
    headers = {"range": "bytes=10-19", "if-range": validator.format(etag=etag)}
    r = client.get(f"/v2/{repo}/blobs/{stored.digest}", headers=headers)
    assert r.status_code == 200, oci.error_text(r)
    assert r.content == stored.data


@pytest.mark.portside_only
def test_if_range_with_the_last_modified_date_gets_the_range(client: httpx.Client, repo: str, stored: oci.Blob) -> None:
    modified = client.get(f"/v2/{repo}/blobs/{stored.digest}").headers.get("last-modified")
    if modified is None:
        pytest.skip("blobs in this stack's storage carry no Last-Modified")
    r = client.get(f"/v2/{repo}/blobs/{stored.digest}", headers={"range": "bytes=10-19", "if-range": modified})
    assert r.status_code == 206, oci.error_text(r)
    assert r.content == stored.data[10:20]


def test_ranges_of_a_large_blob_are_exact(client: httpx.Client, repo: str) -> None:
    """Ranges that start, end and cross where the server reads in slices (a few MiB)."""
    mib = 1024 * 1024
    blob = oci.layer(9 * mib + 123)
    oci.push_blob(client, repo, blob)
    for start, end in [(0, 9 * mib + 122), (1, 4 * mib), (4 * mib - 1, 8 * mib + 1), (5 * mib, 9 * mib + 122)]:
        r = client.get(f"/v2/{repo}/blobs/{blob.digest}", headers={"range": f"bytes={start}-{end}"})
        assert r.status_code == 206, oci.error_text(r)
        assert int(r.headers["content-length"]) == end - start + 1
        assert r.content == blob.data[start : end + 1], (start, end)


def test_get_blob_without_range_is_whole(client: httpx.Client, repo: str) -> None:
    """A blob of a few MiB comes back whole and exact."""
    blob = oci.layer(3 * 1024 * 1024 + 5)
    oci.push_blob(client, repo, blob)
    r = client.get(f"/v2/{repo}/blobs/{blob.digest}")
    assert r.status_code == 200
    assert oci.digest(r.content) == blob.digest


def test_unknown_blob_is_404_blob_unknown(client: httpx.Client, repo: str, stored: oci.Blob) -> None:
    missing = oci.digest(b"never pushed " + oci.random_bytes(8))
    r = client.get(f"/v2/{repo}/blobs/{missing}")
    oci.assert_error(r, 404, "BLOB_UNKNOWN")


def test_unknown_blob_in_unknown_repo(client: httpx.Client, repo: str) -> None:
    r = client.get(f"/v2/{repo}/blobs/{oci.digest(b'x')}")
    oci.assert_error(r, 404, "BLOB_UNKNOWN", "NAME_UNKNOWN")


def test_head_unknown_blob_is_404_without_body(client: httpx.Client, repo: str, stored: oci.Blob) -> None:
    r = client.head(f"/v2/{repo}/blobs/{oci.digest(b'absent')}")
    assert r.status_code == 404
    assert r.content == b""


def test_blob_is_readable_only_from_repositories_that_hold_it(client: httpx.Client, repo: str) -> None:
    blob = oci.layer(300)
    oci.push_blob(client, repo, blob)
    other = f"{repo}-other"
    oci.push_blob(client, other, oci.layer(10))  # the other repository exists
    r = client.get(f"/v2/{other}/blobs/{blob.digest}")
    oci.assert_error(r, 404, "BLOB_UNKNOWN")
    assert client.head(f"/v2/{other}/blobs/{blob.digest}").status_code == 404


def test_same_blob_in_two_repositories(client: httpx.Client, repo: str) -> None:
    blob = oci.layer(1000)
    other = f"{repo}-twin"
    oci.push_blob(client, repo, blob)
    oci.push_blob(client, other, blob)
    for name in (repo, other):
        r = client.get(f"/v2/{name}/blobs/{blob.digest}")
        assert r.status_code == 200 and r.content == blob.data


def test_delete_blob(client: httpx.Client, repo: str, stored: oci.Blob) -> None:
    r = client.delete(f"/v2/{repo}/blobs/{stored.digest}")
    assert r.status_code == 202, oci.error_text(r)
    oci.assert_error(client.get(f"/v2/{repo}/blobs/{stored.digest}"), 404, "BLOB_UNKNOWN")
    assert client.head(f"/v2/{repo}/blobs/{stored.digest}").status_code == 404


def test_delete_blob_in_one_repository_keeps_it_in_another(client: httpx.Client, repo: str) -> None:
    blob = oci.layer(777)
    other = f"{repo}-keep"
    oci.push_blob(client, repo, blob)
    oci.push_blob(client, other, blob)
    assert client.delete(f"/v2/{repo}/blobs/{blob.digest}").status_code == 202
    assert client.get(f"/v2/{repo}/blobs/{blob.digest}").status_code == 404
    r = client.get(f"/v2/{other}/blobs/{blob.digest}")
    assert r.status_code == 200 and r.content == blob.data


def test_delete_unknown_blob_is_404(client: httpx.Client, repo: str, stored: oci.Blob) -> None:
    r = client.delete(f"/v2/{repo}/blobs/{oci.digest(b'gone already')}")
    oci.assert_error(r, 404, "BLOB_UNKNOWN")


def test_blob_can_be_pushed_again_after_delete(client: httpx.Client, repo: str, stored: oci.Blob) -> None:
    assert client.delete(f"/v2/{repo}/blobs/{stored.digest}").status_code == 202
    oci.push_blob(client, repo, stored)
    r = client.get(f"/v2/{repo}/blobs/{stored.digest}")
    assert r.status_code == 200 and r.content == stored.data


@pytest.mark.portside_only
def test_sha512_blob_roundtrip(client: httpx.Client, repo: str) -> None:
    blob = oci.Blob(oci.random_bytes(2048), algorithm="sha512")
    assert blob.digest.startswith("sha512:") and len(blob.digest) == 7 + 128
    oci.push_blob(client, repo, blob)
    r = client.get(f"/v2/{repo}/blobs/{blob.digest}")
    assert r.status_code == 200, oci.error_text(r)
    assert r.content == blob.data
    assert r.headers["docker-content-digest"] == blob.digest
    h = client.head(f"/v2/{repo}/blobs/{blob.digest}")
    assert h.status_code == 200 and int(h.headers["content-length"]) == blob.size


@pytest.mark.portside_only
@pytest.mark.parametrize("bad", ["sha256:abc", "sha256:" + "Z" * 64, "nodigest", "sha256:" + "a" * 63])
def test_malformed_digest_in_blob_url(client: httpx.Client, repo: str, stored: oci.Blob, bad: str) -> None:
    r = client.get(f"/v2/{repo}/blobs/{bad}")
    oci.assert_error(r, {400, 404}, "DIGEST_INVALID", "BLOB_UNKNOWN", "NAME_INVALID")
