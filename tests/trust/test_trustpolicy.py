"""Trust policy documents: levels, selection, identities and DN matching."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from portside.trust.trustpolicy import DistinguishedName, InvalidPolicy, TrustPolicy
from tests.trust.fixtures import SIGNED


def _statement(name: str = "p", scopes: list[str] | None = None, **fields: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "name": name,
        "registryScopes": scopes if scopes is not None else ["*"],
        "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:acme"],
        "trustedIdentities": ["*"],
    }
    statement.update(fields)
    return statement


def _parse(*statements: dict[str, Any]) -> TrustPolicy:
    return TrustPolicy.parse(json.dumps({"version": "1.0", "trustPolicies": list(statements)}))


def test_every_fixture_policy_parses() -> None:
    files = sorted(SIGNED.glob("*/*trustpolicy*.json"))
    assert len(files) >= 8
    for path in files:
        TrustPolicy.parse(path.read_bytes())


def test_levels_enforce_and_log_as_the_spec_tables() -> None:
    levels = {
        level: _parse(_statement(signatureVerification={"level": level})).statements[0].actions
        for level in ("strict", "permissive", "audit")
    }
    assert set(levels["strict"].values()) == {"enforce"}
    assert levels["permissive"] == {
        "integrity": "enforce",
        "authenticity": "enforce",
        "authenticTimestamp": "log",
        "expiry": "log",
        "revocation": "log",
    }
    assert [v for k, v in levels["audit"].items() if v == "enforce"] == ["enforce"]
    assert levels["audit"]["integrity"] == "enforce"


def test_override_changes_one_validation() -> None:
    statement = _parse(
        _statement(signatureVerification={"level": "strict", "override": {"expiry": "log", "revocation": "skip"}})
    ).statements[0]
    assert statement.action("expiry") == "log"
    assert statement.action("revocation") == "skip"
    assert statement.action("authenticity") == "enforce"


@pytest.mark.parametrize(
    ("statements", "message"),
    [
        (
            [_statement(signatureVerification={"level": "strict", "override": {"integrity": "log"}})],
            "cannot be overridden",
        ),
        ([_statement(signatureVerification={"level": "strict", "override": {"expiry": "skip"}})], "expiry may be"),
        ([_statement(signatureVerification={"level": "skip"})], "skip level cannot apply to the global scope"),
        ([_statement(signatureVerification={"level": "lenient"})], "is not strict, permissive, audit or skip"),
        ([_statement("a"), _statement("b")], "only one statement may use the global scope"),
        ([_statement("a", ["r/x"]), _statement("b", ["r/x"])], "is in both"),
        ([_statement("a"), _statement("a", ["r/x"])], "names must be unique"),
        ([_statement(scopes=["*", "r/x"])], "must stand alone"),
        ([_statement(scopes=["r/*"])], "cannot hold `*`"),
        ([_statement(scopes=[])], "at least one scope"),
        ([_statement(trustStores=["x509:acme"])], "is not ca:, signingAuthority: or tsa:"),
        ([_statement(trustedIdentities=["*", "x509.subject: C=US, ST=WA, O=acme"])], "`*` must be the only"),
        ([_statement(trustedIdentities=["x509.subject: C=US, O=acme"])], "lacks ST"),
        ([_statement(trustedIdentities=["CN=acme"])], "neither `*` nor `x509.subject"),
        (
            [
                _statement(
                    trustedIdentities=[
                        "x509.subject: C=US, ST=WA, O=wabbit, OU=org1",
                        "x509.subject: C=US, ST=WA, O=wabbit",
                    ]
                )
            ],
            "overlap",
        ),
    ],
)
def test_policies_the_spec_does_not_allow(statements: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(InvalidPolicy, match=re.escape(message)):
        _parse(*statements)


def test_a_version_other_than_1_0_is_refused() -> None:
    with pytest.raises(InvalidPolicy, match="is not 1.0"):
        TrustPolicy.parse(json.dumps({"version": "2.0", "trustPolicies": [_statement()]}))


def test_selection_prefers_the_exact_scope_then_the_global() -> None:
    policy = _parse(
        _statement("exact", ["registry.acme-rockets.io/software/net-monitor"]),
        _statement(
            "unsigned",
            ["registry.wabbit-networks.io/software/unsigned/net-utils"],
            signatureVerification={"level": "skip"},
        ),
        _statement("global"),
    )
    assert policy.select("registry.acme-rockets.io/software/net-monitor").name == "exact"  # type: ignore[union-attr]
    assert policy.select("registry.wabbit-networks.io/software/unsigned/net-utils").skips  # type: ignore[union-attr]
    assert policy.select("registry.acme-rockets.io/software/net-logger").name == "global"  # type: ignore[union-attr]
    # No reference expansion: a short name is not the fully qualified one.
    assert _parse(_statement("exact", ["docker.io/library/registry"])).select("registry") is None


def test_dn_parsing_with_escapes_and_aliases() -> None:
    dn = DistinguishedName.parse(r" C=US, S=WA , O=acme\, inc., OU=a\;b, CN=\ padded\ , L=back\\slash")
    assert dn.rdns == (
        ("C", "US"),
        ("ST", "WA"),
        ("O", "acme, inc."),
        ("OU", "a;b"),
        ("CN", " padded "),
        ("L", "back\\slash"),
    )
    with pytest.raises(InvalidPolicy):
        DistinguishedName.parse("C=US, nonsense")


def test_dn_matching_is_a_subset_of_the_subject() -> None:
    subject = DistinguishedName.parse("C=US, ST=WA, L=Seattle, O=acme-rockets.io, OU=Finance, CN=SecureBuilder")
    assert DistinguishedName.parse("C=US, ST=WA, O=acme-rockets.io").matches(subject)
    assert DistinguishedName.parse("CN=SecureBuilder, O=acme-rockets.io, ST=WA, C=US").matches(subject)
    assert not DistinguishedName.parse("C=US, ST=WA, O=acme-rockets.io, OU=Security").matches(subject)
    assert not DistinguishedName.parse("C=US, ST=WA, O=acme-rockets.IO").matches(subject)


def test_dn_overlap() -> None:
    one = DistinguishedName.parse("C=US, ST=WA, O=wabbit, OU=org1")
    assert one.overlaps(DistinguishedName.parse("C=US, ST=WA, O=wabbit"))
    assert not one.overlaps(DistinguishedName.parse("C=US, ST=WA, O=wabbit, OU=org2"))
