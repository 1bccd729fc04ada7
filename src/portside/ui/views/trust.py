"""The trust policy editor a project's settings and the administration's system trust page
share (templates/trust/_editor.html): what the page shows of a policy document, and what
each of its forms changes in it.

Each form changes one part of the stored document (a cosign key, a keyless identity, the
trusted root, a Notation certificate, Notation's identities, level, timestamp rule and
overrides, a repository's pinned Notary root, the switches) and
the view hands the whole document back to TrustPolicyService, which checks everything:
nothing here reads a key, a certificate, a pattern or a root. What the service refuses is
shown next to the form that was sent (`FIELDS`), with what was typed in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from portside.errors import BadRequest, NotFound
from portside.mgmt.trust_policy import describe_certificate, describe_keys, describe_root

__all__ = ["FIELDS", "TrustChange", "edited", "editor", "typed_in"]

# Each form's `part`, and the field its refusal is shown under.
FIELDS = {
    "trust": "trust",
    "trust-key-add": "public_key",
    "trust-key-remove": "cosign_keys",
    "trust-identity-add": "identity",
    "trust-identity-remove": "identities",
    "trust-root": "trusted_root",
    "trust-root-remove": "trusted_root",
    "trust-certificate-add": "certificate",
    "trust-certificate-remove": "certificates",
    "trust-notation": "notation",
    "trust-notary-add": "notary_keys",
    "trust-notary-remove": "notary",
}
# What a person types into the forms, shown back when the service refuses it.
TYPED = (
    "key_name",
    "public_key",
    "issuer",
    "subject",
    "subject_regexp",
    "trusted_root",
    "certificate_name",
    "certificate_type",
    "certificate",
    "trusted_identities",
    "verification_level",
    "verify_timestamp",
    *(f"override_{validation}" for validation in ("authenticity", "authenticTimestamp", "expiry", "revocation")),
    "notary_repository",
    "notary_keys",
)
# The Notary Project's trust store types and verification levels, as its spec names them,
# with what the page says of each (the service refuses any other).
STORE_TYPE_TITLES = {
    "ca": "Certificate authority (ca)",
    "signingAuthority": "Signing authority (signingAuthority)",
    "tsa": "Timestamping authority (tsa)",
}
# What the Notary Project lets a statement's `override` change, and to what.
OVERRIDABLE = ("authenticity", "authenticTimestamp", "expiry", "revocation")
OVERRIDE_ACTIONS = ("enforce", "log", "skip")
TIMESTAMP_TITLES = {
    "always": "always: a listed TSA must vouch for every signature",
    "afterCertExpiry": "afterCertExpiry: only once the signing certificate has expired",
}
LEVEL_TITLES = {
    "strict": "strict: every check is enforced",
    "permissive": "permissive: expiry and revocation only logged",
    "audit": "audit: only integrity is enforced, the rest is logged",
    "skip": "skip: signatures are not verified",
}


@dataclass(frozen=True, slots=True)
class TrustChange:
    document: dict[str, Any]  # the whole policy, for the service to check and store
    notice: str


def _keyless(document: Mapping[str, Any]) -> dict[str, Any]:
    return dict(document.get("keyless") or {"identities": [], "require_tlog": True})


def _notation(document: Mapping[str, Any]) -> dict[str, Any]:
    """The Notation part, whatever else it holds kept as it is (the forms change one piece)."""
    found = dict(document.get("notation") or {})
    found["certificates"] = list(found.get("certificates", []))
    found["trusted_identities"] = list(found.get("trusted_identities", []))
    found.setdefault("verification_level", "strict")
    found.setdefault("verify_timestamp", "always")
    found["verification_override"] = dict(found.get("verification_override") or {})
    return found


def _notary_roots(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [dict(entry) for entry in (document.get("notary") or {}).get("root_keys", [])]


def _pin_title(pin: str) -> str:
    """A pinned Notary root key as a person can tell it: a TUF id, or a PEM's first line."""
    text = pin.strip()
    if text.startswith("-----BEGIN"):
        body = "".join(text.splitlines()[1:-1])
        return f"{text.splitlines()[0].strip('-').strip().lower()} …{body[-16:]}"
    return text


def editor(
    document: Mapping[str, Any], *, system: bool, may_update: bool, typed: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """What the editor shows of a stored document; `typed`: the form the service refused."""
    notation = _notation(document)
    keyless = _keyless(document)
    form = dict(typed or {})
    if "trusted_identities" not in form:
        form["trusted_identities"] = "\n".join(notation["trusted_identities"])
    form.setdefault("verification_level", notation["verification_level"])
    form.setdefault("verify_timestamp", notation["verify_timestamp"])
    for validation in OVERRIDABLE:
        form.setdefault(f"override_{validation}", notation["verification_override"].get(validation, ""))
    return {
        "system": system,
        "may_update": may_update,
        "cosign_keys": describe_keys(document.get("cosign_keys", [])),
        "identities": list(keyless.get("identities", [])),
        "require_tlog": bool(keyless.get("require_tlog", True)),
        "root": describe_root(document.get("trusted_root")),
        "certificates": [describe_certificate(c) for c in notation["certificates"]],
        "trusted_identities": notation["trusted_identities"],
        "verification_level": notation["verification_level"],
        "levels": list(LEVEL_TITLES.items()),
        "verify_timestamp": notation["verify_timestamp"],
        "timestamp_choices": list(TIMESTAMP_TITLES.items()),
        "overrides": [(v, notation["verification_override"].get(v, "")) for v in OVERRIDABLE],
        "override_actions": list(OVERRIDE_ACTIONS),
        "notary_roots": [
            {"repository": entry["repository"], "keys": [_pin_title(k) for k in entry.get("keys", [])]}
            for entry in _notary_roots(document)
        ],
        "store_types": list(STORE_TYPE_TITLES.items()),
        "use_system_defaults": bool(document.get("use_system_defaults", True)),
        "inherit_index_signature": bool(document.get("inherit_index_signature", False)),
        "form": form,
    }


def typed_in(form: Mapping[str, str]) -> dict[str, str]:
    """What was typed into the form that was sent, to show it again (a removal's hidden
    fields are what the page showed, not typing: the add forms stay empty)."""
    if form.get("part", "").endswith("-remove"):
        return {}
    typed = {name: form[name] for name in TYPED if name in form}
    if form.get("trusted_root_file", "").strip():
        typed["trusted_root"] = form["trusted_root_file"]
    return typed


def _pins(text: str) -> list[str]:
    """The keys typed one a line: TUF ids each on its line, a PEM block kept whole."""
    pins: list[str] = []
    block: list[str] = []
    for line in text.splitlines():
        if block or line.strip().startswith("-----BEGIN"):
            block.append(line.strip())
            if line.strip().startswith("-----END"):
                pins.append("\n".join(block))
                block = []
        elif line.strip():
            pins.append(line.strip())
    if block:
        pins.append("\n".join(block))  # an unfinished PEM: the service says so
    return pins


def edited(document: Mapping[str, Any], form: Mapping[str, str], *, system: bool) -> TrustChange:
    """The document with the change the form asks for (its `part`), for the service to check;
    `system`: the system's defaults, which take no one else's."""
    part = form.get("part", "")
    changed = dict(document)
    if part == "trust":
        keyless = _keyless(document)
        keyless["require_tlog"] = form.get("require_tlog") == "on"
        changed["keyless"] = keyless
        changed["inherit_index_signature"] = form.get("inherit_index_signature") == "on"
        if not system:
            changed["use_system_defaults"] = form.get("use_system_defaults") == "on"
        return TrustChange(changed, "Signature policy saved.")
    if part == "trust-key-add":
        key = {"name": form.get("key_name", "").strip(), "public_key": form.get("public_key", "")}
        changed["cosign_keys"] = [*document.get("cosign_keys", []), key]
        return TrustChange(changed, "Key trusted.")
    if part == "trust-key-remove":
        key_id = form.get("key_id", "")
        kept = [entry for entry in describe_keys(document.get("cosign_keys", [])) if entry["id"] != key_id]
        if len(kept) == len(document.get("cosign_keys", [])):
            raise NotFound(f"no cosign key {key_id[:80]!r} is trusted here")
        changed["cosign_keys"] = [{"name": k["name"], "public_key": k["public_key"]} for k in kept]
        return TrustChange(changed, "Key removed.")
    if part == "trust-identity-add":
        keyless = _keyless(document)
        identity = {
            "issuer": form.get("issuer", "").strip(),
            "subject": form.get("subject", "").strip(),
            "subject_regexp": form.get("subject_regexp") == "on",
        }
        keyless["identities"] = [*keyless.get("identities", []), identity]
        changed["keyless"] = keyless
        return TrustChange(changed, "Keyless identity trusted.")
    if part == "trust-identity-remove":
        keyless = _keyless(document)
        identities = list(keyless.get("identities", []))
        wanted = (form.get("issuer", ""), form.get("subject", ""), form.get("subject_regexp") == "true")
        found = [i for i in identities if (i["issuer"], i["subject"], bool(i["subject_regexp"])) == wanted]
        if not found:
            raise NotFound("that keyless identity is no longer trusted here")
        identities.remove(found[0])
        keyless["identities"] = identities
        changed["keyless"] = keyless
        return TrustChange(changed, "Keyless identity removed.")
    if part == "trust-root":
        text = form.get("trusted_root_file", "").strip() or form.get("trusted_root", "").strip()
        if not text:
            raise BadRequest("paste a trusted_root.json or choose its file")
        changed["trusted_root"] = text  # the service reads it, and says what is wrong with it
        return TrustChange(
            changed, "Trusted root imported." if not document.get("trusted_root") else "Trusted root replaced."
        )
    if part == "trust-root-remove":
        changed["trusted_root"] = None
        return TrustChange(changed, "Trusted root removed.")
    if part == "trust-certificate-add":
        notation = _notation(document)
        certificate = {
            "name": form.get("certificate_name", "").strip(),
            "type": form.get("certificate_type", "ca"),
            "certificate": form.get("certificate", ""),
        }
        notation["certificates"] = [*notation["certificates"], certificate]
        changed["notation"] = notation
        return TrustChange(changed, "Certificate trusted.")
    if part == "trust-certificate-remove":
        notation = _notation(document)
        wanted_entry = (form.get("certificate_type", ""), form.get("certificate_name", ""), form.get("fingerprint", ""))
        described = [describe_certificate(c) for c in notation["certificates"]]
        kept = [
            entry
            for entry, shown in zip(notation["certificates"], described, strict=True)
            if (shown["type"], shown["name"], shown["fingerprint"]) != wanted_entry
        ]
        if len(kept) == len(notation["certificates"]):
            raise NotFound("that certificate is no longer trusted here")
        notation["certificates"] = kept
        changed["notation"] = notation
        return TrustChange(changed, "Certificate removed.")
    if part == "trust-notation":
        notation = _notation(document)
        lines = form.get("trusted_identities", "").splitlines()
        notation["trusted_identities"] = [line.strip() for line in lines if line.strip()]
        notation["verification_level"] = form.get("verification_level", "strict")
        notation["verify_timestamp"] = form.get("verify_timestamp", "always")
        notation["verification_override"] = {
            validation: form[f"override_{validation}"]
            for validation in OVERRIDABLE
            if form.get(f"override_{validation}", "")
        }
        changed["notation"] = notation
        return TrustChange(changed, "Notation verification saved.")
    if part == "trust-notary-add":
        roots = _notary_roots(document)
        repository = form.get("notary_repository", "").strip()
        keys = [line.strip() for line in _pins(form.get("notary_keys", ""))]
        roots = [entry for entry in roots if entry["repository"] != repository]  # replaced, if pinned before
        roots.append({"repository": repository, "keys": keys})
        changed["notary"] = {"root_keys": roots}
        return TrustChange(changed, f"Notary root pinned for {repository or 'the repository'}.")
    if part == "trust-notary-remove":
        roots = _notary_roots(document)
        repository = form.get("notary_repository", "")
        kept = [entry for entry in roots if entry["repository"] != repository]
        if len(kept) == len(roots):
            raise NotFound(f"no Notary root is pinned for {repository[:80]!r}")
        changed["notary"] = {"root_keys": kept}
        return TrustChange(changed, f"Notary root of {repository} unpinned: trusted on first use again.")
    raise BadRequest(f"unknown part of the trust policy {part[:40]!r}")
