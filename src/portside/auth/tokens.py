"""Registry tokens (Docker token authentication): short-lived JWTs signed by Portside's key.

Access tokens carry the `access` claim of Docker's token spec — only the actions granted —
and, for Portside itself, the account they were issued to (its id and generation) and the
id of each project they grant access in. Refresh tokens (OAuth2 `offline_token`) name the
account and nothing else. Neither is trusted on its own: every use is checked against the
account (auth/controller.py), so a password change, a secret refresh, disabling or
deleting ends the tokens issued before, and a project deleted (or made again under the
same name) is no longer reached with them.

A client sends the same access token on every request of a pull, and checking an ES256
signature costs about 100 µs, so access tokens already verified are remembered (by their
exact text) until they expire: the signature is checked once per token, not per request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from portside.auth.access import Access
from portside.auth.principal import Principal
from portside.errors import Unauthorized

__all__ = [
    "TokenService",
    "ForeignService",
    "libtrust_key_id",
    "token_certificate",
    "write_token_certificate",
    "Claims",
    "derived_secret",
    "load_or_create_key",
    "new_key_pem",
    "write_key",
    "IssuedToken",
]

_ALGORITHM = "ES256"
_ISSUER = "portside"


def new_key_pem() -> str:
    """A new EC P-256 signing key, PEM-encoded."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def write_key(path: Path, pem: str, *, replace: bool) -> None:
    """Store `pem` in `path` (mode 0600, fsync'ed). Without `replace`, a file that exists
    wins (another process made it first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if replace:
        staging = path.with_name(path.name + ".new")
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        os.replace(staging, path)
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())


def load_or_create_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The signing key in `path`, generated there (mode 0600) on first use."""
    if not path.exists():
        write_key(path, new_key_pem(), replace=False)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} must hold an EC P-256 private key")
    return loaded


def derived_secret(key: ec.EllipticCurvePrivateKey, purpose: str) -> bytes:
    """A 32-byte secret for `purpose`, derived from the signing key: every instance that
    shares the key shares it, and nothing about the key can be learnt from it."""
    private = key.private_numbers().private_value.to_bytes(32, "big")
    return hmac.new(private, f"portside:{purpose}".encode(), hashlib.sha256).digest()


def libtrust_key_id(key: ec.EllipticCurvePublicKey) -> str:
    """The key's id as docker/libtrust names it (the SHA-256 of its DER SubjectPublicKeyInfo,
    240 bits in base32, in groups of four): the `kid` docker/distribution's token auth (and
    so Notary's) looks the key up by among its root certificates' keys."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    text = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(text[i : i + 4] for i in range(0, len(text), 4))


def token_certificate(key: ec.EllipticCurvePrivateKey, *, days: int = 3650) -> bytes:
    """A self-signed certificate (PEM) of the token signing key: the root certificate bundle
    a service verifying Portside's tokens (Notary's `rootcertbundle`) is given."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portside token signer")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, False, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def write_token_certificate(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Keep a certificate of `key` in `path` (made again when missing or of another key)."""
    if path.exists():
        try:
            held = x509.load_pem_x509_certificate(path.read_bytes()).public_key()
            if held == key.public_key():
                return
        except ValueError:
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".new")
    staging.write_bytes(token_certificate(key))
    os.replace(staging, path)


@dataclass(frozen=True, slots=True)
class ForeignService:
    """Another service Portside issues tokens for (Notary): its `service` name, the token's
    audience, and the prefix its resource names carry before a Portside repository name
    (Notary's GUNs are `<registry host:port>/<repository>`)."""

    name: str
    name_prefix: str

    def local(self, name: str) -> str | None:
        """The Portside repository a resource name of this service names, if any."""
        prefix = self.name_prefix.rstrip("/") + "/"
        if not name.startswith(prefix):
            return None
        return name[len(prefix) :] or None

    def foreign(self, name: str) -> str:
        return self.name_prefix.rstrip("/") + "/" + name


@dataclass(frozen=True, slots=True)
class Claims:
    subject: str
    subject_kind: str  # "user", "robot" or "anonymous"
    access: tuple[Access, ...]
    subject_id: int | None = None  # the user's or robot's id; None when anonymous
    generation: int = 0  # the account's generation when the token was issued
    projects: Mapping[str, int] = field(default_factory=dict)  # project name → id

    def allows(self, wanted: Access) -> bool:
        return any(
            a.resource_type == wanted.resource_type and a.name == wanted.name and a.action in (wanted.action, "*")
            for a in self.access
        )


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int
    issued_at: float


def _access_claim(granted: Sequence[Access]) -> list[dict[str, object]]:
    grouped: dict[tuple[str, str], list[str]] = {}
    for a in granted:
        actions = grouped.setdefault((a.resource_type, a.name), [])
        if a.action not in actions:
            actions.append(a.action)
    return [{"type": t, "name": n, "actions": actions} for (t, n), actions in grouped.items()]


class _VerifiedTokens:
    """Access tokens whose signature and claims were checked, each with its claims and its
    `exp`: a bounded LRU, keyed by the token's whole text, so only the very same bytes
    are ever answered from it. An entry is never used at or after its token's `exp`."""

    def __init__(self, capacity: int):
        self._capacity = capacity
        self._entries: OrderedDict[str, tuple[Claims, float]] = OrderedDict()
        # verify() may be called from worker threads as well as the event loop.
        self._lock = threading.Lock()

    def get(self, token: str, now: float) -> Claims | None:
        """The claims of `token` if it was verified; raises Unauthorized if it has expired since."""
        with self._lock:
            entry = self._entries.get(token)
            if entry is None:
                return None
            claims, expires = entry
            if now >= expires:
                del self._entries[token]
                raise Unauthorized("invalid token: Signature has expired")
            self._entries.move_to_end(token)
            return claims

    def put(self, token: str, claims: Claims, expires: float) -> None:
        if self._capacity <= 0:
            return
        with self._lock:
            self._entries[token] = (claims, expires)
            self._entries.move_to_end(token)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class TokenService:
    """Issues and verifies tokens. `verified_tokens` bounds how many verified access tokens
    are remembered (0: none); `clock` gives the time, in seconds since the epoch."""

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey,
        service: str,
        ttl_seconds: int,
        refresh_ttl_seconds: int,
        *,
        verified_tokens: int = 4096,
        clock: Callable[[], float] = time.time,
        foreign: ForeignService | None = None,
    ):
        self.foreign = foreign
        self.key_id = libtrust_key_id(key.public_key())
        self._key = key
        self._public = key.public_key()
        self.service = service
        self.ttl = ttl_seconds
        self.refresh_ttl = refresh_ttl_seconds
        self._clock = clock
        self._verified = _VerifiedTokens(verified_tokens)

    def _sign(self, who: Principal, ttl: int, extra: dict[str, object], audience: str | None = None) -> IssuedToken:
        now = self._clock()
        claims: dict[str, object] = {
            "iss": _ISSUER,
            "sub": who.name if who.authenticated else "",
            "aud": audience or self.service,
            "iat": int(now),
            "nbf": int(now) - 1,
            "exp": int(now) + ttl,
            "jti": secrets.token_hex(16),
            "portside_kind": who.kind,
            **extra,
        }
        if who.account_id is not None:
            claims["portside_id"] = who.account_id
            claims["portside_gen"] = who.generation
        # Another service's token names its key (libtrust's id), which docker/distribution's
        # token auth needs to find it among its root certificates; Portside's own do not.
        headers = {"kid": self.key_id} if audience is not None and audience != self.service else None
        return IssuedToken(jwt.encode(claims, self._key, algorithm=_ALGORITHM, headers=headers), ttl, now)

    def issue(
        self, who: Principal, granted: Sequence[Access], projects: Mapping[str, int], *, audience: str | None = None
    ) -> IssuedToken:
        """An access token for `granted`, in the projects `projects` names (name → id);
        `audience`: another service's (the foreign service's) instead of Portside's."""
        return self._sign(
            who,
            self.ttl,
            {"access": _access_claim(granted), "portside_projects": dict(sorted(projects.items()))},
            audience,
        )

    def issue_refresh(self, who: Principal) -> IssuedToken:
        return self._sign(who, self.refresh_ttl, {"portside_use": "refresh"})

    def _decode(self, token: str) -> dict[str, object]:
        try:
            claims: dict[str, object] = jwt.decode(
                token,
                self._public,
                algorithms=[_ALGORITHM],
                audience=self.service,
                issuer=_ISSUER,
                options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        return claims

    def verify(self, token: str) -> Claims:
        """The claims of a valid access token; raises Unauthorized for any other."""
        known = self._verified.get(token, self._clock())
        if known is not None:
            return known
        claims = self._decode(token)
        if claims.get("portside_use") == "refresh":
            raise Unauthorized("a refresh token cannot be used as an access token")
        access: list[Access] = []
        raw = claims.get("access")
        if not isinstance(raw, list):
            raise Unauthorized("invalid token: no access claim")
        for entry in raw:
            if not isinstance(entry, dict):
                raise Unauthorized("invalid token: malformed access claim")
            for action in entry.get("actions") or ():
                access.append(Access(str(entry.get("type")), str(entry.get("name")), str(action)))
        verified = replace(_account(claims, tuple(access)), projects=_projects(claims))
        expires = claims["exp"]
        if isinstance(expires, int | float):  # PyJWT has checked it is a number
            self._verified.put(token, verified, float(expires))
        return verified

    def verify_refresh(self, token: str) -> Claims:
        """The account a valid refresh token names (its claims grant no access)."""
        claims = self._decode(token)
        if claims.get("portside_use") != "refresh":
            raise Unauthorized("not a refresh token")
        return _account(claims, ())


def _account(claims: Mapping[str, object], access: tuple[Access, ...]) -> Claims:
    """The account a decoded token names. A signed-in account's token must name its id and
    generation (tokens of older versions do not: they are refused, and clients fetch new ones)."""
    kind = str(claims.get("portside_kind", "user"))
    if kind == "anonymous":
        return Claims("", kind, access)
    account_id, generation = claims.get("portside_id"), claims.get("portside_gen")
    if type(account_id) is not int or type(generation) is not int:
        raise Unauthorized("invalid token: it names no account; sign in again")
    return Claims(str(claims["sub"]), kind, access, account_id, generation)


def _projects(claims: Mapping[str, object]) -> dict[str, int]:
    raw = claims.get("portside_projects")
    if not isinstance(raw, dict) or not all(type(v) is int for v in raw.values()):
        raise Unauthorized("invalid token: malformed project claim")
    return {str(name): project_id for name, project_id in raw.items()}
