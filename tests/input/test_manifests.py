"""Manifests must be JSON every client can read (RFC 8259: UTF-8, no NaN or Infinity, and
as I-JSON asks, no duplicate keys or numbers out of range) with the image spec's types in
its fields; anything else is 400 MANIFEST_INVALID, never stored, never a 500."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.api import oci

DEPTH = 100_000


def _pushed_parts(client: httpx.Client, repo: str) -> tuple[oci.Manifest, dict[str, Any]]:
    manifest = oci.image_manifest()
    for blob in manifest.blobs:
        oci.push_blob(client, repo, blob)
    return manifest, manifest.json


def _refused(client: httpx.Client, repo: str, body: bytes, media_type: str = oci.OCI_MANIFEST) -> dict[str, Any]:
    r = client.put(f"/v2/{repo}/manifests/bad", content=body, headers={"content-type": media_type})
    error = oci.assert_error(r, 400, "MANIFEST_INVALID")
    oci.assert_error(client.get(f"/v2/{repo}/manifests/bad"), 404, "MANIFEST_UNKNOWN")
    digest = oci.digest(body)
    oci.assert_error(client.get(f"/v2/{repo}/manifests/{digest}"), 404, "MANIFEST_UNKNOWN")
    return error


def _with(doc: dict[str, Any], extra: str) -> bytes:
    """`doc` as JSON with `extra` (raw JSON text, `"key": value`) added as its last member."""
    return json.dumps(doc).encode()[:-1] + b", " + extra.encode() + b"}"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_not_a_number(admin: httpx.Client, constant: str) -> None:
    repo = f"library/{oci.unique('nan')}"
    _, doc = _pushed_parts(admin, repo)
    assert constant in _refused(admin, repo, _with(doc, f'"x": {constant}'))["message"]
    doc["config"]["size"] = "__SIZE__"
    _refused(admin, repo, json.dumps(doc).replace('"__SIZE__"', constant).encode())


@pytest.mark.parametrize("number", ["9" * 5000, "-" + "9" * 5000, str(2**63), "1e400", "-1e400"])
def test_numbers_out_of_range(admin: httpx.Client, number: str) -> None:
    repo = f"library/{oci.unique('num')}"
    _, doc = _pushed_parts(admin, repo)
    _refused(admin, repo, _with(doc, f'"x": {number}'))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-8-sig"])
def test_other_encodings_and_byte_order_marks(admin: httpx.Client, encoding: str) -> None:
    repo = f"library/{oci.unique('enc')}"
    manifest, _ = _pushed_parts(admin, repo)
    _refused(admin, repo, manifest.body.decode().encode(encoding))


@pytest.mark.parametrize(
    "raw",
    [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf"],
    ids=["ff", "truncated", "encoded-surrogate", "beyond-unicode", "overlong"],
)
def test_invalid_utf8(admin: httpx.Client, raw: bytes) -> None:
    repo = f"library/{oci.unique('utf')}"
    _, doc = _pushed_parts(admin, repo)
    body = json.dumps({**doc, "annotations": {"a": "__X__"}}).encode().replace(b"__X__", raw)
    _refused(admin, repo, body)


def test_lone_surrogate_escapes(admin: httpx.Client) -> None:
    repo = f"library/{oci.unique('sur')}"
    _, doc = _pushed_parts(admin, repo)
    _refused(admin, repo, _with(doc, r'"annotations": {"a": "\ud800"}'))
    _refused(admin, repo, _with(doc, r'"x\udfff": 1'))


def test_a_surrogate_pair_is_one_character(admin: httpx.Client) -> None:
    repo = f"library/{oci.unique('pair')}"
    _, doc = _pushed_parts(admin, repo)
    body = _with(doc, r'"annotations": {"emoji": "\ud83d\ude00"}')
    r = admin.put(f"/v2/{repo}/manifests/ok", content=body, headers={"content-type": oci.OCI_MANIFEST})
    assert r.status_code == 201, oci.error_text(r)
    assert admin.get(f"/v2/{repo}/manifests/ok", headers={"accept": oci.OCI_MANIFEST}).content == body


@pytest.mark.parametrize("key", ["layers", "config", "mediaType", "x"])
def test_duplicate_keys(admin: httpx.Client, key: str) -> None:
    repo = f"library/{oci.unique('dup')}"
    _, doc = _pushed_parts(admin, repo)
    value = json.dumps(doc.get(key, 1))
    first = _with(doc, f'"{key}": {value}') if key in doc else _with({**doc, key: 1}, f'"{key}": 2')
    assert "twice" in _refused(admin, repo, first)["message"]


def test_duplicate_keys_in_a_descriptor(admin: httpx.Client) -> None:
    repo = f"library/{oci.unique('dup')}"
    _, doc = _pushed_parts(admin, repo)
    config = json.dumps(doc["config"])
    body = json.dumps({**doc, "config": "__C__"}).replace('"__C__"', config[:-1] + ', "size": 0}').encode()
    _refused(admin, repo, body)


@pytest.mark.parametrize("opening, closing", [("[", "]"), ('{"a":', "}")], ids=["arrays", "objects"])
def test_deep_nesting(admin: httpx.Client, opening: str, closing: str) -> None:
    repo = f"library/{oci.unique('deep')}"
    _, doc = _pushed_parts(admin, repo)
    inner = "1" if opening != "[" else ""
    _refused(admin, repo, _with(doc, f'"x": {opening * DEPTH}{inner}{closing * DEPTH}'))
    _refused(admin, repo, _with(doc, f'"x": {opening * 70}{inner}{closing * 70}'))


def test_nesting_a_manifest_may_have(admin: httpx.Client) -> None:
    repo = f"library/{oci.unique('nest')}"
    _, doc = _pushed_parts(admin, repo)
    body = _with(doc, f'"x": {"[" * 50}{"]" * 50}')
    r = admin.put(f"/v2/{repo}/manifests/ok", content=body, headers={"content-type": oci.OCI_MANIFEST})
    assert r.status_code == 201, oci.error_text(r)


WRONG_TYPES = [
    ("config", "urls", 5),
    ("config", "urls", [5]),
    ("config", "urls", "https://example.com/x"),
    ("config", "annotations", ["a"]),
    ("config", "annotations", {"a": 5}),
    ("config", "platform", "linux/amd64"),
    ("config", "platform", {"os": 5}),
    ("config", "platform", {"architecture": "amd64", "os": "linux", "os.features": "x"}),
    ("config", "artifactType", 7),
    ("config", "artifactType", "not a media type"),
    ("config", "mediaType", 7),
    ("config", "mediaType", "x" * 300),
    ("config", "mediaType", "application/vnd.a\u0000b"),
    ("config", "size", 1.0),
    ("config", "size", True),
    ("config", "size", "1"),
    ("config", "size", -1),
    ("config", "digest", 5),
    ("config", "data", 5),
    (None, "annotations", ["a"]),
    (None, "annotations", {"a": {"b": "c"}}),
    (None, "artifactType", 7),
    (None, "artifactType", "a/" + "b" * 300),
    (None, "schemaVersion", 2.0),
    (None, "schemaVersion", "2"),
    (None, "layers", {"0": {}}),
    (None, "layers", [5]),
    (None, "subject", 5),
    (None, "config", []),
]


@pytest.mark.parametrize("where, field, value", WRONG_TYPES)
def test_fields_of_the_wrong_type(admin: httpx.Client, where: str | None, field: str, value: Any) -> None:
    repo = f"library/{oci.unique('type')}"
    _, doc = _pushed_parts(admin, repo)
    (doc[where] if where else doc)[field] = value
    _refused(admin, repo, json.dumps(doc).encode())


@pytest.mark.parametrize(
    "field, value",
    [("platform", {"os": ["linux"]}), ("urls", {}), ("annotations", "x"), ("artifactType", 7)],
)
def test_index_children_of_the_wrong_type(admin: httpx.Client, field: str, value: Any) -> None:
    repo = f"library/{oci.unique('idx')}"
    child = oci.push_image(admin, repo)
    doc = {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": [{**child.descriptor(), field: value}]}
    _refused(admin, repo, json.dumps(doc).encode(), oci.OCI_INDEX)


def test_what_the_checks_accept(admin: httpx.Client) -> None:
    """Every optional field with its right type, unknown fields and unicode: accepted as sent."""
    repo = f"library/{oci.unique('good')}"
    _, doc = _pushed_parts(admin, repo)
    doc["config"].update(
        annotations={"org.opencontainers.image.title": "ünïcödé ✓"},
        urls=["https://example.com/blob"],
        artifactType="application/vnd.example+json",
        platform={"architecture": "arm64", "os": "linux", "variant": "v8", "os.features": ["a"]},
    )
    doc.update(annotations={"k": "v"}, artifactType="application/vnd.example.thing.v1+json", extension={"n": [1.5, -2]})
    body = json.dumps(doc, ensure_ascii=False).encode()
    r = admin.put(f"/v2/{repo}/manifests/ok", content=body, headers={"content-type": oci.OCI_MANIFEST})
    assert r.status_code == 201, oci.error_text(r)
    assert admin.get(f"/v2/{repo}/manifests/ok", headers={"accept": oci.OCI_MANIFEST}).content == body
