"""Version order per ecosystem, as each ecosystem's own tools order them (`univers`).

dpkg for Debian and Ubuntu, apk for Alpine, rpm for rpm distributions, PEP 440 for PyPI,
semver 2.0 for npm, Go module versions (`v1.2.3`, pseudo-versions; the standard
library's `go1.19.8` is written `1.19.8`), Maven's ComparableVersion for Maven. A version
an ecosystem's rules cannot read raises `UnreadableVersion`: the matcher skips that
package's comparison and says so rather than guess an order.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from univers.versions import (
    AlpineLinuxVersion,
    DebianVersion,
    GolangVersion,
    InvalidVersion,
    MavenVersion,
    PypiVersion,
    RpmVersion,
    RubygemsVersion,
    SemverVersion,
    Version,
)

__all__ = ["UnreadableVersion", "compare", "comparator", "normalise_go", "sort_key", "SEMVER"]

SEMVER = "SEMVER"  # an OSV range type: semver order whatever the ecosystem


class UnreadableVersion(ValueError):
    """A version the ecosystem's rules cannot read."""


def normalise_go(text: str) -> str:
    """Go versions as OSV writes them: no `v`, and the toolchain's `go1.21.0` as `1.21.0`."""
    text = text.strip()
    if text.startswith("go"):
        text = text[2:]
    return text[1:] if text.startswith("v") else text


def _semver(text: str) -> Version:
    return SemverVersion(text.strip().removeprefix("v"))


def _go(text: str) -> Version:
    return GolangVersion("v" + normalise_go(text))


_COMPARATORS: dict[str, Callable[[str], Version]] = {
    "Debian": DebianVersion,
    "Ubuntu": DebianVersion,
    "Alpine": AlpineLinuxVersion,
    "Red Hat": RpmVersion,
    "PyPI": PypiVersion,
    "npm": _semver,
    "crates.io": _semver,
    "Go": _go,
    "Maven": MavenVersion,
    "RubyGems": RubygemsVersion,
    SEMVER: _semver,
}


def comparator(ecosystem: str) -> Callable[[str], Version] | None:
    """The reader of `ecosystem`'s versions (`Debian`, `Debian:12`, `SEMVER`, ...), or None
    for an ecosystem whose order is not known here."""
    return _COMPARATORS.get(ecosystem.split(":", 1)[0])


@functools.lru_cache(maxsize=65536)
def sort_key(ecosystem: str, text: str) -> Any:
    """`text` as an ordered value of `ecosystem`; `UnreadableVersion` if it is none."""
    read = comparator(ecosystem)
    if read is None:
        raise UnreadableVersion(f"no version order is known for ecosystem {ecosystem!r}")
    try:
        return read(text)
    except (InvalidVersion, ValueError, TypeError) as error:
        raise UnreadableVersion(f"{ecosystem} version {text!r}: {error}") from None


def compare(ecosystem: str, a: str, b: str) -> int:
    """-1, 0 or 1 as `a` sorts before, with or after `b` under `ecosystem`'s rules."""
    left, right = sort_key(ecosystem, a), sort_key(ecosystem, b)
    return -1 if left < right else (1 if left > right else 0)
