"""The Python `oras` client: push artifacts, one with a `subject`, and find it through referrers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import oras.oci
import oras.provider
import pytest

from tests.e2e.clients import RegistryHTTP
from tests.e2e.images import OCI_INDEX, OCI_MANIFEST, canonical_json, sha256_digest
from tests.servers import RegistryServer

pytestmark = pytest.mark.e2e

BASE_TYPE = "application/vnd.example.base.v1+json"
SBOM_TYPE = "application/vnd.example.sbom.v1+json"
SIG_TYPE = "application/vnd.example.signature.v1"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def _oras(registry: RegistryServer) -> oras.provider.Registry:
    return oras.provider.Registry(hostname=registry.host, insecure=True)


def test_oras_push_with_subject_and_referrers(
    registry: RegistryServer, registry_http: RegistryHTTP, repo: str, tmp_path: Path
) -> None:
    client = _oras(registry)
    base_file = tmp_path / "artifact.txt"
    base_file.write_bytes(b"the artifact everything refers to\n")
    sbom_file = tmp_path / "sbom.spdx.json"
    sbom_file.write_bytes(json.dumps({"spdxVersion": "SPDX-2.3", "name": repo, "pad": "x" * 10_000}).encode())

    # 1. the subject: a plain oras artifact
    resp = client.push(
        f"{registry.host}/{repo}:base",
        files=[f"{base_file}:text/plain"],
        manifest_config=f"{tmp_path / 'no-config'}:{BASE_TYPE}",
        disable_path_validation=True,
        quiet=True,
    )
    assert resp.status_code == 201, resp.text
    base_digest = resp.headers["Docker-Content-Digest"]
    base_manifest = registry_http.manifest(repo, "base")
    assert sha256_digest(base_manifest.content) == base_digest
    subject = oras.oci.Subject(mediaType=OCI_MANIFEST, digest=base_digest, size=len(base_manifest.content))

    # 2. an SBOM whose subject is the artifact, pushed by oras (its blob in chunks)
    resp = client.push(
        f"{registry.host}/{repo}:sbom",
        files=[f"{sbom_file}:application/spdx+json"],
        manifest_config=f"{tmp_path / 'no-config'}:{SBOM_TYPE}",
        manifest_annotations={"org.example.kind": "sbom"},
        subject=subject,
        do_chunked=True,
        chunk_size=4096,
        disable_path_validation=True,
        quiet=True,
    )
    assert resp.status_code == 201, resp.text
    assert resp.headers.get("OCI-Subject") == base_digest, dict(resp.headers)
    sbom_digest = resp.headers["Docker-Content-Digest"]
    sbom_manifest = registry_http.manifest(repo, sbom_digest)
    assert sbom_manifest.json()["subject"]["digest"] == base_digest

    # oras pulls the SBOM back intact
    out = tmp_path / "pulled"
    files = client.pull(f"{registry.host}/{repo}:sbom", outdir=str(out))
    assert [Path(f).name for f in files] == ["sbom.spdx.json"]
    assert Path(files[0]).read_bytes() == sbom_file.read_bytes()

    # 3. a signature: an artifact manifest with `artifactType` and the empty config,
    #    pushed by digest only (no tag), as signing tools do
    sig_payload = b"signature over " + base_digest.encode()
    sig_layer = {
        "mediaType": "application/octet-stream",
        "digest": sha256_digest(sig_payload),
        "size": len(sig_payload),
    }
    with httpx.Client(base_url=registry.url, timeout=30) as http:
        for data in (b"{}", sig_payload):
            put = http.post(
                f"/v2/{repo}/blobs/uploads/",
                params={"digest": sha256_digest(data)},
                content=data,
                headers={"Content-Type": "application/octet-stream"},
            )
            if put.status_code == 202:  # monolithic POST not taken: finish the session with a PUT
                url = httpx.URL(registry.url).join(put.headers["Location"])
                put = http.put(url.copy_merge_params({"digest": sha256_digest(data)}), content=data)
            assert put.status_code == 201, put.text
        sig_manifest = canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": SIG_TYPE,
                "config": {"mediaType": EMPTY_TYPE, "digest": EMPTY_DIGEST, "size": 2},
                "layers": [sig_layer],
                "subject": {"mediaType": OCI_MANIFEST, "digest": base_digest, "size": len(base_manifest.content)},
                "annotations": {"org.example.kind": "signature"},
            }
        )
        sig_digest = sha256_digest(sig_manifest)
        put = http.put(
            f"/v2/{repo}/manifests/{sig_digest}", content=sig_manifest, headers={"Content-Type": OCI_MANIFEST}
        )
        assert put.status_code == 201, put.text
        assert put.headers.get("OCI-Subject") == base_digest, dict(put.headers)

        # 4. the referrers API lists both, with their artifact types and annotations
        ref = http.get(f"/v2/{repo}/referrers/{base_digest}")
        assert ref.status_code == 200, ref.text
        assert ref.headers["content-type"].split(";")[0] == OCI_INDEX
        index = ref.json()
        assert index["schemaVersion"] == 2 and index["mediaType"] == OCI_INDEX
        keys = ("mediaType", "digest", "size", "artifactType", "annotations")
        found = {m["digest"]: {k: m.get(k) for k in keys} for m in index["manifests"]}
        assert set(found) == {sbom_digest, sig_digest}, index
        assert found[sbom_digest] == {
            "mediaType": OCI_MANIFEST,
            "digest": sbom_digest,
            "size": len(sbom_manifest.content),
            "artifactType": SBOM_TYPE,  # no artifactType field: the config's media type
            "annotations": {"org.example.kind": "sbom"},
        }
        assert found[sig_digest] == {
            "mediaType": OCI_MANIFEST,
            "digest": sig_digest,
            "size": len(sig_manifest),
            "artifactType": SIG_TYPE,
            "annotations": {"org.example.kind": "signature"},
        }

        # filtering by artifactType
        only_sig = http.get(f"/v2/{repo}/referrers/{base_digest}", params={"artifactType": SIG_TYPE})
        assert only_sig.status_code == 200, only_sig.text
        assert "artifactType" in only_sig.headers.get("OCI-Filters-Applied", ""), dict(only_sig.headers)
        assert [m["digest"] for m in only_sig.json()["manifests"]] == [sig_digest]
        only_sbom = http.get(f"/v2/{repo}/referrers/{base_digest}", params={"artifactType": SBOM_TYPE})
        assert [m["digest"] for m in only_sbom.json()["manifests"]] == [sbom_digest]
        none = http.get(f"/v2/{repo}/referrers/{base_digest}", params={"artifactType": "application/x-nothing"})
        assert none.status_code == 200 and none.json()["manifests"] == []

        # a digest nothing refers to: an empty index, never 404
        unknown = "sha256:" + hashlib.sha256(repo.encode()).hexdigest()
        empty = http.get(f"/v2/{repo}/referrers/{unknown}")
        assert empty.status_code == 200, empty.text
        assert empty.json()["manifests"] == []

        # the SBOM itself has no referrers
        assert http.get(f"/v2/{repo}/referrers/{sbom_digest}").json()["manifests"] == []

        # deleting a referrer takes it out of the list
        assert http.delete(f"/v2/{repo}/manifests/{sig_digest}").status_code == 202
        after = http.get(f"/v2/{repo}/referrers/{base_digest}").json()
        assert [m["digest"] for m in after["manifests"]] == [sbom_digest]
