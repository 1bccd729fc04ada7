"""Trust policies: whom a project trusts to sign its images, and the system's defaults.

`/projects/{p}/trust` (read by whoever may read the project, written by its administrators)
and `/system/trust` (read by anyone signed in, written by system administrators and system
robots given `system-trust:update`) hold one document each:

    {"cosign_keys": [{"name": "ci", "public_key": "-----BEGIN PUBLIC KEY-----…"}],
     "keyless": {"identities": [{"issuer": "https://…", "subject": "…", "subject_regexp": false}],
                 "require_tlog": true},
     "trusted_root": {…a sigstore trusted_root.json…},
     "notation": {"certificates": [{"name": "acme", "type": "ca", "certificate": "-----BEGIN…"}],
                  "trusted_identities": ["x509.subject: C=US, O=Acme"], "verification_level": "strict",
                  "verification_override": {"expiry": "log"}, "verify_timestamp": "afterCertExpiry"},
     "notary": {"root_keys": [{"repository": "app", "keys": ["<TUF key id>" or "-----BEGIN…"]}]},
     "use_system_defaults": true, "inherit_index_signature": false}

cosign keys verify cosign signatures (the `.sig` tag scheme, cosign's OCI 1.1 referrers and
sigstore bundles); keyless identities with a trusted root verify Fulcio-certified ones,
offline; Notation certificates are the trust store of a Notary Project trust policy whose
one statement covers the project (`trusted_identities` empty: any identity those roots
certify), at `verification_level` with `verification_override` (the statement's
`override`) and `verify_timestamp` (its `verifyTimestamp`: `always`, the default, or
`afterCertExpiry`; timestamps are verified only when a `tsa` certificate is listed).
Notary's root keys pin Docker Content Trust's root of trust per repository of the
project (`*`: any other): Notary's metadata must be signed by them; a repository no entry
names is trusted on first use, and that first root is recorded. A project with
`use_system_defaults` also trusts what the system's document names. Everything is checked
before anything is written: a key that does not parse, a certificate, a trusted root or an
identity pattern that is not valid, is a 400 that says which. Writes move the accounts'
generation, so the pull policy sees them at once.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from portside.auth.principal import Principal
from portside.errors import BadRequest, NotFound, Unauthorized
from portside.meta.accounts import Project
from portside.meta.trust import SYSTEM, StoredTrust, TrustStore
from portside.mgmt import limits
from portside.mgmt.guard import Guard
from portside.trust import chains, keyless, notation
from portside.trust.keys import InvalidKey, PublicKey, load_public_key
from portside.trust.roots import CertificateAuthority, InvalidRoot, TransparencyLog, TrustedRoot
from portside.trust.trustpolicy import InvalidPolicy, TrustPolicy

__all__ = [
    "MAX_ENTRIES",
    "TrustMaterial",
    "TrustPolicyService",
    "clean_trust",
    "describe_certificate",
    "describe_keys",
    "describe_root",
]

SERVER_KEY_NAME = "portside-sign-on-push"  # the key Portside signs pushes with, as a project lists it
MAX_ENTRIES = 64  # keys, certificates, identities: each
_PEM_BYTES = 64 << 10
_ROOT_BYTES = 1 << 20
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_STORE_TYPES = ("ca", "signingAuthority", "tsa")
_LEVELS = ("strict", "permissive", "audit", "skip")
_VERIFY_TIMESTAMP = ("always", "afterCertExpiry")
_URL_TEXT = 1024


@dataclass(frozen=True, slots=True)
class TrustMaterial:
    """What a project's signatures are verified against, parsed once: its own document
    merged with the system's when it takes the defaults."""

    keys: tuple[PublicKey, ...] = ()
    key_names: Mapping[str, str] = field(default_factory=dict)  # key id -> name
    identities: tuple[keyless.Identity, ...] = ()
    root: TrustedRoot | None = None
    require_tlog: bool = False
    notation_policy: TrustPolicy | None = None  # None: no Notation certificate is trusted
    notation_store: notation.TrustStore = field(default_factory=notation.TrustStore)
    inherit_index_signature: bool = False
    notary_roots: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # repository or "*" -> pins
    fingerprint: str = ""  # of the documents it was read from: results are kept per fingerprint

    @property
    def empty(self) -> bool:
        return not self.keys and not (self.identities and self.root) and self.notation_policy is None

    def notary_pins(self, repository: str) -> tuple[str, ...] | None:
        """The root keys pinned for `repository` (`project/name`), or None: trust on first use."""
        name = repository.split("/", 1)[1] if "/" in repository else repository
        return self.notary_roots.get(name) or self.notary_roots.get("*")


def _text(document: Mapping[str, Any], name: str, where: str, size: int, required: bool = True) -> str:
    value = document.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise BadRequest(f"{where}.{name} must be a non-empty string")
    limits.check_text(f"{where}.{name}", value, size)
    return value


def _list(document: Mapping[str, Any], name: str, where: str) -> list[Any]:
    value = document.get(name, [])
    if not isinstance(value, list):
        raise BadRequest(f"{where}.{name} must be a list")
    if len(value) > MAX_ENTRIES:
        raise BadRequest(f"{where}.{name} holds at most {MAX_ENTRIES} entries")
    return value


def _object(document: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    value = document.get(name) or {}
    if not isinstance(value, Mapping):
        raise BadRequest(f"{where}.{name} must be an object")
    return value


def _flag(document: Mapping[str, Any], name: str, default: bool) -> bool:
    value = document.get(name, default)
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false")
    return value


def _name(document: Mapping[str, Any], where: str) -> str:
    name = _text(document, "name", where, 64)
    if not _NAME.match(name):
        raise BadRequest(f"{where}.name {name[:64]!r}: letters, digits and ._- (at most 64)")
    return name


def clean_key(item: object, where: str) -> dict[str, str]:
    """One cosign key entry, its PEM normalised; BadRequest saying what is wrong."""
    if not isinstance(item, Mapping):
        raise BadRequest(f"{where} must be an object with name and public_key")
    name = _name(item, where)
    pem = _text(item, "public_key", where, _PEM_BYTES)
    try:
        key = load_public_key(pem)
    except (InvalidKey, ValueError) as error:
        raise BadRequest(f"{where}.public_key is not a public key this registry verifies with: {error}") from None
    return {"name": name, "public_key": key.pem()}


def _clean_certificate(item: object, where: str) -> dict[str, str]:
    if not isinstance(item, Mapping):
        raise BadRequest(f"{where} must be an object with name, type and certificate")
    name = _name(item, where)
    kind = item.get("type", "ca")
    if kind not in _STORE_TYPES:
        raise BadRequest(f"{where}.type must be one of {', '.join(_STORE_TYPES)}")
    pem = _text(item, "certificate", where, _PEM_BYTES)
    try:
        certificates = notation.load_certificates(pem.encode())
    except ValueError as error:
        raise BadRequest(f"{where}.certificate is not a PEM certificate: {error}") from None
    if not certificates:
        raise BadRequest(f"{where}.certificate holds no certificate")
    text = "".join(c.public_bytes(Encoding.PEM).decode() for c in certificates)
    return {"name": name, "type": str(kind), "certificate": text}


def _clean_identity(item: object, where: str) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise BadRequest(f"{where} must be an object with issuer and subject")
    issuer = _text(item, "issuer", where, _URL_TEXT)
    subject = _text(item, "subject", where, _URL_TEXT)
    regexp = item.get("subject_regexp", False)
    if not isinstance(regexp, bool):
        raise BadRequest(f"{where}.subject_regexp must be true or false")
    if regexp:
        try:
            re.compile(subject)
        except re.error as error:
            raise BadRequest(f"{where}.subject is not a regular expression: {error}") from None
    return {"issuer": issuer, "subject": subject, "subject_regexp": regexp}


_KEY_ID = re.compile(r"^[0-9a-f]{64}$")
_REPOSITORY = re.compile(r"^(\*|[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)$")
_PINS_PER_REPOSITORY = 8


def _clean_notary_pin(pin: object, where: str) -> str:
    """A Notary root key: its TUF id (64 hex) or its PEM (a certificate or a public key)."""
    if not isinstance(pin, str) or not pin.strip():
        raise BadRequest(f"{where} must be a TUF key id (64 hex digits) or a PEM key or certificate")
    text = pin.strip()
    if _KEY_ID.match(text.lower()):
        return text.lower()
    limits.check_text(where, text, _PEM_BYTES)
    if not text.startswith("-----BEGIN"):
        raise BadRequest(f"{where} must be a TUF key id (64 hex digits) or a PEM key or certificate")
    try:
        if "CERTIFICATE" in text.split("\n", 1)[0]:
            x509.load_pem_x509_certificate(text.encode())
        else:
            load_public_key(text)
    except (InvalidKey, ValueError) as error:
        raise BadRequest(f"{where} is not a PEM key or certificate: {error}") from None
    return text + "\n"


def _clean_notary(raw: Mapping[str, Any]) -> dict[str, Any]:
    part = _object(raw, "notary", "trust")
    unknown = sorted(set(part) - {"root_keys"})
    if unknown:
        raise BadRequest(f"unknown notary field {unknown[0][:64]!r}")
    entries: list[dict[str, Any]] = []
    for i, item in enumerate(_list(part, "root_keys", "notary")):
        where = f"notary.root_keys[{i}]"
        if not isinstance(item, Mapping):
            raise BadRequest(f"{where} must be an object with repository and keys")
        repository = _text(item, "repository", where, 255)
        if not _REPOSITORY.match(repository):
            raise BadRequest(f"{where}.repository {repository[:64]!r} is not a repository name of the project or *")
        keys = item.get("keys")
        if not isinstance(keys, list) or not keys or len(keys) > _PINS_PER_REPOSITORY:
            raise BadRequest(f"{where}.keys must list 1 to {_PINS_PER_REPOSITORY} root keys")
        entries.append(
            {"repository": repository, "keys": [_clean_notary_pin(k, f"{where}.keys[{j}]") for j, k in enumerate(keys)]}
        )
    repositories = [entry["repository"] for entry in entries]
    if len(set(repositories)) != len(repositories):
        raise BadRequest("notary.root_keys: each repository is listed once")
    return {"root_keys": entries}


def clean_trust(raw: object, *, system: bool) -> dict[str, Any]:
    """The document as it is stored, every part checked (see the module's docstring)."""
    if not isinstance(raw, Mapping):
        raise BadRequest("a trust policy is a JSON object")
    known = {
        "cosign_keys",
        "keyless",
        "trusted_root",
        "notation",
        "notary",
        "use_system_defaults",
        "inherit_index_signature",
    }
    unknown = sorted(set(raw) - known - {"update_time", "creation_time", "project_id"})
    if unknown:
        raise BadRequest(f"unknown trust policy field {unknown[0][:64]!r}")
    keys = [clean_key(item, f"cosign_keys[{i}]") for i, item in enumerate(_list(raw, "cosign_keys", "trust"))]
    names = [k["name"] for k in keys]
    if len(set(names)) != len(names):
        raise BadRequest("cosign_keys: each key needs a name of its own")
    ids = [load_public_key(k["public_key"]).key_id for k in keys]
    if len(set(ids)) != len(ids):
        raise BadRequest("cosign_keys: the same key is listed twice")

    keyless_part = _object(raw, "keyless", "trust")
    identities = [
        _clean_identity(item, f"keyless.identities[{i}]")
        for i, item in enumerate(_list(keyless_part, "identities", "keyless"))
    ]
    require_tlog = _flag(keyless_part, "require_tlog", True)

    root = raw.get("trusted_root")
    if root is not None:
        text = json.dumps(root) if isinstance(root, Mapping) else root
        if not isinstance(text, str) or len(text) > _ROOT_BYTES:
            raise BadRequest(f"trusted_root must be a sigstore trusted_root.json object of at most {_ROOT_BYTES} bytes")
        try:
            TrustedRoot.parse(text)
        except (InvalidRoot, ValueError) as error:
            raise BadRequest(f"trusted_root is not a sigstore trusted root: {error}") from None
        root = json.loads(text)

    notation_part = _object(raw, "notation", "trust")
    certificates = [
        _clean_certificate(item, f"notation.certificates[{i}]")
        for i, item in enumerate(_list(notation_part, "certificates", "notation"))
    ]
    trusted = _list(notation_part, "trusted_identities", "notation")
    for i, identity in enumerate(trusted):
        if not isinstance(identity, str):
            raise BadRequest(f"notation.trusted_identities[{i}] must be a string")
        limits.check_text(f"notation.trusted_identities[{i}]", identity, _URL_TEXT)
    level = notation_part.get("verification_level", "strict")
    if level not in _LEVELS:
        raise BadRequest(f"notation.verification_level must be one of {', '.join(_LEVELS)}")
    verify_timestamp = notation_part.get("verify_timestamp", "always")
    if verify_timestamp not in _VERIFY_TIMESTAMP:
        raise BadRequest(f"notation.verify_timestamp must be one of {', '.join(_VERIFY_TIMESTAMP)}")
    override = _object(notation_part, "verification_override", "notation")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in override.items()) or len(override) > 8:
        raise BadRequest("notation.verification_override must map validations to actions")
    cleaned: dict[str, Any] = {
        "cosign_keys": keys,
        "keyless": {"identities": identities, "require_tlog": require_tlog},
        "trusted_root": root,
        "notation": {
            "certificates": certificates,
            "trusted_identities": list(trusted),
            "verification_level": level,
            "verification_override": dict(override),
            "verify_timestamp": verify_timestamp,
        },
        "notary": _clean_notary(raw),
        "inherit_index_signature": _flag(raw, "inherit_index_signature", False),
    }
    if not system:
        cleaned["use_system_defaults"] = _flag(raw, "use_system_defaults", True)
    if certificates or trusted or override:
        _notation_policy(cleaned["notation"], "trust")  # the statement must make sense
    return cleaned


def _notation_policy(part: Mapping[str, Any], scope: str) -> TrustPolicy:
    stores = list(dict.fromkeys(f"{c['type']}:{c['name']}" for c in part.get("certificates", [])))
    identities = list(part.get("trusted_identities") or ["*"])
    level = part.get("verification_level", "strict")
    verification: dict[str, Any] = {"level": level, "verifyTimestamp": part.get("verify_timestamp", "always")}
    if part.get("verification_override"):
        verification["override"] = dict(part["verification_override"])
    statement: dict[str, Any] = {
        "name": scope,
        "registryScopes": ["*"],
        "signatureVerification": verification,
        "trustStores": stores,
        "trustedIdentities": identities,
    }
    if level == "skip":
        statement.pop("trustStores")
        statement.pop("trustedIdentities")
        verification.pop("override", None)
    try:
        return TrustPolicy.parse(json.dumps({"version": "1.0", "trustPolicies": [statement]}))
    except InvalidPolicy as error:
        raise BadRequest(f"notation: {error}") from None


def _merge(own: Mapping[str, Any], system: Mapping[str, Any] | None) -> TrustMaterial:
    """The material of a project's document and, when it takes them, the system's defaults."""
    parts = [own] if system is None or not own.get("use_system_defaults", True) else [own, system]
    keys: dict[str, PublicKey] = {}
    names: dict[str, str] = {}
    identities: list[keyless.Identity] = []
    root: TrustedRoot | None = None
    certificates: list[dict[str, str]] = []
    trusted: list[str] = []
    notary_roots: dict[str, tuple[str, ...]] = {}
    for part in parts:
        for entry in (part.get("notary") or {}).get("root_keys", []):
            notary_roots.setdefault(entry["repository"], tuple(entry["keys"]))  # the project's own first
        for entry in part.get("cosign_keys", []):
            key = load_public_key(entry["public_key"])
            keys.setdefault(key.key_id, key)
            names.setdefault(key.key_id, entry["name"])
        for entry in (part.get("keyless") or {}).get("identities", []):
            identities.append(keyless.Identity(entry["issuer"], entry["subject"], bool(entry["subject_regexp"])))
        if root is None and part.get("trusted_root"):
            root = TrustedRoot.parse(json.dumps(part["trusted_root"]))
        notation_part = part.get("notation") or {}
        certificates += notation_part.get("certificates", [])
        trusted += notation_part.get("trusted_identities", [])
    own_notation = own.get("notation") or {}
    level = own_notation.get("verification_level") or "strict"
    policy = None
    stores: dict[str, list[x509.Certificate]] = {}
    if certificates:
        for entry in certificates:
            stores.setdefault(f"{entry['type']}:{entry['name']}", []).extend(
                notation.load_certificates(entry["certificate"].encode())
            )
        part = {
            "certificates": certificates,
            "trusted_identities": list(dict.fromkeys(trusted)),
            "verification_level": level,
            "verification_override": own_notation.get("verification_override") or {},
            "verify_timestamp": own_notation.get("verify_timestamp") or "always",
        }
        policy = _notation_policy(part, "project")
    return TrustMaterial(
        keys=tuple(keys.values()),
        key_names=names,
        identities=tuple(identities),
        root=root,
        require_tlog=bool((own.get("keyless") or {}).get("require_tlog", True)),
        notation_policy=policy,
        notation_store=notation.TrustStore(stores),
        inherit_index_signature=bool(own.get("inherit_index_signature", False)),
        notary_roots=notary_roots,
        fingerprint=hashlib.sha256(json.dumps([dict(p) for p in parts], sort_keys=True).encode()).hexdigest(),
    )


class TrustPolicyService:
    def __init__(self, guard: Guard, store: TrustStore):
        self._guard = guard
        self._store = store
        # The public key Portside signs a project's pushes with (mgmt/server_signing.py), which
        # the project trusts; None: nothing is signed on push.
        self.server_key: Callable[[Project], Awaitable[str | None]] | None = None
        # The signers a project may sign on push with here, the registry's default first.
        self.signers: tuple[str, ...] = ("portside",)

    async def server_key_of(self, project: Project) -> str | None:
        return await self.server_key(project) if self.server_key is not None else None

    async def system(self, who: Principal) -> StoredTrust:
        if not who.authenticated:
            raise Unauthorized("sign in to read the system's trust policy")
        return await self._stored(SYSTEM)

    async def set_system(self, who: Principal, document: object) -> StoredTrust:
        self._guard.system(who, "system-trust", "update")
        return await self._store.put_trust(SYSTEM, clean_trust(document, system=True))

    async def of_project(self, who: Principal, project_key: int | str) -> tuple[Project, StoredTrust]:
        project = await self._guard.project_for(who, project_key, "project", "read")
        return project, await self._stored(project.project_id)

    async def set_project(self, who: Principal, project_key: int | str, document: object) -> StoredTrust:
        project = await self._guard.project_for(who, project_key, "project", "update")
        return await self._store.put_trust(project.project_id, clean_trust(document, system=False))

    async def add_key(self, who: Principal, project_key: int | str, name: str, public_key: str) -> str:
        """Add one cosign key to the project's policy; its key id. A second key of the same
        name, or the same key again, is refused (409 would hide which: 400 says)."""
        project = await self._guard.project_for(who, project_key, "project", "update")
        stored = await self._stored(project.project_id)
        document = dict(stored.document) or {}
        entry = clean_key({"name": name, "public_key": public_key}, "key")
        document["cosign_keys"] = [*document.get("cosign_keys", []), entry]
        await self._store.put_trust(project.project_id, clean_trust(document, system=False))
        return load_public_key(entry["public_key"]).key_id

    async def remove_key(self, who: Principal, project_key: int | str, key_id: str) -> None:
        project = await self._guard.project_for(who, project_key, "project", "update")
        stored = await self._stored(project.project_id)
        keys = list(stored.document.get("cosign_keys", []))
        kept = [k for k in keys if load_public_key(k["public_key"]).key_id != key_id]
        if len(kept) == len(keys):
            raise NotFound(f"project {project.name} trusts no cosign key {key_id[:80]!r}")
        await self._store.put_trust(project.project_id, {**stored.document, "cosign_keys": kept})

    async def material(self, project: Project) -> TrustMaterial:
        """What `project`'s signatures are verified against (the caller read the project)."""
        own = await self._stored(project.project_id)
        document = own.document or {"use_system_defaults": True}
        system = None
        if document.get("use_system_defaults", True):
            system = (await self._stored(SYSTEM)).document
        server = await self.server_key_of(project)
        if server is not None:
            keys = [k for k in document.get("cosign_keys", []) if k.get("name") != SERVER_KEY_NAME]
            document = {**document, "cosign_keys": [*keys, {"name": SERVER_KEY_NAME, "public_key": server}]}
        return _merge(document, system)

    async def _stored(self, scope: int) -> StoredTrust:
        return await self._store.get_trust(scope) or StoredTrust(scope)


def describe_keys(entries: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """The cosign keys as the API shows them: with their key id and algorithm."""
    out = []
    for entry in entries:
        key = load_public_key(entry["public_key"])
        out.append(
            {"id": key.key_id, "name": entry["name"], "algorithm": key.algorithm, "public_key": entry["public_key"]}
        )
    return out


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def describe_certificate(entry: Mapping[str, str]) -> dict[str, Any]:
    """A Notation certificate entry with what people recognise it by: its first
    certificate's subject, issuer, validity and SHA-256 fingerprint, and how many the PEM holds."""
    certificates = notation.load_certificates(entry["certificate"].encode())
    first = certificates[0]
    return {
        **entry,
        "subject": chains.describe(chains.subject_of(first)),
        "issuer": chains.describe(chains.issuer_of(first)),
        "not_before": _iso(first.not_valid_before_utc),
        "not_after": _iso(first.not_valid_after_utc),
        "fingerprint": first.fingerprint(hashes.SHA256()).hex(),
        "count": len(certificates),
    }


def describe_root(document: Mapping[str, Any] | None) -> dict[str, list[dict[str, Any]]] | None:
    """What a stored trusted root holds (None: there is none): its Fulcio certificate
    authorities, Rekor transparency logs, CT logs and timestamp authorities, each named by
    its URL (a CA's by its subject when it has none) with the window it is valid for."""
    if not document:
        return None
    root = TrustedRoot.parse(json.dumps(document))

    def authority(found: CertificateAuthority) -> dict[str, Any]:
        name = found.uri or chains.describe(chains.subject_of(found.chain[0]))
        return {"name": name, "start": _iso(found.window.start), "end": _iso(found.window.end)}

    def log(found: TransparencyLog) -> dict[str, Any]:
        return {
            "name": found.base_url or found.log_id.hex(),
            "start": _iso(found.window.start),
            "end": _iso(found.window.end),
        }

    return {
        "certificate_authorities": [authority(a) for a in root.certificate_authorities],
        "tlogs": [log(t) for t in root.tlogs],
        "ctlogs": [log(t) for t in root.ctlogs],
        "timestamp_authorities": [authority(a) for a in root.timestamp_authorities],
    }
