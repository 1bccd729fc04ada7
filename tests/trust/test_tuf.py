"""Notary's TUF metadata (portside.trust.tuf): real metadata from Debian's notary-server
(tests/trust/fixtures_notary), and tampered copies each failing for its own reason."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from portside.trust import tuf

FIXTURES = Path(__file__).parent / "fixtures_notary"
GUN = "127.0.0.1:5000/library/x"
NOW = datetime(2026, 12, 5, tzinfo=UTC)  # the fixtures' timestamp expires 2026-12-17
V1 = "sha256:" + hashlib.sha256(b"hello\n").hexdigest()
V2 = "sha256:" + hashlib.sha256(b"v2content\n").hexdigest()
ROOT_KEY_ID = "1cfb0def97a66b2a72db057c3db2aec2fbd55fa4596e1d17abab86ea09333e7d"


def metadata() -> dict[str, bytes]:
    files = {"root": "root", "timestamp": "timestamp", "snapshot": "snapshot", "targets": "targets"}
    files["targets/releases"] = "targets_releases"
    return {role: (FIXTURES / f"{name}.json").read_bytes() for role, name in files.items()}


def root_key() -> ec.EllipticCurvePrivateKey:
    """The fixture repository's root key (the notary client's, decrypted)."""
    key = serialization.load_pem_private_key((FIXTURES / "root-key.pem").read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def sign(signed: dict[str, object], key: ec.EllipticCurvePrivateKey, key_id: str) -> dict[str, object]:
    r, s = decode_dss_signature(key.sign(tuf.canonical_json(signed), ec.ECDSA(hashes.SHA256())))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return {"keyid": key_id, "method": "ecdsa", "sig": base64.b64encode(raw).decode()}


def failure(md: dict[str, bytes], **kwargs: object) -> str:
    with pytest.raises(tuf.TufError) as raised:
        tuf.verify_repository(kwargs.pop("gun", GUN), md, now=kwargs.pop("now", NOW), **kwargs)  # type: ignore[arg-type]
    return str(raised.value)


def test_real_notary_metadata_verifies() -> None:
    repository = tuf.verify_repository(GUN, metadata(), now=NOW)
    assert repository.root_key_ids == {ROOT_KEY_ID}
    assert [(t.tag, t.digest, t.length) for t in repository.targets["targets"]] == [("v1", V1, 6)]
    assert [(t.tag, t.digest, t.role) for t in repository.targets["targets/releases"]] == [
        ("v2", V2, "targets/releases")
    ]
    assert repository.fresh_until == repository.expires["timestamp"]
    assert set(repository.signers) == {"targets/releases"}


def test_digest_verdicts() -> None:
    good = tuf.verify_digest(GUN, metadata(), V2, now=NOW)
    assert good.verified and good.kind == "notary" and good.signer == "targets/releases: v2"
    assert tuf.verify_digest(GUN, metadata(), V1, tag="v1", now=NOW).signer == "targets: v1"
    other_tag = tuf.verify_digest(GUN, metadata(), V2, tag="v1", now=NOW)
    assert not other_tag.verified and "tag 'v1'" in (other_tag.reason or "")
    unknown = tuf.verify_digest(GUN, metadata(), "sha256:" + "0" * 64, now=NOW)
    assert not unknown.verified and "no signed target" in (unknown.reason or "")


def test_releases_wins_over_targets_for_a_tag() -> None:
    repository = tuf.verify_repository(GUN, metadata(), now=NOW)
    shadow = tuf.TrustedTarget("v2", V1, 6, "targets")
    both = tuf.Repository(
        repository.gun,
        repository.root_key_ids,
        repository.versions,
        repository.expires,
        {**repository.targets, "targets": (*repository.targets["targets"], shadow)},
        repository.signers,
    )
    assert tuf.find(both, V2, "v2") and not tuf.find(both, V1, "v2")


def _changed_target(role: str) -> dict[str, bytes]:
    md = metadata()
    document = json.loads(md[role])
    for entry in document["signed"]["targets"].values():
        entry["hashes"]["sha256"] = base64.b64encode(hashlib.sha256(b"something else").digest()).decode()
    md[role] = json.dumps(document, separators=(",", ":")).encode()
    return md


def test_changed_target_hash_in_a_delegation() -> None:
    assert "targets/releases: its sha256 is not the one snapshot signed" in failure(_changed_target("targets/releases"))


def test_changed_target_hash_in_targets() -> None:
    assert "targets: its sha256 is not the one snapshot signed" in failure(_changed_target("targets"))


def test_changed_target_hash_with_the_snapshot_changed_too() -> None:
    md = _changed_target("targets")
    snapshot = json.loads(md["snapshot"])
    snapshot["signed"]["meta"]["targets"]["hashes"] = {
        "sha256": base64.b64encode(hashlib.sha256(md["targets"]).digest()).decode()
    }
    snapshot["signed"]["meta"]["targets"]["length"] = len(md["targets"])
    md["snapshot"] = json.dumps(snapshot).encode()
    # the timestamp signs the snapshot's bytes
    assert "snapshot:" in failure(md) and "timestamp" in failure(md)


def test_expired_timestamp() -> None:
    assert failure(metadata(), now=datetime(2026, 12, 18, tzinfo=UTC)).startswith("timestamp: expired at 2026-12-17")


def test_signature_by_another_key() -> None:
    md = metadata()
    root = json.loads(md["root"])
    root["signatures"] = [sign(root["signed"], ec.generate_private_key(ec.SECP256R1()), ROOT_KEY_ID)]
    md["root"] = json.dumps(root).encode()
    assert failure(md) == "root: 0 valid signature(s) from its keys, below its threshold of 1"


def test_below_threshold() -> None:
    md = metadata()
    root = json.loads(md["root"])
    root["signed"]["roles"]["root"]["threshold"] = 2
    root["signatures"] = [sign(root["signed"], root_key(), ROOT_KEY_ID)]  # a real signature, but only one
    md["root"] = json.dumps(root).encode()
    assert failure(md) == "root: 1 valid signature(s) from its keys, below its threshold of 2"


def test_resigned_root_must_still_match_the_snapshot() -> None:
    md = metadata()
    root = json.loads(md["root"])
    root["signed"]["version"] = 2
    root["signatures"] = [sign(root["signed"], root_key(), ROOT_KEY_ID)]
    md["root"] = json.dumps(root).encode()
    assert "root: " in failure(md) and "snapshot" in failure(md)


def test_pinned_root_keys() -> None:
    repository = tuf.verify_repository(GUN, metadata(), now=NOW)
    assert tuf.verify_repository(GUN, metadata(), pinned=sorted(repository.root_key_ids), now=NOW)
    root = json.loads(metadata()["root"])
    certificate = base64.b64decode(root["signed"]["keys"][ROOT_KEY_ID]["keyval"]["public"]).decode()
    assert tuf.verify_repository(GUN, metadata(), pinned=[certificate], now=NOW)
    # the id `notary key list` prints: the bare public key's
    public = (
        root_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert tuf.verify_repository(GUN, metadata(), pinned=[public.decode()], now=NOW)
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = other.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    assert "not signed by the pinned root keys" in failure(metadata(), pinned=[pem, "ab" * 32])


def test_root_certificate_for_another_gun() -> None:
    assert "certificate is not for '127.0.0.1:5000/library/y'" in failure(metadata(), gun="127.0.0.1:5000/library/y")


def test_key_id_must_be_the_keys_hash() -> None:
    md = metadata()
    root = json.loads(md["root"])
    keys = root["signed"]["keys"]
    timestamp_id = root["signed"]["roles"]["timestamp"]["keyids"][0]
    keys[timestamp_id] = keys[root["signed"]["roles"]["snapshot"]["keyids"][0]]
    md["root"] = json.dumps(root).encode()
    assert "its id is not the hash of the key" in failure(md)


def test_missing_role_and_undelegated_role() -> None:
    md = metadata()
    del md["snapshot"]
    assert failure(md) == "snapshot: missing"
    md = metadata()
    md["targets/alice"] = md.pop("targets/releases")
    assert failure(md) == "targets/alice: targets does not delegate to it"


def test_a_delegation_signs_only_within_its_paths() -> None:
    md = metadata()
    targets = json.loads(md["targets"])
    targets["signed"]["delegations"]["roles"][0]["paths"] = ["release-"]
    # the fixtures keep only the root key, so targets cannot be re-signed here; the scope
    # is read from the verified targets, so check the rule on its own
    scope = tuf._scope(targets["signed"]["delegations"]["roles"][0])
    assert scope.allows("release-1") and not scope.allows("v2")
    assert not tuf._scope({"name": "targets/releases"}).allows("v2")  # neither: nothing
    hashed = hashlib.sha256(b"v2").hexdigest()[:2]
    assert tuf._scope({"name": "targets/x", "path_hash_prefixes": [hashed]}).allows("v2")
