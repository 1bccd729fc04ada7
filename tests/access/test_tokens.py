"""Registry tokens: what a valid one holds, and that every bad one is refused.

Forged tokens are signed with the server's own key (DATA_DIR/token-key.pem) so that each
one is wrong in exactly one way; a control token forged the same way but correct is
accepted, which proves the refusals are about that one thing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.access.accounts import ADMIN, ANONYMOUS, PRINCIPALS, Principal, create_user, delete_user
from tests.access.conftest import AclServer
from tests.access.flow import (
    TokenFlow,
    access_set,
    describe,
    error_codes,
    jwt_claims,
    parse_challenge,
    repo_scope,
)
from tests.api import oci

DEV = PRINCIPALS["developer"]
GUEST = PRINCIPALS["guest"]


def _server_key(acl: AclServer) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key((acl.data_dir / "token-key.pem").read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def _account(acl: AclServer, who: Principal) -> dict[str, Any]:
    """The claims naming `who`'s account and the seeded projects, as Portside issues them."""
    return {
        "portside_id": acl.seeded.user_ids[who.key],
        "portside_gen": 0,
        "portside_projects": dict(acl.seeded.project_ids),
    }


def _claims(sub: str, access: list[dict[str, Any]], **override: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "portside",
        "sub": sub,
        "aud": "portside",
        "iat": now,
        "nbf": now - 1,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "portside_kind": "user",
        "access": access,
    }
    claims.update(override)
    return {k: v for k, v in claims.items() if v is not None}


def _pull_push(repo: str) -> list[dict[str, Any]]:
    return [{"type": "repository", "name": repo, "actions": ["pull", "push"]}]


def _start_upload(acl: AclServer, token: str, repo: str) -> httpx.Response:
    with httpx.Client(base_url=acl.url, timeout=30.0) as c:
        return c.post(f"/v2/{repo}/blobs/uploads/", headers={"Authorization": f"Bearer {token}", "content-length": "0"})


def _assert_token_refused(r: httpx.Response, error: str) -> None:
    assert r.status_code == 401, describe(r)
    assert "UNAUTHORIZED" in error_codes(r), describe(r)
    challenge = parse_challenge(r.headers["www-authenticate"])
    assert challenge.get("error") == error, describe(r)
    assert challenge["realm"].endswith("/service/token") and challenge["service"] == "portside", describe(r)


# --------------------------------------------------------------------------- a valid token


def test_issued_token_claims(acl: AclServer) -> None:
    with TokenFlow(acl.url, DEV) as flow:
        before = int(time.time())
        r = flow.token_response(repo_scope("priv/claims", "pull,push,delete"))
        assert r.status_code == 200, describe(r)
        body = r.json()
        token = body["token"]
        header = jwt.get_unverified_header(token)
        assert header["alg"] == "ES256"
        # verifies with the server's public key, for this audience and issuer
        claims = jwt.decode(
            token, _server_key(acl).public_key(), algorithms=["ES256"], audience="portside", issuer="portside"
        )
        for name in ("iss", "sub", "aud", "exp", "nbf", "iat", "jti"):
            assert name in claims, claims
        assert claims["sub"] == DEV.username
        assert before - 2 <= claims["iat"] <= time.time() + 2
        assert claims["nbf"] <= claims["iat"] < claims["exp"]
        assert claims["exp"] - claims["iat"] == body["expires_in"] > 0
        # a developer gets pull and push, not delete: only what was granted is in the token
        assert claims["access"] == [{"type": "repository", "name": "priv/claims", "actions": ["pull", "push"]}]
        assert body["issued_at"].endswith("Z")
        assert r.headers.get("cache-control") == "no-store"
        assert "refresh_token" not in body
        # two tokens never share a jti
        assert jwt_claims(flow.token(repo_scope("priv/claims", "pull")))["jti"] != claims["jti"]


def test_control_forged_token_with_server_key_is_accepted(acl: AclServer) -> None:
    """The forging below is faithful: a correct token made this way works."""
    claims = _claims(DEV.username or "", _pull_push("priv/forged-ok"), **_account(acl, DEV))
    token = jwt.encode(claims, _server_key(acl), algorithm="ES256")
    assert _start_upload(acl, token, "priv/forged-ok").status_code == 202


# --------------------------------------------------------------------------- bad tokens


def _forged(acl: AclServer, repo: str, **override: Any) -> str:
    claims = _claims(DEV.username or "", _pull_push(repo), **_account(acl, DEV))
    claims.update(override)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, _server_key(acl), algorithm="ES256")


@pytest.mark.parametrize(
    "override",
    [
        pytest.param(
            {"exp": int(time.time()) - 60, "iat": int(time.time()) - 400, "nbf": int(time.time()) - 400}, id="expired"
        ),
        pytest.param({"nbf": int(time.time()) + 3600}, id="not-yet-valid"),
        pytest.param({"aud": "another-registry"}, id="wrong-audience"),
        pytest.param({"aud": None}, id="no-audience"),
        pytest.param({"iss": "someone-else"}, id="wrong-issuer"),
        pytest.param({"exp": None}, id="no-expiry"),
        pytest.param({"access": None}, id="no-access-claim"),
        pytest.param({"portside_use": "refresh"}, id="refresh-token-as-access-token"),
    ],
)
def test_invalid_tokens_are_refused(acl: AclServer, override: dict[str, Any]) -> None:
    repo = "priv/forged-" + uuid.uuid4().hex[:8]
    if "exp" in override and override["exp"] is not None:
        # time.time() at collection; make the expiry relative to now
        override = {**override, "exp": int(time.time()) - 60}
    r = _start_upload(acl, _forged(acl, repo, **override), repo)
    _assert_token_refused(r, "invalid_token")
    assert acl.tags(repo) is None


def test_tampered_signature_is_refused(acl: AclServer) -> None:
    with TokenFlow(acl.url, DEV) as flow:
        token = flow.token(repo_scope("priv/tamper", "pull,push"))
    head, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[10] ^= 0x01
    bad_signature = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert _start_upload(acl, token, "priv/tamper").status_code == 202  # the original works
    _assert_token_refused(_start_upload(acl, f"{head}.{payload}.{bad_signature}", "priv/tamper"), "invalid_token")


def test_tampered_payload_is_refused(acl: AclServer) -> None:
    """A guest's pull token rewritten to grant push keeps its signature, which no longer matches."""
    with TokenFlow(acl.url, GUEST) as flow:
        token = flow.token(repo_scope("priv/escalate", "pull,push"))
    claims = jwt_claims(token)
    assert access_set(claims) == {("repository", "priv/escalate", "pull")}
    claims["access"] = _pull_push("priv/escalate")
    head, _, signature = token.split(".")
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    _assert_token_refused(_start_upload(acl, f"{head}.{payload}.{signature}", "priv/escalate"), "invalid_token")
    assert acl.tags("priv/escalate") is None


def test_token_signed_by_another_key_is_refused(acl: AclServer) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(_claims(DEV.username or "", _pull_push("priv/otherkey")), other, algorithm="ES256")
    _assert_token_refused(_start_upload(acl, token, "priv/otherkey"), "invalid_token")


def test_unsigned_and_symmetric_tokens_are_refused(acl: AclServer) -> None:
    claims = _claims(DEV.username or "", _pull_push("priv/alg"))
    unsigned = jwt.encode(claims, None, algorithm="none")
    _assert_token_refused(_start_upload(acl, unsigned, "priv/alg"), "invalid_token")
    # algorithm confusion: HS256 keyed with the server's public key
    public_pem = (
        _server_key(acl)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    forged = _hs256(claims, public_pem)
    _assert_token_refused(_start_upload(acl, forged, "priv/alg"), "invalid_token")
    _assert_token_refused(_start_upload(acl, "not-a-jwt", "priv/alg"), "invalid_token")
    assert acl.tags("priv/alg") is None


def _hs256(claims: dict[str, Any], key: bytes) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def test_token_for_one_repository_is_refused_on_another(acl: AclServer) -> None:
    with TokenFlow(acl.url, DEV) as flow:
        token = flow.token(repo_scope("priv/repo-a", "pull,push"))
        assert _start_upload(acl, token, "priv/repo-a").status_code == 202
        _assert_token_refused(_start_upload(acl, token, "priv/repo-b"), "insufficient_scope")
        r = flow.http.get("/v2/priv/seed/manifests/v1", headers={**flow.bearer(token), "Accept": oci.ACCEPT_ALL})
        _assert_token_refused(r, "insufficient_scope")
        # a name sharing the prefix is another repository too
        _assert_token_refused(_start_upload(acl, token, "priv/repo-a/sub"), "insufficient_scope")
    assert acl.tags("priv/repo-b") is None


def test_pull_token_cannot_push_or_delete(acl: AclServer) -> None:
    """Scope escalation: a token asked for pull only, by someone who could push and delete."""
    maint = PRINCIPALS["maintainer"]
    repo = "pub/escalation"
    with acl.admin() as admin:
        digest = oci.push_image(admin, repo, "v1").digest
    with TokenFlow(acl.url, maint) as flow:
        token = flow.token(repo_scope(repo, "pull"))
        r = flow.http.get(f"/v2/{repo}/manifests/v1", headers={**flow.bearer(token), "Accept": oci.ACCEPT_ALL})
        assert r.status_code == 200, describe(r)
        _assert_token_refused(_start_upload(acl, token, repo), "insufficient_scope")
        manifest = oci.image_manifest()
        r = flow.http.put(
            f"/v2/{repo}/manifests/v2",
            content=manifest.body,
            headers={**flow.bearer(token), "content-type": manifest.media_type},
        )
        _assert_token_refused(r, "insufficient_scope")
        r = flow.http.delete(f"/v2/{repo}/manifests/{digest}", headers=flow.bearer(token))
        _assert_token_refused(r, "insufficient_scope")
        r = flow.http.get("/v2/_catalog", headers=flow.bearer(token))
        _assert_token_refused(r, "insufficient_scope")
    assert acl.tags(repo) == ["v1"]


def test_anonymous_token_is_pull_only_on_public(acl: AclServer) -> None:
    with TokenFlow(acl.url, ANONYMOUS) as flow:
        r = flow.token_response(repo_scope("pub/seed", "pull,push"), repo_scope("priv/seed", "pull"))
        assert r.status_code == 200, describe(r)
        claims = jwt_claims(r.json()["token"])
        assert access_set(claims) == {("repository", "pub/seed", "pull")}
        assert "refresh_token" not in r.json()
        # anonymous may not get a refresh token either
        r = flow.token_response(repo_scope("pub/seed", "pull"), offline_token="true")
        assert "refresh_token" not in r.json()


# --------------------------------------------------------------------------- challenges


def test_challenge_on_push_without_credentials(acl: AclServer) -> None:
    with httpx.Client(base_url=acl.url, timeout=30.0) as c:
        r = c.post("/v2/pub/nocreds/blobs/uploads/", headers={"content-length": "0"})
        assert r.status_code == 401, describe(r)
        assert "UNAUTHORIZED" in error_codes(r)
        assert r.headers["www-authenticate"] == (
            f'Bearer realm="http://{acl.host}/service/token",service="portside",scope="repository:pub/nocreds:pull,push"'
        )
        r = c.get("/v2/")
        assert r.status_code == 401, describe(r)
        assert r.headers["www-authenticate"] == f'Bearer realm="http://{acl.host}/service/token",service="portside"'
        r = c.get("/v2/priv/seed/manifests/v1")
        assert r.status_code == 401, describe(r)
        assert r.headers["www-authenticate"] == (
            f'Bearer realm="http://{acl.host}/service/token",service="portside",scope="repository:priv/seed:pull"'
        )
        r = c.delete(f"/v2/pub/seed/manifests/{acl.seed_digests['pub/seed']}")
        assert r.status_code == 401, describe(r)
        assert parse_challenge(r.headers["www-authenticate"])["scope"] == "repository:pub/seed:delete"
        r = c.get("/v2/_catalog")
        assert r.status_code == 401, describe(r)
        assert parse_challenge(r.headers["www-authenticate"])["scope"] == "registry:catalog:*"
        # an anonymous pull of a public repository needs no token at all
        r = c.get("/v2/pub/seed/manifests/v1", headers={"Accept": oci.ACCEPT_ALL})
        assert r.status_code == 200, describe(r)


def test_token_endpoint_refuses_bad_credentials(acl: AclServer) -> None:
    with httpx.Client(base_url=acl.url, timeout=30.0) as c:
        for auth in (("u-developer", "wrong-Passw0rd"), ("no-such-user", "Passw0rd-x"), ("robot$priv+pusher", "nope")):
            r = c.get("/service/token", params={"service": "portside", "scope": "repository:pub/seed:pull"}, auth=auth)
            assert r.status_code == 401, describe(r)
            assert "UNAUTHORIZED" in error_codes(r)
            assert "token" not in r.text
        r = c.get("/service/token", params={"service": "portside"}, headers={"Authorization": "Bearer abc"})
        assert r.status_code == 401, describe(r)
        r = c.get("/service/token", params={"service": "portside"}, headers={"Authorization": "Basic %%%"})
        assert r.status_code == 401, describe(r)


# --------------------------------------------------------------------------- Basic on /v2


@pytest.mark.parametrize("key", ["developer", "rpusher"])
def test_basic_auth_directly_on_v2(acl: AclServer, key: str) -> None:
    who = PRINCIPALS[key]
    repo = f"priv/basic-{key}"
    with httpx.Client(base_url=acl.url, timeout=30.0, auth=(who.username or "", who.password or "")) as c:
        assert c.get("/v2/").status_code == 200
        manifest = oci.push_image(c, repo, "v1")
        r = c.get(f"/v2/{repo}/manifests/v1", headers={"Accept": oci.ACCEPT_ALL})
        assert r.status_code == 200 and r.headers["docker-content-digest"] == manifest.digest, describe(r)
        # neither may delete: 403 DENIED (they are known, just not allowed)
        r = c.delete(f"/v2/{repo}/manifests/{manifest.digest}")
        assert r.status_code == 403 and "DENIED" in error_codes(r), describe(r)
        # nor push into the hidden project
        r = c.post("/v2/hidden/basic/blobs/uploads/", headers={"content-length": "0"})
        assert r.status_code == 403 and "DENIED" in error_codes(r), describe(r)
    assert acl.tags(repo) == ["v1"]
    assert acl.tags("hidden/basic") is None
    with httpx.Client(base_url=acl.url, timeout=30.0, auth=(who.username or "", "Wrong-Passw0rd")) as c:
        r = c.get(f"/v2/{repo}/manifests/v1", headers={"Accept": oci.ACCEPT_ALL})
        assert r.status_code == 401 and "UNAUTHORIZED" in error_codes(r), describe(r)


def test_basic_auth_guest_push_is_denied(acl: AclServer) -> None:
    with httpx.Client(base_url=acl.url, timeout=30.0, auth=(GUEST.username or "", GUEST.password or "")) as c:
        r = c.post("/v2/priv/basic-guest/blobs/uploads/", headers={"content-length": "0"})
        assert r.status_code == 403 and "DENIED" in error_codes(r), describe(r)
        r = c.get("/v2/priv/seed/manifests/v1", headers={"Accept": oci.ACCEPT_ALL})
        assert r.status_code == 200, describe(r)
    assert acl.tags("priv/basic-guest") is None


# --------------------------------------------------------------------------- OAuth2 form


def _oauth(c: httpx.Client, **form: str) -> httpx.Response:
    return c.post("/service/token", data={"service": "portside", "client_id": "docker", **form})


def test_oauth2_password_and_refresh_grants(acl: AclServer) -> None:
    username, password = f"oauth-{uuid.uuid4().hex[:6]}", "Passw0rd-oauth"
    create_user(acl.data_dir, username, password, {acl.seeded.project_ids["priv"]: 2})
    scope = repo_scope("priv/oauth", "pull,push")
    with httpx.Client(base_url=acl.url, timeout=30.0) as c:
        # without access_type=offline: an access token, no refresh token
        r = _oauth(c, grant_type="password", username=username, password=password, scope=scope)
        assert r.status_code == 200, describe(r)
        assert "refresh_token" not in r.json()
        r = _oauth(c, grant_type="password", username=username, password=password, scope=scope, access_type="offline")
        assert r.status_code == 200, describe(r)
        body = r.json()
        refresh = body["refresh_token"]
        assert access_set(jwt_claims(body["access_token"])) == {
            ("repository", "priv/oauth", "pull"),
            ("repository", "priv/oauth", "push"),
        }
        assert _start_upload(acl, body["access_token"], "priv/oauth").status_code == 202
        # a refresh token is not an access token
        _assert_token_refused(_start_upload(acl, refresh, "priv/oauth"), "invalid_token")

        r = _oauth(c, grant_type="refresh_token", refresh_token=refresh, scope=scope)
        assert r.status_code == 200, describe(r)
        renewed = r.json()["access_token"]
        assert jwt_claims(renewed)["sub"] == username
        assert _start_upload(acl, renewed, "priv/oauth").status_code == 202
        # the refresh grant cannot reach beyond the account's rights
        r = _oauth(c, grant_type="refresh_token", refresh_token=refresh, scope=repo_scope("hidden/oauth", "pull,push"))
        assert r.status_code == 200 and access_set(jwt_claims(r.json()["access_token"])) == set(), describe(r)

        r = _oauth(c, grant_type="password", username=username, password="Wrong-Passw0rd", scope=scope)
        assert r.status_code == 401, describe(r)
        r = _oauth(c, grant_type="refresh_token", refresh_token=refresh + "x", scope=scope)
        assert r.status_code == 401, describe(r)

        # GET with offline_token=true also returns a refresh token
        r = c.get(
            "/service/token",
            params={"service": "portside", "scope": scope, "offline_token": "true"},
            auth=(username, password),
        )
        assert r.status_code == 200 and "refresh_token" in r.json(), describe(r)

        delete_user(acl.data_dir, username)
        r = _oauth(c, grant_type="refresh_token", refresh_token=refresh, scope=scope)
        assert r.status_code == 401, describe(r)
        assert "UNAUTHORIZED" in error_codes(r)
        r = _oauth(c, grant_type="password", username=username, password=password, scope=scope)
        assert r.status_code == 401, describe(r)
        r = c.get("/service/token", params={"service": "portside", "scope": scope}, auth=(username, password))
        assert r.status_code == 401, describe(r)
        # Basic on /v2 stops at once too (a remembered verification is no excuse)
        r = c.get("/v2/priv/seed/manifests/v1", auth=(username, password), headers={"Accept": oci.ACCEPT_ALL})
        assert r.status_code == 401, describe(r)


def test_admin_token_and_refresh_via_post(acl: AclServer) -> None:
    with httpx.Client(base_url=acl.url, timeout=30.0) as c:
        r = _oauth(
            c,
            grant_type="password",
            username=ADMIN.username or "",
            password=ADMIN.password or "",
            scope="registry:catalog:*",
            access_type="offline",
        )
        assert r.status_code == 200, describe(r)
        assert access_set(jwt_claims(r.json()["access_token"])) == {("registry", "catalog", "*")}
        assert r.json()["refresh_token"]


def test_oauth2_unknown_grant_type_is_a_client_error(acl: AclServer) -> None:
    """RFC 6749 5.2: an unsupported grant_type is a 400 (`unsupported_grant_type`), not 405."""
    with httpx.Client(base_url=acl.url, timeout=30.0) as c:
        r = _oauth(c, grant_type="client_credentials", scope=repo_scope("pub/seed", "pull"))
        assert r.status_code == 400, describe(r)
        assert "token" not in r.json()
