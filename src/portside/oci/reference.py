"""Repository name and tag grammar of the OCI Distribution Specification."""

from __future__ import annotations

import re

from portside.errors import ManifestInvalid, NameInvalid

__all__ = ["check_name", "check_tag", "is_name", "is_tag", "MAX_NAME_LENGTH"]

_NAME = re.compile(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
# Distribution's limit; the spec leaves room for registries to cap names, and clients expect 255.
MAX_NAME_LENGTH = 255


def check_name(name: str) -> str:
    if len(name) > MAX_NAME_LENGTH or not _NAME.match(name):
        raise NameInvalid(f"invalid repository name {name!r}", detail={"name": name})
    return name


def is_name(text: str) -> bool:
    return len(text) <= MAX_NAME_LENGTH and bool(_NAME.match(text))


def is_tag(text: str) -> bool:
    return bool(_TAG.match(text))


def check_tag(tag: str) -> str:
    if not _TAG.match(tag):
        raise ManifestInvalid(f"invalid tag {tag!r}", detail={"tag": tag})
    return tag
