"""Licence texts as packages declare them, read as SPDX expressions where they are ones.

Package metadata says `MIT`, `mit`, `GPL-2.0+`, `Apache-2.0 OR MIT`, but also `BSD-like` or
`Public Domain`, which name no SPDX licence. Each text becomes a `LicenseTerm`: its SPDX
expression normalised (`GPL-2.0+` → `GPL-2.0-or-later`), or none, and then each format says
the unknown ones its own way (SPDX: a `LicenseRef-` with the text; CycloneDX: a named licence)."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from license_expression import get_spdx_licensing  # type: ignore[import-untyped]

__all__ = ["LicenseTerm", "license_ref", "read_licenses"]

_UNSAFE = re.compile(r"[^A-Za-z0-9.\-]+")


@dataclass(frozen=True, slots=True)
class LicenseTerm:
    text: str  # as the package declared it
    spdx: str | None  # the SPDX expression it is, normalised; None when it names no SPDX licence

    @property
    def is_single_id(self) -> bool:
        return self.spdx is not None and " " not in self.spdx


@functools.cache
def _licensing() -> Any:
    return get_spdx_licensing()


def _spdx_expression(text: str) -> str | None:
    try:
        info = _licensing().validate(text)
    except Exception:
        # license-expression raises on some malformed texts (`Apache License, Version 2.0`)
        # instead of reporting them; either way the text is no SPDX expression.
        return None
    if info.errors or not info.normalized_expression:
        return None
    return str(info.normalized_expression)


def read_licenses(texts: Iterable[str]) -> tuple[LicenseTerm, ...]:
    """One term per distinct, non-empty text, sorted by text (the SBOMs must be stable)."""
    distinct = sorted({text.strip() for text in texts if text.strip()})
    return tuple(LicenseTerm(text, _spdx_expression(text)) for text in distinct)


def license_ref(text: str) -> str:
    """`LicenseRef-<idstring>` for a text that is no SPDX licence: its safe characters, and a
    short hash when characters had to go, so `Public Domain` and `Public-Domain` stay apart."""
    safe = _UNSAFE.sub("-", text).strip("-")
    if safe != text or not safe:
        safe = f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:8]}".lstrip("-")
    return f"LicenseRef-{safe}"
