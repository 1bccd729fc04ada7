"""The access matrix over HTTP with Docker's token flow: every principal × (pull, push,
delete, catalog) × (public, private project), each cell checked against Harbor's rules.

Each cell asks the token endpoint for exactly the scope a client would, checks that the
token's `access` claim holds exactly what Harbor grants, then makes the registry request
with the token: allowed cells succeed and change the registry, refused cells get 401
`insufficient_scope` and leave it as it was. Disabled and expired robots never get a token.
"""

from __future__ import annotations

import pytest

from tests.access.accounts import (
    ADMIN,
    ANONYMOUS,
    HIDDEN,
    OPERATIONS,
    PRINCIPALS,
    PROJECTS,
    PUBLIC,
    Principal,
    expected,
    sees,
    visible_projects,
)
from tests.access.conftest import AclServer
from tests.access.flow import (
    CATALOG_SCOPE,
    TokenFlow,
    access_set,
    describe,
    error_codes,
    jwt_claims,
    parse_challenge,
    repo_scope,
)
from tests.api import oci

CELLS = [
    pytest.param(PRINCIPALS[key], project, op, id=f"{key}-{project}-{op}")
    for key in PRINCIPALS
    for project in PROJECTS
    for op in OPERATIONS
]


def _assert_refused_with_token(r, scope_repo: str, who: Principal | None = None) -> None:
    """A registry request the token does not cover: 401, UNAUTHORIZED, insufficient_scope;
    but a signed-in caller who may not even see the project is told what it would be told
    of a project that does not exist (403, DENIED), in the same words."""
    project = scope_repo.split("/", 1)[0]
    if who is not None and who is not ANONYMOUS and not sees(who, project):
        assert r.status_code == 403, describe(r)
        if r.request.method != "HEAD":
            assert error_codes(r) == ["DENIED"], describe(r)
            assert r.json()["errors"][0]["message"] == (
                f"project {project} does not exist, or {who.username} may not see it"
            ), describe(r)
        return
    assert r.status_code == 401, describe(r)
    assert "UNAUTHORIZED" in error_codes(r), describe(r)
    challenge = parse_challenge(r.headers["www-authenticate"])
    assert challenge.get("error") == "insufficient_scope", describe(r)
    assert scope_repo in challenge.get("scope", ""), describe(r)


def _granted(flow: TokenFlow, scope: str) -> tuple[str, set[tuple[str, str, str]]]:
    token = flow.token(scope)
    return token, access_set(jwt_claims(token))


@pytest.mark.parametrize(("who", "project", "op"), CELLS)
def test_access_matrix(acl: AclServer, who: Principal, project: str, op: str) -> None:
    with TokenFlow(acl.url, who) as flow:
        if not who.can_login:
            # disabled / expired robots: the token endpoint refuses the credentials outright,
            # whatever the scope (even a public pull), and so does Basic on /v2
            r = flow.token_response(repo_scope(f"{project}/seed", "pull"))
            assert r.status_code == 401, describe(r)
            assert "UNAUTHORIZED" in error_codes(r), describe(r)
            r = flow.http.get(f"/v2/{project}/seed/manifests/v1", headers={**flow.basic(), "Accept": oci.ACCEPT_ALL})
            assert r.status_code == 401, describe(r)
            return
        {"pull": _pull, "push": _push, "delete": _delete, "catalog": _catalog}[op](acl, flow, who, project)


def _pull(acl: AclServer, flow: TokenFlow, who: Principal, project: str) -> None:
    repo = f"{project}/seed"
    token, granted = _granted(flow, repo_scope(repo, "pull"))
    allowed = expected(who, project, "pull")
    assert granted == ({("repository", repo, "pull")} if allowed else set())
    r = flow.http.get(f"/v2/{repo}/manifests/v1", headers={**flow.bearer(token), "Accept": oci.ACCEPT_ALL})
    if allowed:
        assert r.status_code == 200, describe(r)
        assert r.headers["docker-content-digest"] == acl.seed_digests[repo]
        tags = flow.http.get(f"/v2/{repo}/tags/list", headers=flow.bearer(token))
        assert tags.status_code == 200 and tags.json()["tags"] == ["v1"], describe(tags)
    else:
        _assert_refused_with_token(r, repo, who)
        # nor may it list the tags or read a blob with that token
        tags = flow.http.get(f"/v2/{repo}/tags/list", headers=flow.bearer(token))
        _assert_refused_with_token(tags, repo, who)
        blob = flow.http.get(f"/v2/{repo}/blobs/{acl.seed_digests[repo]}", headers=flow.bearer(token))
        _assert_refused_with_token(blob, repo, who)


def _push(acl: AclServer, flow: TokenFlow, who: Principal, project: str) -> None:
    repo = f"{project}/push-{who.key}"
    token, granted = _granted(flow, repo_scope(repo, "pull,push"))
    allowed = expected(who, project, "push")
    wanted = {("repository", repo, a) for a in ("pull", "push") if expected(who, project, a)}
    assert granted == wanted
    before = acl.repositories()
    if allowed:
        with TokenFlow(acl.url, who) as pusher:
            pusher.http.headers.update(flow.bearer(token))
            manifest = oci.push_image(pusher.http, repo, "v1")
        assert acl.tags(repo) == ["v1"]
        assert acl.has_manifest(repo, manifest.digest)
        assert acl.repositories() == before | {repo}
        return
    r = flow.http.post(f"/v2/{repo}/blobs/uploads/", headers={**flow.bearer(token), "content-length": "0"})
    _assert_refused_with_token(r, repo, who)
    # a monolithic upload and a manifest straight away are refused the same way
    blob = oci.layer()
    r = flow.http.post(
        f"/v2/{repo}/blobs/uploads/",
        params={"digest": blob.digest},
        content=blob.data,
        headers={**flow.bearer(token), "content-type": "application/octet-stream"},
    )
    _assert_refused_with_token(r, repo, who)
    manifest = oci.image_manifest()
    r = flow.http.put(
        f"/v2/{repo}/manifests/v1",
        content=manifest.body,
        headers={**flow.bearer(token), "content-type": manifest.media_type},
    )
    _assert_refused_with_token(r, repo, who)
    assert acl.tags(repo) is None, f"{who} could not push, yet {repo} exists"
    assert acl.repositories() == before


def _delete(acl: AclServer, flow: TokenFlow, who: Principal, project: str) -> None:
    repo, digest = acl.delete_targets[(who.key, project)]
    token, granted = _granted(flow, repo_scope(repo, "delete"))
    allowed = expected(who, project, "delete")
    assert granted == ({("repository", repo, "delete")} if allowed else set())
    assert acl.has_manifest(repo, digest)
    r = flow.http.delete(f"/v2/{repo}/manifests/{digest}", headers=flow.bearer(token))
    if allowed:
        assert r.status_code == 202, describe(r)
        assert not acl.has_manifest(repo, digest)
        assert not acl.has_manifest(repo, "v1")
    else:
        _assert_refused_with_token(r, repo, who)
        r = flow.http.delete(f"/v2/{repo}/manifests/v1", headers=flow.bearer(token))
        _assert_refused_with_token(r, repo, who)
        assert acl.has_manifest(repo, digest) and acl.has_manifest(repo, "v1")


def _catalog(acl: AclServer, flow: TokenFlow, who: Principal, project: str) -> None:
    r = flow.token_response(CATALOG_SCOPE)
    assert r.status_code == 200, describe(r)
    token = r.json()["token"]
    granted = access_set(jwt_claims(token))
    listing = flow.http.get("/v2/_catalog", params={"n": "100000"}, headers=flow.bearer(token))
    if who is ANONYMOUS:
        # anonymous callers get no catalog (Harbor: system admins only; Portside: signed-in
        # callers, filtered); at the very least it must not show private repositories
        if listing.status_code == 401:
            assert granted == set()
            return
        assert listing.status_code == 200, describe(listing)
        shown = set(listing.json()["repositories"] or [])
        assert {r.split("/")[0] for r in shown} <= {PUBLIC, "library"}, shown
        return
    assert granted == {("registry", "catalog", "*")}
    assert listing.status_code == 200, describe(listing)
    shown = set(listing.json()["repositories"] or [])
    visible = visible_projects(who)
    # the seed repository of this cell's project is listed exactly when the caller may see it
    seed = f"{project}/seed"
    if visible is None or project in visible:
        assert seed in shown, f"{who} should see {seed}: {sorted(shown)}"
    elif who.kind == "robot" and project == PUBLIC:
        pass  # a project robot may pull public repositories; listing them is optional
    else:
        assert seed not in shown, f"{who} must not see {seed}: {sorted(shown)}"
    # and nothing of a project it may not see, ever
    if visible is not None:
        allowed = visible | ({PUBLIC, "library"} if who.kind == "robot" else set())
        leaked = {r for r in shown if r.split("/")[0] not in allowed}
        assert not leaked, f"{who} sees repositories of projects it may not see: {sorted(leaked)}"
        assert f"{HIDDEN}/seed" not in shown
    else:
        assert f"{HIDDEN}/seed" in shown


@pytest.mark.parametrize("who", [p for p in PRINCIPALS.values() if p.can_login], ids=str)
def test_star_scope_grants_exactly_the_role(acl: AclServer, who: Principal) -> None:
    """`repository:<name>:*` yields the subset of pull, push, delete the principal has."""
    with TokenFlow(acl.url, who) as flow:
        for project in (*PROJECTS, HIDDEN):
            repo = f"{project}/star"
            _, granted = _granted(flow, repo_scope(repo, "*"))
            wanted = {("repository", repo, a) for a in ("pull", "push", "delete") if expected(who, project, a)}
            if project == HIDDEN and not who.sysadmin:
                wanted = {("repository", repo, "pull")} if "*" in who.grants else set()
            assert granted == wanted, f"{who} in {project}"


def test_several_scopes_in_one_token(acl: AclServer) -> None:
    """docker asks for a push scope and a mount source's pull scope in one token request."""
    dev = PRINCIPALS["developer"]
    with TokenFlow(acl.url, dev) as flow:
        token = flow.token(
            repo_scope("priv/multi", "pull,push"), repo_scope("hidden/seed", "pull"), repo_scope("pub/seed", "pull")
        )
        assert access_set(jwt_claims(token)) == {
            ("repository", "priv/multi", "pull"),
            ("repository", "priv/multi", "push"),
            ("repository", "pub/seed", "pull"),
        }
        # mounting from a repository the token does not cover is refused, and nothing is made
        digest = acl.seed_digests["hidden/seed"]
        r = flow.http.post(
            "/v2/priv/multi/blobs/uploads/",
            params={"mount": digest, "from": "hidden/seed"},
            headers={**flow.bearer(token), "content-length": "0"},
        )
        # (the developer may not see `hidden`: it is told so as of a project that does not exist)
        _assert_refused_with_token(r, "hidden/seed", dev)
        assert acl.tags("priv/multi") is None


def test_admin_sees_everything(acl: AclServer) -> None:
    with TokenFlow(acl.url, ADMIN) as flow:
        token = flow.token(repo_scope("hidden/seed", "pull"))
        r = flow.http.get("/v2/hidden/seed/manifests/v1", headers={**flow.bearer(token), "Accept": oci.ACCEPT_ALL})
        assert r.status_code == 200, describe(r)
