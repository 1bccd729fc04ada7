"""The base endpoint and the health probes."""

from __future__ import annotations

import httpx
import pytest

from tests.api import oci


def test_v2_base_answers_200_with_api_version_header(client: httpx.Client) -> None:
    r = client.get("/v2/")
    assert r.status_code == 200, oci.error_text(r)
    assert r.headers.get("docker-distribution-api-version") == "registry/2.0"


def test_v2_base_head(client: httpx.Client) -> None:
    r = client.head("/v2/")
    assert r.status_code in (200, 405), oci.error_text(r)


@pytest.mark.portside_only
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_probes(client: httpx.Client, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200, oci.error_text(r)


def test_api_version_header_on_every_v2_answer(client: httpx.Client, repo: str) -> None:
    """Clients look for the header on /v2 answers, errors included."""
    for r in (
        client.get(f"/v2/{repo}/tags/list"),
        client.get(f"/v2/{repo}/manifests/latest"),
        client.head(f"/v2/{repo}/blobs/{oci.digest(b'nothing')}"),
    ):
        assert r.headers.get("docker-distribution-api-version") == "registry/2.0", oci.error_text(r)
