"""NUL characters in what clients send: PostgreSQL can neither store nor compare text that
holds one, and no name or stored text here does, so each is refused (400) or names nothing
(401, 404), on both stacks alike, never a 500."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.api import oci
from tests.input.conftest import API, harbor_error

NUL = "%00"


@pytest.mark.parametrize(
    "path",
    [
        f"/projects/a{NUL}b",
        f"/projects?name=a{NUL}b",
        f"/projects?q=name%3Da{NUL}b",
        f"/projects?owner=a{NUL}",
        f"/users/search?username=a{NUL}",
        f"/users?q=username%3D~a{NUL}",
        f"/repositories?q=name%3D~a{NUL}",
        f"/audit-logs?q=username%3Da{NUL}",
        f"/projects/library/members?entityname=a{NUL}",
        f"/projects/library/repositories/a{NUL}b",
        "/projects/library/repositories/a%2500b",
        "/projects/library/repositories/a%2500b/artifacts",
        f"/projects/library/repositories/app/artifacts/sha256:{NUL}",
        f"/projects/library/logs?q=operation%3D{NUL}",
        f"/quotas?reference_id=1{NUL}",
        f"/robots?q=name%3D{NUL}",
    ],
)
def test_in_names_and_queries(admin: httpx.Client, anonymous: httpx.Client, path: str) -> None:
    for client in (admin, anonymous):
        harbor_error(client.get(API + path), 400, 401, 403, 404)
    r = anonymous.head(f"{API}/projects?project_name=a{NUL}")
    assert r.status_code in (400, 404)


@pytest.mark.parametrize("path", [f"/v2/_catalog?last=a{NUL}", f"/v2/library/app/tags/list?last=a{NUL}&n=5"])
def test_in_the_last_of_a_listing(admin: httpx.Client, path: str) -> None:
    oci.push_image(admin, "library/app", "v1")
    oci.assert_error(admin.get(path), 400, "UNSUPPORTED")


@pytest.mark.parametrize("username", ["a\0b", "robot$a\0b", "u" * 300, "robot$" + "r" * 300])
def test_in_credentials(server_url: str, username: str) -> None:
    token = base64.b64encode(f"{username}:Passw0rd-long".encode()).decode()
    headers = {"authorization": f"Basic {token}"}
    with httpx.Client(base_url=server_url, timeout=60.0) as client:
        harbor_error(client.get(f"{API}/users/current", headers=headers), 401)
        oci.assert_error(client.get("/v2/", headers=headers), 401, "UNAUTHORIZED")
        r = client.get(
            "/service/token", params={"service": "portside", "scope": "repository:library/app:pull"}, headers=headers
        )
        assert r.status_code == 401, r.text


def test_in_a_member_name(admin: httpx.Client, project: str) -> None:
    body = {"role_id": 2, "member_user": {"username": "a\0b"}}
    harbor_error(admin.post(f"{API}/projects/{project}/members", json=body), 400)


@pytest.mark.parametrize(
    "path, body",
    [
        ("/users", {"username": "nul", "password": "Passw0rd-long", "email": "n@example.com", "realname": "a\0b"}),
        ("/users", {"username": "nul\0x", "password": "Passw0rd-long", "email": "n@example.com"}),
        ("/projects", {"project_name": "nul", "metadata": {"a\0": "b"}}),
        ("/projects", {"project_name": "nul", "metadata": {"a": "b\0"}}),
    ],
)
def test_in_stored_text(admin: httpx.Client, path: str, body: dict[str, object]) -> None:
    harbor_error(admin.post(API + path, json=body), 400)


@pytest.mark.parametrize("artifact_type", [f"a{NUL}b", "application/vnd.a%00", "not a media type"])
def test_in_a_referrers_filter(admin: httpx.Client, artifact_type: str) -> None:
    repo = f"library/{oci.unique('refs')}"
    subject = oci.push_image(admin, repo, "v1")
    oci.push_manifest(admin, repo, oci.artifact_manifest("application/vnd.example.sig", subject=subject))
    r = admin.get(f"/v2/{repo}/referrers/{subject.digest}?artifactType={artifact_type}")
    assert r.status_code == 200 and r.json()["manifests"] == [], oci.error_text(r)
    assert len(admin.get(f"/v2/{repo}/referrers/{subject.digest}").json()["manifests"]) == 1


@pytest.mark.parametrize("method", ["GET", "DELETE", "PATCH", "PUT"])
@pytest.mark.parametrize("upload_id", [f"a{NUL}b", "0" * 31 + NUL, "not-an-upload"])
def test_in_an_upload_id(admin: httpx.Client, method: str, upload_id: str) -> None:
    r = admin.request(method, f"/v2/library/app/blobs/uploads/{upload_id}?digest={oci.digest(b'')}", content=b"")
    oci.assert_error(r, 404, "BLOB_UPLOAD_UNKNOWN")
