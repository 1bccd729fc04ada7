"""Docker Content Trust: Notary's TUF metadata, verified, and the digests it signs.

A Notary repository (its GUN is `<registry host:port>/<repository>`) holds four top
roles — `root`, `targets`, `snapshot`, `timestamp` — and, as `docker trust sign`
writes them, delegations of `targets` such as `targets/releases`. `verify_repository`
takes their bytes as Notary serves them (`/v2/<gun>/_trust/tuf/<role>.json`) and checks,
as Notary's client does:

- every signature is over the canonical JSON of `signed` (keys sorted, no spaces);
  methods `ecdsa` (raw r‖s over SHA-256), `ed25519`, `rsapss` (PSS, salt = hash
  length) and `rsa` (PKCS #1 v1.5), with `ecdsa`, `ecdsa-x509`, `ed25519`, `rsa` and
  `rsa-x509` keys; a key is known only under its TUF id (SHA-256 of its canonical JSON);
- each role's threshold of distinct keys of the root's (or, for a delegation, its
  parent's) role signs it, and no role has expired;
- the timestamp names the snapshot's hashes and length, the snapshot those of the root,
  targets and each delegation read;
- the root's X.509 keys are certificates for the GUN (common name) valid now;
- the root of trust: the `pinned` keys (TUF ids, canonical key ids as `notary key list`
  prints them, or PEM certificates/public keys) must meet the root's threshold; without
  pins the root is trusted on first use, and the caller records `root_key_ids` to pin
  it from then on (a later root signed by other keys is then refused).

`find` answers for a manifest digest which signed tags carry it, tag by tag as
`docker pull` resolves them: `targets/releases` first, then `targets`; other
delegations are what `docker trust inspect` lists as signers, not what a pull trusts.
Nested delegations and rollback checks across calls (versions seen before) are not
done here; the caller compares versions if it keeps them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

from portside.trust.results import Verification

__all__ = [
    "TufError",
    "TrustedTarget",
    "Repository",
    "canonical_json",
    "verify_repository",
    "find",
    "verify_digest",
    "verdict",
    "TOP_ROLES",
    "PULL_ROLES",
]

TOP_ROLES = ("root", "timestamp", "snapshot", "targets")
# The roles `docker pull` resolves a tag in, in order.
PULL_ROLES = ("targets/releases", "targets")

_TYPES = {"root": "Root", "timestamp": "Timestamp", "snapshot": "Snapshot", "targets": "Targets"}
_DELEGATION = re.compile(r"targets/[^/]+")


class TufError(ValueError):
    """Metadata that does not verify; the message says which role and why."""


@dataclass(frozen=True, slots=True)
class TrustedTarget:
    tag: str
    digest: str  # "sha256:<hex>"
    length: int
    role: str  # "targets", "targets/releases", …


@dataclass(frozen=True, slots=True)
class Repository:
    """A Notary repository whose metadata verified."""

    gun: str
    root_key_ids: frozenset[str]  # the root role's keys (TUF ids), to pin next time
    versions: Mapping[str, int]
    expires: Mapping[str, datetime]
    targets: Mapping[str, tuple[TrustedTarget, ...]]  # role → its targets
    signers: Mapping[str, frozenset[str]]  # delegation role → the key ids that signed it

    @property
    def fresh_until(self) -> datetime:
        """When the first role expires (the timestamp, usually): cache no longer than this."""
        return min(self.expires.values())


def canonical_json(value: object) -> bytes:
    """The bytes Notary signs: JSON with sorted keys and no whitespace."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _time(text: object, role: str) -> datetime:
    if not isinstance(text, str):
        raise TufError(f"{role}: no expiry")
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    if match is None:
        raise TufError(f"{role}: malformed expiry {text[:40]!r}")
    base, fraction, zone = match.groups()
    micro = (fraction or "0")[:6].ljust(6, "0")
    stamp = datetime.fromisoformat(f"{base}.{micro}{'+00:00' if zone == 'Z' else zone}")
    return stamp.astimezone(UTC)


def _b64(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise TufError(f"{what} is not base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise TufError(f"{what} is not base64") from None


@dataclass(frozen=True, slots=True)
class _Key:
    key_id: str
    keytype: str
    public: ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
    certificate: x509.Certificate | None

    @property
    def canonical_id(self) -> str:
        """The id `notary key list` prints: the TUF id of the bare public key (for an X.509 key,
        of its subject key as an `ecdsa`/`rsa` key)."""
        if self.certificate is None:
            return self.key_id
        keytype = self.keytype.removesuffix("-x509")
        der = self.public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return _key_id(keytype, base64.b64encode(der).decode())

    def spki(self) -> bytes:
        return self.public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _key_id(keytype: str, public_b64: str) -> str:
    return hashlib.sha256(
        canonical_json({"keytype": keytype, "keyval": {"private": None, "public": public_b64}})
    ).hexdigest()


def _load_key(key_id: str, raw: object) -> _Key:
    if not isinstance(raw, dict) or not isinstance(raw.get("keyval"), dict):
        raise TufError(f"key {key_id[:16]}: malformed")
    keytype = raw.get("keytype")
    public_b64 = raw["keyval"].get("public")
    if not isinstance(keytype, str) or not isinstance(public_b64, str):
        raise TufError(f"key {key_id[:16]}: malformed")
    if _key_id(keytype, public_b64) != key_id:
        raise TufError(f"key {key_id[:16]}: its id is not the hash of the key")
    data = _b64(public_b64, f"key {key_id[:16]}")
    certificate = None
    public: object
    try:
        if keytype in ("ecdsa-x509", "rsa-x509"):
            certificate = x509.load_pem_x509_certificate(data)
            public = certificate.public_key()
        elif keytype == "ed25519":
            public = ed25519.Ed25519PublicKey.from_public_bytes(data)
        elif keytype in ("ecdsa", "rsa"):
            public = serialization.load_der_public_key(data)
        else:
            raise TufError(f"key {key_id[:16]}: unsupported key type {keytype!r}")
    except TufError:
        raise
    except ValueError as exc:
        raise TufError(f"key {key_id[:16]}: unreadable ({exc})") from None
    want = ec.EllipticCurvePublicKey if keytype.startswith("ecdsa") else rsa.RSAPublicKey
    if keytype != "ed25519" and not isinstance(public, want):
        raise TufError(f"key {key_id[:16]}: not a {keytype} key")
    assert isinstance(public, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey)
    return _Key(key_id, keytype, public, certificate)


def _signature_ok(key: _Key, method: str, signature: bytes, message: bytes) -> bool:
    public = key.public
    try:
        if method == "ecdsa" and isinstance(public, ec.EllipticCurvePublicKey):
            half = (public.curve.key_size + 7) // 8
            if len(signature) != 2 * half:
                return False
            r, s = int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
            public.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
        elif method == "ed25519" and isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(signature, message)
        elif method == "rsapss" and isinstance(public, rsa.RSAPublicKey):
            public.verify(
                signature,
                message,
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
                hashes.SHA256(),
            )
        elif method == "rsa" and isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        else:
            return False
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True, slots=True)
class _Role:
    key_ids: frozenset[str]
    threshold: int


def _parse(role: str, data: bytes) -> tuple[dict[str, object], list[object]]:
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise TufError(f"{role}: not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("signed"), dict):
        raise TufError(f"{role}: no `signed` object")
    signatures = document.get("signatures")
    if not isinstance(signatures, list):
        raise TufError(f"{role}: no signatures")
    signed = document["signed"]
    expected = _TYPES.get(role, "Targets")
    if signed.get("_type") != expected:
        raise TufError(f"{role}: _type is {signed.get('_type')!r}, not {expected!r}")
    return signed, signatures


def _check_signatures(
    role: str, signed: dict[str, object], signatures: list[object], keys: Mapping[str, _Key], spec: _Role
) -> frozenset[str]:
    """The ids of the role's keys whose signatures verify; TufError below the threshold."""
    message = canonical_json(signed)
    good: set[str] = set()
    for entry in signatures:
        if not isinstance(entry, dict):
            continue
        key_id, method, sig = entry.get("keyid"), entry.get("method"), entry.get("sig")
        if not isinstance(key_id, str) or key_id not in spec.key_ids or key_id in good:
            continue
        key = keys.get(key_id)
        if key is None or not isinstance(method, str) or not isinstance(sig, str):
            continue
        try:
            raw = base64.b64decode(sig, validate=True)
        except (binascii.Error, ValueError):
            continue
        if _signature_ok(key, method, raw, message):
            good.add(key_id)
    if len(good) < max(spec.threshold, 1):
        raise TufError(f"{role}: {len(good)} valid signature(s) from its keys, below its threshold of {spec.threshold}")
    return frozenset(good)


def _check_expiry(role: str, signed: Mapping[str, object], now: datetime) -> datetime:
    expires = _time(signed.get("expires"), role)
    if expires <= now:
        raise TufError(f"{role}: expired at {expires.isoformat()}")
    return expires


def _version(role: str, signed: Mapping[str, object]) -> int:
    version = signed.get("version")
    if type(version) is not int or version < 1:
        raise TufError(f"{role}: no version")
    return version


def _check_meta(parent: str, meta: object, role: str, data: bytes) -> None:
    """`parent`'s `meta` entry for `role` names `data`'s length and hashes (all it lists
    of sha256/sha512, at least one of them)."""
    if not isinstance(meta, dict) or not isinstance(meta.get(role), dict):
        raise TufError(f"{parent} does not list {role}")
    entry = meta[role]
    length = entry.get("length")
    if type(length) is int and length != len(data):
        raise TufError(f"{role}: {len(data)} bytes, but {parent} says {length}")
    hashes_ = entry.get("hashes")
    if not isinstance(hashes_, dict):
        raise TufError(f"{parent} lists no hashes for {role}")
    checked = 0
    for name, function in (("sha256", hashlib.sha256), ("sha512", hashlib.sha512)):
        if name in hashes_:
            if _b64(hashes_[name], f"{parent}'s {name} of {role}") != function(data).digest():
                raise TufError(f"{role}: its {name} is not the one {parent} signed")
            checked += 1
    if not checked:
        raise TufError(f"{parent} lists no sha256 or sha512 for {role}")


def _roles_of(role: str, raw: object, keys: Mapping[str, _Key]) -> _Role:
    if not isinstance(raw, dict):
        raise TufError(f"root does not define the {role} role")
    ids, threshold = raw.get("keyids"), raw.get("threshold")
    if not isinstance(ids, list) or type(threshold) is not int or threshold < 1:
        raise TufError(f"root: malformed {role} role")
    unknown = [i for i in ids if i not in keys]
    if unknown:
        raise TufError(f"{role}: key {str(unknown[0])[:16]} is not among the root's keys")
    return _Role(frozenset(str(i) for i in ids), threshold)


def _load_keys(raw: object, where: str) -> dict[str, _Key]:
    if not isinstance(raw, dict):
        raise TufError(f"{where}: no keys")
    return {str(key_id): _load_key(str(key_id), value) for key_id, value in raw.items()}


def _pins_match(key: _Key, pins: Sequence[str]) -> bool:
    for pin in pins:
        text = pin.strip()
        if text.lower() in (key.key_id, key.canonical_id):
            return True
        if text.startswith("-----BEGIN"):
            try:
                if "CERTIFICATE" in text.split("\n", 1)[0]:
                    pinned = x509.load_pem_x509_certificate(text.encode()).public_key()
                else:
                    pinned = serialization.load_pem_public_key(text.encode())  # type: ignore[assignment]
            except ValueError:
                continue
            der = pinned.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            if der == key.spki():
                return True
    return False


def _check_root_certificates(gun: str, role: _Role, keys: Mapping[str, _Key], now: datetime) -> None:
    for key_id in role.key_ids:
        certificate = keys[key_id].certificate
        if certificate is None:
            continue
        names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if not names or names[0].value != gun:
            raise TufError(f"root: key {key_id[:16]}'s certificate is not for {gun!r}")
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise TufError(f"root: key {key_id[:16]}'s certificate is not valid now")


@dataclass(frozen=True, slots=True)
class _Paths:
    """What a delegation may sign: names with one of `prefixes`, or whose SHA-256 (hex)
    starts with one of `hash_prefixes` (TUF's path_hash_prefixes). Neither: nothing."""

    prefixes: tuple[str, ...] = ()
    hash_prefixes: tuple[str, ...] = ()

    def allows(self, name: str) -> bool:
        if any(name.startswith(p) for p in self.prefixes):
            return True
        hashed = hashlib.sha256(name.encode()).hexdigest()
        return any(hashed.startswith(p) for p in self.hash_prefixes)


def _scope(entry: Mapping[str, object]) -> _Paths:
    lists: list[tuple[str, ...]] = []
    for field_name in ("paths", "path_hash_prefixes"):
        value = entry.get(field_name)
        if value is None:
            lists.append(())
        elif isinstance(value, list) and all(isinstance(p, str) for p in value):
            lists.append(tuple(value))
        else:
            raise TufError(f"targets: malformed {field_name} of delegation {str(entry.get('name'))[:60]!r}")
    return _Paths(lists[0], lists[1])


def _targets_of(role: str, signed: Mapping[str, object], paths: _Paths | None) -> tuple[TrustedTarget, ...]:
    raw = signed.get("targets")
    if not isinstance(raw, dict):
        raise TufError(f"{role}: no targets")
    found: list[TrustedTarget] = []
    for name, entry in sorted(raw.items()):
        if paths is not None and not paths.allows(name):
            continue  # outside what the delegation may sign: ignored, as Notary's client does
        if not isinstance(entry, dict) or not isinstance(entry.get("hashes"), dict):
            raise TufError(f"{role}: target {name[:60]!r} is malformed")
        sha256 = entry["hashes"].get("sha256")
        length = entry.get("length")
        if sha256 is None or type(length) is not int:
            continue  # no sha256: it cannot name an OCI digest
        digest = _b64(sha256, f"{role}: target {name[:60]!r}'s sha256")
        if len(digest) != 32:
            raise TufError(f"{role}: target {name[:60]!r}'s sha256 is not 32 bytes")
        found.append(TrustedTarget(name, f"sha256:{digest.hex()}", length, role))
    return tuple(found)


def verify_repository(
    gun: str,
    metadata: Mapping[str, bytes],
    *,
    pinned: Sequence[str] | None = None,
    now: datetime | None = None,
) -> Repository:
    """Verify `metadata` (role name → the bytes Notary served: the four top roles and any
    delegations of `targets`) for `gun`; TufError says what failed."""
    now = now or datetime.now(UTC)
    for role in TOP_ROLES:
        if role not in metadata:
            raise TufError(f"{role}: missing")
    versions: dict[str, int] = {}
    expires: dict[str, datetime] = {}

    root, root_sigs = _parse("root", metadata["root"])
    keys = _load_keys(root.get("keys"), "root")
    raw_roles = root.get("roles")
    if not isinstance(raw_roles, dict):
        raise TufError("root: no roles")
    roles = {name: _roles_of(name, raw_roles.get(name), keys) for name in TOP_ROLES}
    signed_root = _check_signatures("root", root, root_sigs, keys, roles["root"])
    if pinned is not None:
        trusted = [key_id for key_id in signed_root if _pins_match(keys[key_id], pinned)]
        if len(trusted) < roles["root"].threshold:
            raise TufError("root: not signed by the pinned root keys (the repository's root keys changed?)")
    _check_root_certificates(gun, roles["root"], keys, now)
    expires["root"] = _check_expiry("root", root, now)
    versions["root"] = _version("root", root)

    timestamp, sigs = _parse("timestamp", metadata["timestamp"])
    _check_signatures("timestamp", timestamp, sigs, keys, roles["timestamp"])
    expires["timestamp"] = _check_expiry("timestamp", timestamp, now)
    versions["timestamp"] = _version("timestamp", timestamp)
    _check_meta("timestamp", timestamp.get("meta"), "snapshot", metadata["snapshot"])

    snapshot, sigs = _parse("snapshot", metadata["snapshot"])
    _check_signatures("snapshot", snapshot, sigs, keys, roles["snapshot"])
    expires["snapshot"] = _check_expiry("snapshot", snapshot, now)
    versions["snapshot"] = _version("snapshot", snapshot)
    snapshot_meta = snapshot.get("meta")
    _check_meta("snapshot", snapshot_meta, "targets", metadata["targets"])
    if isinstance(snapshot_meta, dict) and "root" in snapshot_meta:
        _check_meta("snapshot", snapshot_meta, "root", metadata["root"])

    targets, sigs = _parse("targets", metadata["targets"])
    _check_signatures("targets", targets, sigs, keys, roles["targets"])
    expires["targets"] = _check_expiry("targets", targets, now)
    versions["targets"] = _version("targets", targets)
    found: dict[str, tuple[TrustedTarget, ...]] = {"targets": _targets_of("targets", targets, None)}
    signers: dict[str, frozenset[str]] = {}

    delegated = [name for name in metadata if name not in TOP_ROLES]
    if delegated:
        delegations = targets.get("delegations")
        if not isinstance(delegations, dict):
            raise TufError("targets delegates no roles")
        delegation_keys = _load_keys(delegations.get("keys", {}), "targets' delegations")
        specs: dict[str, tuple[_Role, _Paths]] = {}
        for entry in delegations.get("roles") or ():
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise TufError("targets: malformed delegation")
            ids, threshold = entry.get("keyids"), entry.get("threshold")
            if not isinstance(ids, list) or type(threshold) is not int or threshold < 1:
                raise TufError(f"targets: malformed delegation {entry['name'][:60]!r}")
            specs[entry["name"]] = (_Role(frozenset(str(i) for i in ids), threshold), _scope(entry))
        for name in delegated:
            if not _DELEGATION.fullmatch(name):
                raise TufError(f"{name[:60]}: only delegations of targets are read")
            if name not in specs:
                raise TufError(f"{name}: targets does not delegate to it")
            spec, paths = specs[name]
            signed, sigs = _parse(name, metadata[name])
            _check_meta("snapshot", snapshot_meta, name, metadata[name])
            signers[name] = _check_signatures(name, signed, sigs, delegation_keys, spec)
            expires[name] = _check_expiry(name, signed, now)
            versions[name] = _version(name, signed)
            found[name] = _targets_of(name, signed, paths)
    return Repository(gun, roles["root"].key_ids, versions, expires, found, signers)


def find(repository: Repository, digest: str, tag: str | None = None) -> tuple[TrustedTarget, ...]:
    """The signed tags carrying `digest` as `docker pull` resolves tags (each tag from the
    first of PULL_ROLES that signs it); with `tag`, only that tag."""
    resolved: dict[str, TrustedTarget] = {}
    for role in PULL_ROLES:
        for target in repository.targets.get(role, ()):
            resolved.setdefault(target.tag, target)
    return tuple(t for t in resolved.values() if t.digest == digest and (tag is None or t.tag == tag))


def verify_digest(
    gun: str,
    metadata: Mapping[str, bytes],
    digest: str,
    *,
    tag: str | None = None,
    pinned: Sequence[str] | None = None,
    now: datetime | None = None,
) -> Verification:
    """`verify_repository` and `find` as one verdict: passed when a signed tag carries
    `digest`; `signer` names the role and tag(s) ("targets/releases: v1, latest")."""
    try:
        repository = verify_repository(gun, metadata, pinned=pinned, now=now)
    except TufError as error:
        return Verification.failed("notary", f"Notary metadata for {gun} does not verify: {error}")
    return verdict(repository, digest, tag)


def verdict(repository: Repository, digest: str, tag: str | None = None) -> Verification:
    """The verdict for `digest` in a repository already verified."""
    carried = find(repository, digest, tag)
    if not carried:
        what = f"tag {tag!r} signed with" if tag else "signed target with"
        return Verification.failed("notary", f"no {what} digest {digest} in Notary's {repository.gun}")
    return Verification.passed("notary", _describe(carried))


def _describe(targets: Iterable[TrustedTarget]) -> str:
    by_role: dict[str, list[str]] = {}
    for target in targets:
        by_role.setdefault(target.role, []).append(target.tag)
    return "; ".join(f"{role}: {', '.join(tags)}" for role, tags in by_role.items())
