"""Manifest references: what a push may name, and what a read or delete of anything else answers."""

import pytest

from portside.errors import DigestInvalid, ManifestInvalid, ManifestUnknown
from portside.oci.digest import Digest
from portside.registry.manifests import parse_reference, read_reference

SHA = "sha256:" + "a" * 64
NEITHER = [".INVALID_MANIFEST_NAME", "-lead", "t" * 129, "a+b", "²", "sha256:abc", "md5:" + "a" * 32, ":"]


@pytest.mark.parametrize("parse", [parse_reference, read_reference])
def test_tags_and_digests(parse) -> None:
    assert parse("v1.0_rc-2") == "v1.0_rc-2"
    assert parse(SHA) == Digest.parse(SHA)


@pytest.mark.parametrize("text", NEITHER)
def test_a_push_to_neither_is_invalid(text: str) -> None:
    with pytest.raises((ManifestInvalid, DigestInvalid)):
        parse_reference(text)


@pytest.mark.parametrize("text", NEITHER)
def test_a_read_of_neither_names_no_manifest(text: str) -> None:
    with pytest.raises(ManifestUnknown) as raised:
        read_reference(text)
    assert raised.value.status == 404 and raised.value.detail == {"reference": text}
