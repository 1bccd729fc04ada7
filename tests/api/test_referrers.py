"""The referrers API of distribution-spec v1.1 (Distribution 2.8 lacks it)."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api import oci

pytestmark = pytest.mark.portside_only

SBOM = "application/vnd.example.sbom.v1"
SIG = "application/vnd.example.signature.v1"


def _referrers(client: httpx.Client, repo: str, subject: str, artifact_type: str | None = None) -> httpx.Response:
    params = {"artifactType": artifact_type} if artifact_type else None
    r = client.get(f"/v2/{repo}/referrers/{subject}", params=params)
    assert r.status_code == 200, oci.error_text(r)
    assert r.headers["content-type"].split(";")[0].strip() == oci.OCI_INDEX
    body = r.json()
    assert body["schemaVersion"] == 2
    assert body["mediaType"] == oci.OCI_INDEX
    assert isinstance(body["manifests"], list)
    return r


def _by_digest(response: httpx.Response) -> dict[str, dict]:
    return {d["digest"]: d for d in response.json()["manifests"]}


@pytest.fixture
def subject(client: httpx.Client, repo: str) -> oci.Manifest:
    return oci.push_image(client, repo, "subject")


def test_put_with_subject_answers_oci_subject(client: httpx.Client, repo: str, subject: oci.Manifest) -> None:
    sbom = oci.artifact_manifest(SBOM, subject=subject)
    for blob in sbom.blobs:
        oci.push_blob(client, repo, blob)
    r = oci.put_manifest(client, repo, sbom.digest, sbom)
    assert r.status_code == 201, oci.error_text(r)
    assert r.headers.get("oci-subject") == subject.digest


def test_put_without_subject_has_no_oci_subject(client: httpx.Client, repo: str) -> None:
    m = oci.image_manifest()
    for blob in m.blobs:
        oci.push_blob(client, repo, blob)
    r = oci.put_manifest(client, repo, "plain", m)
    assert r.status_code == 201
    assert "oci-subject" not in r.headers


def test_referrers_lists_artifacts(client: httpx.Client, repo: str, subject: oci.Manifest) -> None:
    annotations = {"org.opencontainers.image.created": "2024-01-01T00:00:00Z", "org.example.format": "spdx"}
    sbom = oci.artifact_manifest(SBOM, subject=subject, annotations=annotations)
    sig = oci.artifact_manifest(SIG, subject=subject)
    oci.push_manifest(client, repo, sbom)
    oci.push_manifest(client, repo, sig)
    found = _by_digest(_referrers(client, repo, subject.digest))
    assert set(found) == {sbom.digest, sig.digest}
    d = found[sbom.digest]
    assert d["mediaType"] == oci.OCI_MANIFEST
    assert d["size"] == sbom.size
    assert d["artifactType"] == SBOM
    assert d["annotations"] == annotations
    assert found[sig.digest]["artifactType"] == SIG
    assert not found[sig.digest].get("annotations")


def test_artifact_type_falls_back_to_config_media_type(client: httpx.Client, repo: str, subject: oci.Manifest) -> None:
    cfg = oci.Blob(b'{"kind":"attestation"}', "application/vnd.example.attestation.config.v1+json")
    m = oci.image_manifest(cfg, [oci.layer(50)], subject=subject)
    oci.push_manifest(client, repo, m)
    d = _by_digest(_referrers(client, repo, subject.digest))[m.digest]
    assert d["artifactType"] == cfg.media_type


def test_index_referrer(client: httpx.Client, repo: str, subject: oci.Manifest) -> None:
    typed = oci.index_manifest([oci.image_manifest()], artifact_type=SBOM, subject=subject)
    untyped = oci.index_manifest([oci.image_manifest()], subject=subject, annotations={"k": "v"})
    for idx in (typed, untyped):
        oci.push_manifest(client, repo, idx.children[0])
        r = oci.put_manifest(client, repo, idx.digest, idx)
        assert r.status_code == 201, oci.error_text(r)
        assert r.headers.get("oci-subject") == subject.digest
    found = _by_digest(_referrers(client, repo, subject.digest))
    assert found[typed.digest]["mediaType"] == oci.OCI_INDEX
    assert found[typed.digest]["artifactType"] == SBOM
    assert "artifactType" not in found[untyped.digest], "an index without artifactType has none"
    assert found[untyped.digest]["annotations"] == {"k": "v"}


def test_filter_by_artifact_type(client: httpx.Client, repo: str, subject: oci.Manifest) -> None:
    sbom = oci.artifact_manifest(SBOM, subject=subject)
    sig1 = oci.artifact_manifest(SIG, subject=subject)
    sig2 = oci.artifact_manifest(SIG, subject=subject)
    for m in (sbom, sig1, sig2):
        oci.push_manifest(client, repo, m)
    r = _referrers(client, repo, subject.digest, SIG)
    assert r.headers.get("oci-filters-applied") == "artifactType"
    assert set(_by_digest(r)) == {sig1.digest, sig2.digest}
    assert all(d["artifactType"] == SIG for d in r.json()["manifests"])
    unfiltered = _referrers(client, repo, subject.digest)
    assert "oci-filters-applied" not in unfiltered.headers
    assert len(unfiltered.json()["manifests"]) == 3


def test_filter_without_match(client: httpx.Client, repo: str, subject: oci.Manifest) -> None:
    oci.push_manifest(client, repo, oci.artifact_manifest(SBOM, subject=subject))
    r = _referrers(client, repo, subject.digest, "application/vnd.example.none")
    assert r.json()["manifests"] == []
    assert r.headers.get("oci-filters-applied") == "artifactType"


def test_unknown_subject_gives_empty_index(client: httpx.Client, repo: str, subject: oci.Manifest) -> None:
    r = _referrers(client, repo, oci.digest(b"no such subject"))
    assert r.json()["manifests"] == []


def test_subject_without_referrers(client: httpx.Client, repo: str, subject: oci.Manifest) -> None:
    assert _referrers(client, repo, subject.digest).json()["manifests"] == []


def test_referrer_may_come_before_its_subject(client: httpx.Client, repo: str) -> None:
    later = oci.image_manifest()
    sig = oci.artifact_manifest(SIG, subject=later)
    for blob in sig.blobs:
        oci.push_blob(client, repo, blob)
    r = oci.put_manifest(client, repo, sig.digest, sig)
    assert r.status_code == 201, oci.error_text(r)
    assert r.headers.get("oci-subject") == later.digest
    assert set(_by_digest(_referrers(client, repo, later.digest))) == {sig.digest}
    oci.push_manifest(client, repo, later, "later")
    assert set(_by_digest(_referrers(client, repo, later.digest))) == {sig.digest}


def test_referrers_are_scoped_to_the_repository(client: httpx.Client, repo: str, subject: oci.Manifest) -> None:
    other = f"{repo}-other"
    oci.push_manifest(client, other, subject)
    mine = oci.artifact_manifest(SBOM, subject=subject)
    theirs = oci.artifact_manifest(SBOM, subject=subject)
    oci.push_manifest(client, repo, mine)
    oci.push_manifest(client, other, theirs)
    assert set(_by_digest(_referrers(client, repo, subject.digest))) == {mine.digest}
    assert set(_by_digest(_referrers(client, other, subject.digest))) == {theirs.digest}


def test_deleted_referrer_disappears(client: httpx.Client, repo: str, subject: oci.Manifest) -> None:
    keep = oci.artifact_manifest(SBOM, subject=subject)
    drop = oci.artifact_manifest(SIG, subject=subject)
    oci.push_manifest(client, repo, keep)
    oci.push_manifest(client, repo, drop)
    assert client.delete(f"/v2/{repo}/manifests/{drop.digest}").status_code == 202
    assert set(_by_digest(_referrers(client, repo, subject.digest))) == {keep.digest}


def test_referrer_pushed_by_tag(client: httpx.Client, repo: str, subject: oci.Manifest) -> None:
    sbom = oci.artifact_manifest(SBOM, subject=subject)
    for blob in sbom.blobs:
        oci.push_blob(client, repo, blob)
    r = oci.put_manifest(client, repo, "sbom-tag", sbom)
    assert r.status_code == 201 and r.headers.get("oci-subject") == subject.digest
    assert sbom.digest in _by_digest(_referrers(client, repo, subject.digest))


def test_referrer_listed_once_when_pushed_twice(client: httpx.Client, repo: str, subject: oci.Manifest) -> None:
    sbom = oci.artifact_manifest(SBOM, subject=subject)
    oci.push_manifest(client, repo, sbom)
    assert oci.put_manifest(client, repo, "again", sbom).status_code == 201
    digests = [d["digest"] for d in _referrers(client, repo, subject.digest).json()["manifests"]]
    assert digests == [sbom.digest]


def test_chain_of_referrers(client: httpx.Client, repo: str, subject: oci.Manifest) -> None:
    """A signature of an SBOM: referrers of referrers."""
    sbom = oci.artifact_manifest(SBOM, subject=subject)
    sig = oci.artifact_manifest(SIG, subject=sbom)
    oci.push_manifest(client, repo, sbom)
    oci.push_manifest(client, repo, sig)
    assert set(_by_digest(_referrers(client, repo, subject.digest))) == {sbom.digest}
    assert set(_by_digest(_referrers(client, repo, sbom.digest))) == {sig.digest}


def test_sha512_subject(client: httpx.Client, repo: str) -> None:
    target = oci.image_manifest()
    for blob in target.blobs:
        oci.push_blob(client, repo, blob)
    d512 = oci.digest(target.body, "sha512")
    assert oci.put_manifest(client, repo, d512, target).status_code == 201
    sig = oci.artifact_manifest(
        SIG, subject=None, layers=[oci.Blob(oci.random_bytes(20), "application/vnd.example.sig")]
    )
    doc = sig.json
    doc["subject"] = {"mediaType": oci.OCI_MANIFEST, "digest": d512, "size": target.size}
    sig = oci.Manifest(json.dumps(doc).encode(), oci.OCI_MANIFEST, sig.blobs)
    oci.push_manifest(client, repo, sig)
    assert set(_by_digest(_referrers(client, repo, d512))) == {sig.digest}


@pytest.mark.parametrize("bad", ["sha256:abc", "not-a-digest", "sha256:" + "Q" * 64])
def test_invalid_subject_digest_is_400(client: httpx.Client, repo: str, subject: oci.Manifest, bad: str) -> None:
    r = client.get(f"/v2/{repo}/referrers/{bad}")
    oci.assert_error(r, 400, "DIGEST_INVALID", "MANIFEST_INVALID")


def test_referrer_descriptor_digest_is_pullable(client: httpx.Client, repo: str, subject: oci.Manifest) -> None:
    sbom = oci.artifact_manifest(SBOM, subject=subject)
    oci.push_manifest(client, repo, sbom)
    for d in _referrers(client, repo, subject.digest).json()["manifests"]:
        r = client.get(f"/v2/{repo}/manifests/{d['digest']}", headers={"accept": d["mediaType"]})
        assert r.status_code == 200 and len(r.content) == d["size"]
        assert oci.digest(r.content) == d["digest"]


def test_filter_matches_the_config_media_type_fallback(client: httpx.Client, repo: str, subject: oci.Manifest) -> None:
    """The filter applies to the artifactType the descriptor shows, fallback included."""
    cfg = oci.Blob(b'{"kind":"vex"}', "application/vnd.example.vex.config.v1+json")
    m = oci.image_manifest(cfg, [oci.layer(40)], subject=subject)
    other = oci.artifact_manifest(SBOM, subject=subject)
    oci.push_manifest(client, repo, m)
    oci.push_manifest(client, repo, other)
    r = _referrers(client, repo, subject.digest, cfg.media_type)
    assert set(_by_digest(r)) == {m.digest}
    assert r.headers.get("oci-filters-applied") == "artifactType"


def test_many_referrers_are_all_reachable(client: httpx.Client, repo: str, subject: oci.Manifest) -> None:
    """However the registry pages them (Link rel="next"), every referrer is listed once."""
    shared = oci.Blob(b"sig", "application/vnd.example.sig")
    oci.push_blob(client, repo, shared)
    oci.push_blob(client, repo, oci.empty_config())
    pushed = set()
    for i in range(150):
        m = oci.artifact_manifest(SIG, subject=subject, layers=[shared], annotations={"n": str(i)})
        r = oci.put_manifest(client, repo, m.digest, m)
        assert r.status_code == 201, oci.error_text(r)
        pushed.add(m.digest)
    seen: list[str] = []
    r = _referrers(client, repo, subject.digest)
    for _ in range(200):
        seen += [d["digest"] for d in r.json()["manifests"]]
        link = r.headers.get("link")
        if not link:
            break
        nxt = r.request.url.join(link.split(";")[0].strip().strip("<>"))
        r = client.get(nxt)
        assert r.status_code == 200 and r.headers["content-type"].split(";")[0] == oci.OCI_INDEX
    assert len(seen) == len(set(seen)) == 150
    assert set(seen) == pushed


def test_filter_with_plus_in_artifact_type(client: httpx.Client, repo: str, subject: oci.Manifest) -> None:
    plus = "application/vnd.example.sbom.v2+json"
    m = oci.artifact_manifest(plus, subject=subject)
    other = oci.artifact_manifest(SBOM, subject=subject)
    oci.push_manifest(client, repo, m)
    oci.push_manifest(client, repo, other)
    r = _referrers(client, repo, subject.digest, plus)  # httpx sends the + as %2B
    assert "%2B" in str(r.request.url)
    assert set(_by_digest(r)) == {m.digest}
    assert _by_digest(r)[m.digest]["artifactType"] == plus
