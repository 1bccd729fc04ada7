"""Tokens for Notary (`notary_service`): `/service/token` answers Notary's scopes, which
name GUNs (`<registry host:port>/<repository>`), with the grant a registry token gets for
the repository, under the GUN, in a token for Notary's audience whose `kid` is the key's
libtrust id (what docker/distribution's token auth, Notary's, looks keys up by). Portside's
own tokens are unchanged, and a Notary token opens nothing on /v2."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from portside.auth.tokens import libtrust_key_id
from tests.access.flow import access_set, describe, jwt_claims
from tests.servers import ADMIN_PASSWORD, Portside

NOTARY = "notary-server"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    portside = Portside(
        data_dir=tmp_path_factory.mktemp("notary-tokens") / "data",
        open_registry=False,
        env={"PORTSIDE_NOTARY_SERVICE": NOTARY},
    )
    portside.start()
    yield portside
    portside.stop()


def _header(token: str) -> dict[str, object]:
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[no-any-return]


def _token(server: Portside, service: str, scope: str, auth: tuple[str, str] | None) -> str:
    with httpx.Client(base_url=server.url, timeout=30.0, auth=auth) as c:
        r = c.get("/service/token", params={"service": service, "scope": scope})
    assert r.status_code == 200, describe(r)
    return str(r.json()["token"])


ADMIN = ("admin", ADMIN_PASSWORD)


@pytest.mark.parametrize("who", [ADMIN, None], ids=["admin", "anonymous"])
def test_the_grant_is_the_registry_tokens_under_the_gun(server: Portside, who: tuple[str, str] | None) -> None:
    gun = f"{server.host}/library/app"
    notary = _token(server, NOTARY, f"repository:{gun}:pull,push", who)
    registry = _token(server, "portside", "repository:library/app:pull,push", who)
    claims = jwt_claims(notary)
    assert claims["aud"] == NOTARY and claims["iss"] == "portside"
    expected = {(t, f"{server.host}/{name}", a) for t, name, a in access_set(jwt_claims(registry))}
    assert access_set(claims) == expected
    if who is ADMIN:
        assert expected == {("repository", gun, "pull"), ("repository", gun, "push")}
    else:
        assert ("repository", gun, "push") not in expected


def test_notary_tokens_name_their_key_by_libtrust_id(server: Portside) -> None:
    token = _token(server, NOTARY, f"repository:{server.host}/library/app:pull", ADMIN)
    header = _header(token)
    certificate = x509.load_pem_x509_certificate((server.data_dir / "token-key.crt").read_bytes())
    key = serialization.load_pem_private_key((server.data_dir / "token-key.pem").read_bytes(), password=None)
    assert certificate.public_key() == key.public_key()  # Notary's rootcertbundle is the token key's
    assert header["kid"] == libtrust_key_id(certificate.public_key())  # type: ignore[arg-type]
    assert re.fullmatch(r"(?:[A-Z2-7]{4}:){11}[A-Z2-7]{4}", str(header["kid"]))
    # Portside's own tokens are as they were: no kid
    assert "kid" not in _header(_token(server, "portside", "repository:library/app:pull", ADMIN))


def test_other_registries_guns_get_nothing(server: Portside) -> None:
    token = _token(server, NOTARY, "repository:elsewhere.example:5000/library/app:pull,push", ADMIN)
    assert access_set(jwt_claims(token)) == set()
    token = _token(server, NOTARY, "repository:library/app:pull", ADMIN)  # not a GUN of this registry
    assert access_set(jwt_claims(token)) == set()


def test_a_notary_token_opens_nothing_on_v2(server: Portside) -> None:
    token = _token(server, NOTARY, f"repository:{server.host}/library/app:pull,push", ADMIN)
    with httpx.Client(base_url=server.url, timeout=30.0) as c:
        r = c.get("/v2/library/app/tags/list", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 401, describe(r)


def test_another_service_is_still_refused(server: Portside) -> None:
    with httpx.Client(base_url=server.url, timeout=30.0) as c:
        r = c.get("/service/token", params={"service": "someone-else", "scope": "repository:library/app:pull"})
    assert r.status_code == 400, describe(r)


def test_no_notary_service_no_certificate(tmp_path: Path) -> None:
    plain = Portside(data_dir=tmp_path / "data", open_registry=False).start()
    try:
        assert not (plain.data_dir / "token-key.crt").exists()
        with httpx.Client(base_url=plain.url, timeout=30.0) as c:
            r = c.get("/service/token", params={"service": NOTARY, "scope": "repository:x/y:pull"})
        assert r.status_code == 400, describe(r)
    finally:
        plain.stop()
