"""Verified access tokens are remembered, but only for their exact text and never past `exp`."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from portside.auth.access import Access
from portside.auth.principal import Principal
from portside.auth.tokens import TokenService
from portside.errors import Unauthorized
from portside.meta.accounts import User

PULL = Access("repository", "team/app", "pull")


def _user(name: str, user_id: int = 7) -> Principal:
    when = datetime.now(UTC)
    return Principal.of_user(User(user_id, name, None, "", "", "", False, None, when, when, generation=3))


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _service(key: ec.EllipticCurvePrivateKey, ttl: int = 300, **options: object) -> TokenService:
    return TokenService(key, "registry.test", ttl, 3600, **options)  # type: ignore[arg-type]


def _count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    decoded: list[str] = []
    real = jwt.decode

    def counting(token: str, *args: object, **kwargs: object) -> object:
        decoded.append(token)
        return real(token, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counting)
    return decoded


def test_the_same_token_is_checked_once(key: ec.EllipticCurvePrivateKey, monkeypatch: pytest.MonkeyPatch) -> None:
    service = _service(key)
    token = service.issue(_user("alice"), [PULL], {"team": 1}).token
    decoded = _count_decodes(monkeypatch)
    first = service.verify(token)
    for _ in range(100):
        assert service.verify(token) == first
    assert decoded == [token]
    assert first.subject == "alice" and first.allows(PULL)


def test_a_cached_token_is_refused_once_expired(key: ec.EllipticCurvePrivateKey) -> None:
    clock = Clock()
    service = _service(key, ttl=60, clock=clock)
    token = service.issue(_user("alice"), [PULL], {"team": 1}).token
    assert service.verify(token).subject == "alice"  # now remembered
    clock.now += 59
    assert service.verify(token).subject == "alice"
    clock.now += 1  # exactly at `exp`: no longer valid
    with pytest.raises(Unauthorized, match="expired"):
        service.verify(token)


def test_a_cached_token_is_refused_once_really_expired(key: ec.EllipticCurvePrivateKey) -> None:
    """The same with the real clock, which the signature check itself also reads."""
    service = _service(key, ttl=1)
    issued = service.issue(_user("alice"), [PULL], {"team": 1})
    assert service.verify(issued.token).subject == "alice"
    expires = int(issued.issued_at) + 1
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    with pytest.raises(Unauthorized, match="expired"):
        service.verify(issued.token)


def test_only_the_exact_token_text_is_answered_from_memory(key: ec.EllipticCurvePrivateKey) -> None:
    service = _service(key)
    token = service.issue(_user("alice"), [PULL], {"team": 1}).token
    service.verify(token)
    header, payload, signature = token.split(".")
    tampered_signature = signature[:-2] + ("AA" if not signature.endswith("AA") else "BB")
    for other in (token + " ", token + "x", f"{header}.{payload}.{tampered_signature}", token.upper()):
        with pytest.raises(Unauthorized):
            service.verify(other)
    assert service.verify(token).subject == "alice"


def test_refresh_tokens_are_still_refused(key: ec.EllipticCurvePrivateKey) -> None:
    service = _service(key)
    refresh = service.issue_refresh(_user("alice")).token
    for _ in range(2):
        with pytest.raises(Unauthorized, match="refresh"):
            service.verify(refresh)


def test_memory_is_bounded_least_recently_used_first(
    key: ec.EllipticCurvePrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = _service(key, verified_tokens=3)
    tokens = [service.issue(_user(f"user{i}"), [PULL], {"team": 1}).token for i in range(4)]
    for token in tokens[:3]:
        service.verify(token)
    service.verify(tokens[0])  # the oldest becomes the most recently used
    service.verify(tokens[3])  # evicts tokens[1]
    decoded = _count_decodes(monkeypatch)
    for token in (tokens[0], tokens[2], tokens[3]):
        service.verify(token)
    assert decoded == []
    service.verify(tokens[1])
    assert decoded == [tokens[1]]


def test_memory_can_be_turned_off(key: ec.EllipticCurvePrivateKey, monkeypatch: pytest.MonkeyPatch) -> None:
    service = _service(key, verified_tokens=0)
    token = service.issue(_user("alice"), [PULL], {"team": 1}).token
    decoded = _count_decodes(monkeypatch)
    service.verify(token)
    service.verify(token)
    assert decoded == [token, token]


def test_tokens_name_the_account_and_the_projects(key: ec.EllipticCurvePrivateKey) -> None:
    service = _service(key)
    claims = service.verify(service.issue(_user("alice", 42), [PULL], {"team": 9}).token)
    assert (claims.subject, claims.subject_kind, claims.subject_id, claims.generation) == ("alice", "user", 42, 3)
    assert claims.projects == {"team": 9}
    refresh = service.verify_refresh(service.issue_refresh(_user("alice", 42)).token)
    assert (refresh.subject_id, refresh.generation, refresh.access) == (42, 3, ())


def test_a_signed_in_token_that_names_no_account_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    # What versions before account-bound tokens issued: the name alone, which a new account
    # of the same name could take over.
    service = _service(key)
    now = int(time.time())
    legacy = jwt.encode(
        {
            "iss": "portside",
            "sub": "alice",
            "aud": "registry.test",
            "iat": now,
            "nbf": now - 1,
            "exp": now + 60,
            "jti": "x",
            "portside_kind": "user",
            "access": [{"type": "repository", "name": "team/app", "actions": ["pull"]}],
        },
        key,
        algorithm="ES256",
    )
    with pytest.raises(Unauthorized, match="names no account"):
        service.verify(legacy)
