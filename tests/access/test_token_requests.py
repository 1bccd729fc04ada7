"""`/service/token` refuses a request it cannot read with 400, before any credentials.

A scope outside docker/distribution's grammar (scope.md) is malformed; a `service` other
than Portside's own asks for someone else's token. Both get 400 with the registry's error
body, on GET (docker, podman, skopeo) and on the OAuth2 POST form (docker, containerd),
never 405 and never a token. The scopes real clients send still get their tokens.
"""

from __future__ import annotations

import httpx
import pytest

from tests.access.accounts import ADMIN
from tests.access.conftest import AclServer
from tests.access.flow import CATALOG_SCOPE, access_set, describe, error_codes, jwt_claims

MALFORMED = [
    "repository",  # no name, no actions
    "repository:pub/seed",  # no actions
    "repository:pub/seed:",  # empty actions
    ":pub/seed:pull",  # no type
    "repository::pull",  # no name
    "repository:Pub/Seed:pull",  # names are lowercase
    "repository:pub//seed:pull",  # an empty path component
    "repository:pub/seed:pull;rm",  # an action outside [a-z]
    "repo$itory:pub/seed:pull",  # a type outside [a-z0-9]
    "repository:pub/seed:PULL",
]
CREDENTIALS = {"anonymous": None, "admin": (ADMIN.username or "", ADMIN.password or "")}


def _assert_bad_request(r: httpx.Response, *words: str) -> None:
    assert r.status_code == 400, describe(r)
    assert error_codes(r) == ["UNSUPPORTED"], describe(r)
    assert "token" not in r.json() and "access_token" not in r.json(), describe(r)
    for word in words:
        assert word in r.json()["errors"][0]["message"], describe(r)


def _password_form(**form: str) -> dict[str, str]:
    return {
        "grant_type": "password",
        "username": ADMIN.username or "",
        "password": ADMIN.password or "",
        "client_id": "docker",
        **form,
    }


def _refresh_token(c: httpx.Client) -> str:
    r = c.post("/service/token", data=_password_form(service="portside", access_type="offline"))
    assert r.status_code == 200, describe(r)
    return str(r.json()["refresh_token"])


@pytest.mark.parametrize("who", list(CREDENTIALS))
@pytest.mark.parametrize("scope", MALFORMED)
def test_a_malformed_scope_on_get_is_a_bad_request(acl: AclServer, scope: str, who: str) -> None:
    with httpx.Client(base_url=acl.url, timeout=30.0, auth=CREDENTIALS[who]) as c:
        r = c.get(
            "/service/token", params=[("service", "portside"), ("scope", "repository:pub/seed:pull"), ("scope", scope)]
        )
    _assert_bad_request(r, "invalid scope", repr(scope))


@pytest.mark.parametrize("scope", MALFORMED)
def test_a_malformed_scope_in_the_oauth2_form_is_a_bad_request(acl: AclServer, scope: str) -> None:
    with httpx.Client(base_url=acl.url, timeout=30.0) as c:
        r = c.post("/service/token", data=_password_form(service="portside", scope=f"repository:pub/seed:pull {scope}"))
        _assert_bad_request(r, "invalid scope")
        refresh = _refresh_token(c)
        r = c.post(
            "/service/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh, "service": "portside", "scope": scope},
        )
        _assert_bad_request(r, "invalid scope")


@pytest.mark.parametrize("who", list(CREDENTIALS))
def test_another_service_on_get_gets_no_token(acl: AclServer, who: str) -> None:
    with httpx.Client(base_url=acl.url, timeout=30.0, auth=CREDENTIALS[who]) as c:
        for service in ("registry.docker.io", "", "Portside", "portside "):
            r = c.get("/service/token", params={"service": service, "scope": "repository:pub/seed:pull"})
            _assert_bad_request(r, "'portside'")


def test_another_service_in_the_oauth2_form_gets_no_token(acl: AclServer) -> None:
    with httpx.Client(base_url=acl.url, timeout=30.0) as c:
        r = c.post(
            "/service/token", data=_password_form(service="registry.docker.io", scope="repository:pub/seed:pull")
        )
        _assert_bad_request(r, "'portside'", "'registry.docker.io'")
        refresh = _refresh_token(c)
        r = c.post(
            "/service/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh, "service": "elsewhere"},
        )
        _assert_bad_request(r, "'elsewhere'")


@pytest.mark.parametrize(
    ("scope", "granted"),
    [
        (CATALOG_SCOPE, {("registry", "catalog", "*")}),
        ("repository(plugin):pub/seed:pull", {("repository", "pub/seed", "pull")}),
        ("repository:pub/seed:pull,", {("repository", "pub/seed", "pull")}),
        # A name may start with a host and port (the grammar allows it); Portside has no
        # such repository, so the scope is left out, not refused.
        ("repository:localhost:5000/pub/seed:pull", set()),
        (
            "repository:pub/seed:pull repository:priv/seed:pull",
            {("repository", s, "pull") for s in ("pub/seed", "priv/seed")},
        ),
    ],
)
def test_well_formed_scopes_still_get_their_tokens(
    acl: AclServer, scope: str, granted: set[tuple[str, str, str]]
) -> None:
    with httpx.Client(base_url=acl.url, timeout=30.0) as c:
        r = c.post("/service/token", data=_password_form(service="portside", scope=scope))
        assert r.status_code == 200, describe(r)
        assert access_set(jwt_claims(r.json()["access_token"])) == granted, describe(r)
        # GET takes each scope as a parameter of its own, and may leave the service out.
        r = c.get("/service/token", params=[("scope", s) for s in scope.split()], auth=CREDENTIALS["admin"])
        assert r.status_code == 200, describe(r)
        assert access_set(jwt_claims(r.json()["token"])) == granted, describe(r)
