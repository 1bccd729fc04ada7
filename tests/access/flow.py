"""Docker token authentication over plain HTTP, step by step as docker does it.

`GET /v2/` → 401 with a Bearer challenge → `GET <realm>?service=...&scope=...` with Basic
credentials (or none: anonymous) → the request again with `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.access.accounts import Principal

_PARAM = re.compile(r'(\w+)="([^"]*)"')


def parse_challenge(header: str) -> dict[str, str]:
    scheme, _, rest = header.partition(" ")
    assert scheme == "Bearer", f"not a Bearer challenge: {header!r}"
    return dict(_PARAM.findall(rest))


def jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (the registry verifies; the tests look)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def access_set(claims: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(e["type"], e["name"], a) for e in claims.get("access") or [] for a in e["actions"]}


def describe(response: httpx.Response) -> str:
    return (
        f"{response.request.method} {response.request.url} -> {response.status_code} "
        f"{dict(response.headers)} {response.text[:1500]!r}"
    )


def error_codes(response: httpx.Response) -> list[str]:
    try:
        return [e["code"] for e in response.json()["errors"]]
    except (ValueError, KeyError, TypeError):
        return []


def client(base_url: str, local_address: str | None = None, **kwargs: Any) -> httpx.Client:
    """An httpx client, optionally from another loopback address (for per-address throttling)."""
    transport = httpx.HTTPTransport(local_address=local_address) if local_address else None
    return httpx.Client(base_url=base_url, timeout=30.0, transport=transport, **kwargs)


@dataclass
class TokenFlow:
    """One registry client signed in as `who` (anonymous when it has no username)."""

    base_url: str
    who: Principal
    local_address: str | None = None
    realm: str | None = None
    service: str | None = None
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = client(self.base_url, self.local_address)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> TokenFlow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def basic(self) -> dict[str, str]:
        if self.who.username is None:
            return {}
        raw = f"{self.who.username}:{self.who.password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    def discover(self) -> None:
        """The ping docker starts with: GET /v2/ → 401 and the challenge naming the realm."""
        r = self.http.get("/v2/")
        assert r.status_code == 401, describe(r)
        challenge = parse_challenge(r.headers["www-authenticate"])
        self.realm, self.service = challenge["realm"], challenge["service"]

    def token_response(self, *scopes: str, **params: str) -> httpx.Response:
        if self.realm is None:
            self.discover()
        assert self.realm is not None
        query: list[tuple[str, str]] = [("service", self.service or "")]
        query += [("scope", s) for s in scopes]
        query += list(params.items())
        return self.http.get(self.realm, params=query, headers=self.basic())

    def token(self, *scopes: str) -> str:
        r = self.token_response(*scopes)
        assert r.status_code == 200, describe(r)
        body = r.json()
        assert body["token"] == body["access_token"], body
        return str(body["token"])

    def bearer(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


def repo_scope(repo: str, actions: str) -> str:
    return f"repository:{repo}:{actions}"


CATALOG_SCOPE = "registry:catalog:*"
