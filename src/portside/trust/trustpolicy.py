"""Notary Project trust policies (OCI, version 1.0): which statement governs a
repository, what each verification level enforces, and whom it trusts.

A statement applies to the repositories its `registryScopes` name exactly
(`registry/namespace/repository`, no expansion), else the one global statement (`*`)
applies, else none does and verification fails (`TrustPolicy.select`).

The five validations and what each level does with a failure (`LEVELS`):

| level      | integrity | authenticity | authenticTimestamp | expiry  | revocation |
|------------|-----------|--------------|--------------------|---------|------------|
| strict     | enforce   | enforce      | enforce            | enforce | enforce    |
| permissive | enforce   | enforce      | log                | log     | log        |
| audit      | enforce   | log          | log                | log     | log        |
| skip       | skip      | skip         | skip               | skip    | skip       |

`override` may change any but integrity (`enforce`/`log`; revocation also `skip`);
`skip` cannot be overridden nor be global. `trustStores` are `ca:<name>`,
`signingAuthority:<name>` or `tsa:<name>`; `trustedIdentities` is `*` alone or
`x509.subject: <DN>` entries, each with C, ST (or S) and O, none overlapping another.

A trusted DN matches a certificate subject that holds every one of its RDNs (type and
value equal; `S` is `ST`); other attributes of the subject do not matter
(`DistinguishedName.matches`). In a DN `\\,`, `\\;`, `\\\\` and a `\\ ` at either end
escape; an unescaped `,` separates RDNs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cryptography import x509

from portside.trust.chains import subject_of

__all__ = [
    "VALIDATIONS",
    "LEVELS",
    "Action",
    "InvalidPolicy",
    "DistinguishedName",
    "PolicyStatement",
    "TrustPolicy",
]

Action = Literal["enforce", "log", "skip"]
VALIDATIONS = ("integrity", "authenticity", "authenticTimestamp", "expiry", "revocation")
_E: Action = "enforce"
_L: Action = "log"
_S: Action = "skip"
LEVELS: Mapping[str, Mapping[str, Action]] = {
    "strict": dict.fromkeys(VALIDATIONS, _E),
    "permissive": {"integrity": _E, "authenticity": _E, "authenticTimestamp": _L, "expiry": _L, "revocation": _L},
    "audit": {"integrity": _E, "authenticity": _L, "authenticTimestamp": _L, "expiry": _L, "revocation": _L},
    "skip": dict.fromkeys(VALIDATIONS, _S),
}
_OVERRIDES: Mapping[str, tuple[str, ...]] = {
    "authenticity": ("enforce", "log"),
    "authenticTimestamp": ("enforce", "log"),
    "expiry": ("enforce", "log"),
    "revocation": ("enforce", "log", "skip"),
}
_STORE_TYPES = ("ca", "signingAuthority", "tsa")
_SUBJECT_PREFIX = "x509.subject:"
_ALIASES = {"S": "ST"}


class InvalidPolicy(ValueError):
    """A trust policy the spec does not allow; the message says which rule it breaks."""


@dataclass(frozen=True, slots=True)
class DistinguishedName:
    """A DN as (type, value) RDNs, in the order written."""

    rdns: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, text: str) -> DistinguishedName:
        rdns: list[tuple[str, str]] = []
        for part in _split(text):
            name, equals, value = _unescape_split(part)
            if not equals or not name or not value:
                raise InvalidPolicy(f"{text!r} is not a distinguished name (at {part!r})")
            rdns.append((_ALIASES.get(name.upper(), name.upper()), value))
        if not rdns:
            raise InvalidPolicy("an empty distinguished name")
        return cls(tuple(rdns))

    @classmethod
    def of(cls, name: x509.Name | None) -> DistinguishedName:
        if name is None:
            return cls(())
        rdns = []
        for attribute in name:
            label = attribute.rfc4514_attribute_name
            value = attribute.value if isinstance(attribute.value, str) else attribute.value.hex()
            rdns.append((_ALIASES.get(label.upper(), label.upper()), value))
        return cls(tuple(rdns))

    def types(self) -> set[str]:
        return {name for name, _ in self.rdns}

    def matches(self, subject: DistinguishedName) -> bool:
        """True when the subject holds every RDN of this (trusted) name."""
        held = set(subject.rdns)
        return all(rdn in held for rdn in self.rdns)

    def overlaps(self, other: DistinguishedName) -> bool:
        """Some subject could match both: no attribute type they share has different values."""
        for name in self.types() & other.types():
            if {v for n, v in self.rdns if n == name} != {v for n, v in other.rdns if n == name}:
                return False
        return True

    def __str__(self) -> str:
        return ", ".join(f"{name}={value}" for name, value in self.rdns)


def _split(text: str) -> list[str]:
    parts, current, escaped = [], "", False
    for char in text:
        if escaped:
            current += "\\" + char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            parts.append(current)
            current = ""
        else:
            current += char
    if escaped:
        raise InvalidPolicy(f"{text!r} ends in a lone backslash")
    parts.append(current)
    return [part for part in parts if part.strip()]


def _unescape_split(part: str) -> tuple[str, bool, str]:
    """`type = value` with escapes resolved; spaces around the value trimmed unless escaped."""
    name, equals, raw = part.partition("=")
    if not equals:
        return name.strip(), False, ""
    value, index, keep_until = "", 0, 0
    raw = raw.lstrip(" ")
    while index < len(raw):
        char = raw[index]
        if char == "\\" and index + 1 < len(raw):
            value += raw[index + 1]
            index += 2
            keep_until = len(value)
            continue
        value += char
        index += 1
        if char != " ":
            keep_until = len(value)
    return name.strip(), True, value[:keep_until]


@dataclass(frozen=True, slots=True)
class PolicyStatement:
    name: str
    registry_scopes: tuple[str, ...]
    level: str
    actions: Mapping[str, Action]
    trust_stores: tuple[str, ...] = ()
    trusted_identities: tuple[str, ...] = ()
    verify_timestamp: str = "always"

    def action(self, validation: str) -> Action:
        return self.actions[validation]

    @property
    def skips(self) -> bool:
        return self.level == "skip"

    @property
    def trusts_any_identity(self) -> bool:
        return self.trusted_identities == ("*",)

    def identities(self) -> list[DistinguishedName]:
        return [DistinguishedName.parse(i[len(_SUBJECT_PREFIX) :]) for i in self.trusted_identities if i != "*"]

    def stores(self, kind: str) -> list[str]:
        """The named stores of one type (`ca`, `signingAuthority`, `tsa`)."""
        return [store.partition(":")[2] for store in self.trust_stores if store.partition(":")[0] == kind]

    def trusts(self, certificate: x509.Certificate) -> bool:
        if self.trusts_any_identity:
            return True
        subject = DistinguishedName.of(subject_of(certificate))
        return any(identity.matches(subject) for identity in self.identities())


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    statements: tuple[PolicyStatement, ...]
    version: str = "1.0"

    @classmethod
    def parse(cls, data: bytes | str) -> TrustPolicy:
        try:
            document = json.loads(data)
        except ValueError as error:
            raise InvalidPolicy(f"not JSON: {error}") from error
        if not isinstance(document, Mapping):
            raise InvalidPolicy("not a JSON object")
        if document.get("version") != "1.0":
            raise InvalidPolicy(f"version {document.get('version')!r} is not 1.0")
        raw = document.get("trustPolicies")
        if not isinstance(raw, list) or not raw:
            raise InvalidPolicy("`trustPolicies` must list at least one statement")
        statements = tuple(_statement(item) for item in raw)
        _check_together(statements)
        return cls(statements, "1.0")

    def select(self, repository: str) -> PolicyStatement | None:
        """The statement for `registry/namespace/repository`: its exact scope, else the global one."""
        for statement in self.statements:
            if repository in statement.registry_scopes:
                return statement
        for statement in self.statements:
            if statement.registry_scopes == ("*",):
                return statement
        return None


def _statement(item: object) -> PolicyStatement:
    if not isinstance(item, Mapping):
        raise InvalidPolicy("a trust policy statement is not an object")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidPolicy("a trust policy statement has no name")
    where = f"statement {name!r}"
    scopes = _strings(item, "registryScopes", where)
    if not scopes:
        raise InvalidPolicy(f"{where}: `registryScopes` must name at least one scope")
    if "*" in scopes and len(scopes) > 1:
        raise InvalidPolicy(f"{where}: the global scope `*` must stand alone")
    if any("*" in scope for scope in scopes if scope != "*"):
        raise InvalidPolicy(f"{where}: a repository scope cannot hold `*`")
    verification = item.get("signatureVerification")
    if not isinstance(verification, Mapping):
        raise InvalidPolicy(f"{where}: `signatureVerification` is required")
    level = verification.get("level")
    if not isinstance(level, str) or level not in LEVELS:
        raise InvalidPolicy(f"{where}: level {level!r} is not strict, permissive, audit or skip")
    actions = dict(LEVELS[level])
    override = verification.get("override") or {}
    if not isinstance(override, Mapping):
        raise InvalidPolicy(f"{where}: `override` is not an object")
    if override and level == "skip":
        raise InvalidPolicy(f"{where}: the skip level cannot be overridden")
    for validation, action in override.items():
        allowed = _OVERRIDES.get(validation)
        if allowed is None:
            raise InvalidPolicy(f"{where}: {validation!r} cannot be overridden")
        if action not in allowed:
            raise InvalidPolicy(f"{where}: {validation} may be {', '.join(allowed)}, not {action!r}")
        actions[validation] = action
    verify_timestamp = verification.get("verifyTimestamp", "always")
    if verify_timestamp not in ("always", "afterCertExpiry"):
        raise InvalidPolicy(f"{where}: verifyTimestamp {verify_timestamp!r} is not always or afterCertExpiry")
    if level == "skip":
        if scopes == ("*",):
            raise InvalidPolicy(f"{where}: the skip level cannot apply to the global scope")
        return PolicyStatement(name, scopes, level, actions)
    stores = _strings(item, "trustStores", where)
    if not stores:
        raise InvalidPolicy(f"{where}: `trustStores` must name at least one store")
    for store in stores:
        kind, colon, named = store.partition(":")
        if not colon or kind not in _STORE_TYPES or not named:
            raise InvalidPolicy(f"{where}: trust store {store!r} is not ca:, signingAuthority: or tsa:<name>")
    identities = _strings(item, "trustedIdentities", where)
    if not identities:
        raise InvalidPolicy(f"{where}: `trustedIdentities` must name at least one identity, or `*`")
    if "*" in identities and len(identities) > 1:
        raise InvalidPolicy(f"{where}: `*` must be the only trusted identity")
    statement = PolicyStatement(name, scopes, level, actions, stores, identities, verify_timestamp)
    _check_identities(statement, where)
    return statement


def _check_identities(statement: PolicyStatement, where: str) -> None:
    for identity in statement.trusted_identities:
        if identity != "*" and not identity.startswith(_SUBJECT_PREFIX):
            raise InvalidPolicy(f"{where}: identity {identity!r} is neither `*` nor `x509.subject: …`")
    names = statement.identities()
    for dn in names:
        missing = {"C", "ST", "O"} - dn.types()
        if missing:
            raise InvalidPolicy(f"{where}: identity {str(dn)!r} lacks {', '.join(sorted(missing))}")
    for i, one in enumerate(names):
        for other in names[i + 1 :]:
            if one.overlaps(other):
                raise InvalidPolicy(f"{where}: identities {str(one)!r} and {str(other)!r} overlap")


def _check_together(statements: Sequence[PolicyStatement]) -> None:
    names = [s.name for s in statements]
    duplicate = {n for n in names if names.count(n) > 1}
    if duplicate:
        raise InvalidPolicy(f"statement names must be unique: {', '.join(sorted(duplicate))}")
    if sum(1 for s in statements if s.registry_scopes == ("*",)) > 1:
        raise InvalidPolicy("only one statement may use the global scope `*`")
    seen: dict[str, str] = {}
    for statement in statements:
        for scope in statement.registry_scopes:
            if scope != "*" and scope in seen:
                raise InvalidPolicy(f"scope {scope!r} is in both {seen[scope]!r} and {statement.name!r}")
            seen[scope] = statement.name


def _strings(item: Mapping[str, Any], field: str, where: str) -> tuple[str, ...]:
    value = item.get(field) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidPolicy(f"{where}: `{field}` is not a list of strings")
    return tuple(value)
