"""Each ecosystem's version order, on orderings its own tools give."""

from __future__ import annotations

import pytest

from portside.scan.versions import UnreadableVersion, compare, normalise_go, sort_key

# (ecosystem, lower, higher): lower sorts strictly before higher.
ORDERED = [
    ("Debian", "2.0", "1:1.0"),  # an epoch outranks everything after it
    ("Debian", "1.0~rc1", "1.0"),  # ~ sorts before the empty string
    ("Debian", "1.0~rc1-1", "1.0~rc2-1"),
    ("Debian", "2.36-9", "2.36-9+deb12u1"),
    ("Debian", "2.36-9+deb12u4", "2.36-9+deb12u14"),  # numerically, not as text
    ("Debian", "252.39-1~deb12u2", "252.39-1"),  # a backport sorts before the release it backs
    ("Debian", "1:1.2.13.dfsg-1", "1:1.3.dfsg-2"),
    ("Ubuntu", "2.35-0ubuntu3.1", "2.35-0ubuntu3.6"),
    ("Alpine", "1.2.13-r5", "1.2.13-r15"),  # -r15 after -r5
    ("Alpine", "3.1.0-r4", "3.1.1-r0"),
    ("Alpine", "1.36.0_rc1-r0", "1.36.0-r0"),
    ("Red Hat", "2.0-1", "1:1.0-1"),
    ("Red Hat", "1.0-1.el8", "1.0-2.el8"),
    ("PyPI", "5.2b1", "5.3"),  # pre-releases before releases
    ("PyPI", "1.0.dev1", "1.0a1"),
    ("PyPI", "2.0.0", "2.0.post1"),
    ("PyPI", "2.0", "1!0.1"),  # epoch
    ("npm", "1.0.0-rc.1", "1.0.0"),
    ("npm", "1.0.0-alpha", "1.0.0-alpha.1"),
    ("npm", "1.0.0-beta.2", "1.0.0-beta.11"),
    ("npm", "4.17.15", "4.17.21"),
    ("Go", "1.20.0-0", "1.20.0"),  # stdlib ranges' pre-release lower bounds
    ("Go", "1.19.8", "1.20.0-0"),
    ("Go", "v0.0.0-20220127200216-cd36cc0744dd", "v0.7.0"),  # a pseudo-version before the release
    ("Go", "0.7.0", "0.17.0"),
    ("Maven", "1.0-SNAPSHOT", "1.0"),
    ("Maven", "1.0-alpha-1", "1.0-beta-1"),
    ("Maven", "2.9", "2.10"),
    ("crates.io", "0.9.9", "0.10.0"),
    ("crates.io", "1.0.0-alpha.1", "1.0.0"),
    ("crates.io", "0.11.0+wasi-snapshot-preview1", "0.11.1"),  # build metadata, as wasi's releases carry
    ("SEMVER", "1.2.3-0", "1.2.3"),
]


@pytest.mark.parametrize(("ecosystem", "lower", "higher"), ORDERED)
def test_order(ecosystem: str, lower: str, higher: str) -> None:
    assert compare(ecosystem, lower, higher) == -1
    assert compare(ecosystem, higher, lower) == 1


@pytest.mark.parametrize(
    ("ecosystem", "a", "b"),
    [("PyPI", "3.2", "3.2.0"), ("Go", "go1.19.8", "1.19.8"), ("Go", "v0.7.0", "0.7.0"), ("Debian", "0:1.0", "1.0")],
)
def test_equal(ecosystem: str, a: str, b: str) -> None:
    assert compare(ecosystem, a, b) == 0


def test_release_suffix_of_an_osv_ecosystem_is_ignored() -> None:
    assert compare("Debian:12", "2.36-9", "2.36-9+deb12u1") == -1


@pytest.mark.parametrize(
    ("ecosystem", "text"),
    [("Debian", ""), ("PyPI", "not a version"), ("npm", "one.two.three"), ("Alpine", "abc"), ("Go", "")],
)
def test_unreadable_versions_raise_a_named_error(ecosystem: str, text: str) -> None:
    with pytest.raises(UnreadableVersion, match=ecosystem):
        sort_key(ecosystem, text)


def test_unknown_ecosystem() -> None:
    with pytest.raises(UnreadableVersion, match="no version order"):
        compare("Hackage", "1.0", "2.0")


def test_go_toolchain_names() -> None:
    assert normalise_go("go1.21.0") == "1.21.0"
    assert normalise_go("v1.2.3") == "1.2.3"
