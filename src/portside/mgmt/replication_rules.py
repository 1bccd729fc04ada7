"""What a replication policy selects and where it puts it, as Harbor defines both.

Filters (Harbor's ReplicationFilter): `name` a doublestar pattern on the repository's full
name (`library/**`, `{app,web}/*`); `tag` a doublestar pattern on tags with `decoration`
`matches` (the default) or `excludes`; `resource` `image` (images and indexes of them) or
`artifact` (anything); `label` is refused while Portside has no labels, rather than
silently matching nothing.

The destination name (`destination`), on a source repository `a/b/c/img` with namespace `n`:

    replace_count -1 (legacy)  n/img        (with no namespace: a/b/c/img, unchanged)
    replace_count  0           n/a/b/c/img  (the namespace prefixed)
    replace_count  N           the first N components replaced by n: 1 → n/b/c/img, 3 → n/img
    replace_count  4           refused: nothing of the name would be left
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from wcmatch import glob

from portside.errors import BadRequest
from portside.meta.replication import Filter

__all__ = [
    "FILTER_TYPES",
    "IMAGE_CONFIGS",
    "check_filters",
    "config_media_type",
    "destination",
    "has_tag_filter",
    "keeps_kind",
    "keeps_repository",
    "kept_tags",
]

FILTER_TYPES = ("name", "tag", "label", "resource")
_FLAGS = glob.GLOBSTAR | glob.BRACE | glob.DOTMATCH
IMAGE_CONFIGS = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)


def destination(repository: str, namespace: str, replace_count: int) -> str:
    """The destination repository of `repository` under Harbor's rule (module docstring)."""
    namespace = namespace.strip("/")
    if replace_count < -1:
        raise BadRequest("dest_namespace_replace_count must be -1 or more")
    if not namespace:
        return repository
    components = repository.split("/")
    if replace_count == -1:
        return f"{namespace}/{components[-1]}"
    if replace_count >= len(components):
        raise BadRequest(
            f"dest_namespace_replace_count {replace_count} replaces every component of {repository!r}: "
            "at most one less than its components"
        )
    return "/".join([namespace, *components[replace_count:]])


def check_filters(filters: Sequence[Filter]) -> tuple[Filter, ...]:
    """The filters, normalised, or BadRequest."""
    checked: list[Filter] = []
    for f in filters:
        if f.type not in FILTER_TYPES:
            raise BadRequest(f"unknown filter type {f.type!r}: one of {', '.join(FILTER_TYPES)}")
        if f.type == "label":
            raise BadRequest("label filters are not supported: Portside has no labels yet")
        if f.decoration and f.type not in ("tag", "label"):
            raise BadRequest(f"only tag and label filters take a decoration, not {f.type}")
        decoration = f.decoration or ("matches" if f.type == "tag" else "")
        if decoration not in ("", "matches", "excludes"):
            raise BadRequest(f"decoration must be matches or excludes, not {f.decoration!r}")
        if not isinstance(f.value, str):
            raise BadRequest(f"a {f.type} filter's value is a string")
        if f.type == "resource" and f.value not in ("image", "artifact"):
            raise BadRequest("a resource filter is image or artifact")
        if sum(1 for c in checked if c.type == f.type) and f.type != "tag":
            raise BadRequest(f"at most one {f.type} filter")
        checked.append(Filter(f.type, f.value, decoration))
    return tuple(checked)


def keeps_repository(filters: Sequence[Filter], repository: str) -> bool:
    return all(_matches(str(f.value), repository) for f in filters if f.type == "name" and f.value)


def kept_tags(filters: Sequence[Filter], tags: Sequence[str]) -> list[str]:
    """The tags every tag filter admits."""
    kept = list(tags)
    for f in filters:
        if f.type != "tag" or not f.value:
            continue
        pattern, excludes = str(f.value), f.decoration == "excludes"
        kept = [tag for tag in kept if _matches(pattern, tag) != excludes]
    return kept


def has_tag_filter(filters: Sequence[Filter]) -> bool:
    return any(f.type == "tag" and f.value for f in filters)


def keeps_kind(filters: Sequence[Filter], media_type: str, config_media_type: str | None) -> bool:
    """Whether the resource filter keeps a manifest of this type (an index counts as an
    image: what it lists is)."""
    wanted = next((str(f.value) for f in filters if f.type == "resource"), "artifact")
    if wanted == "artifact":
        return True
    if "index" in media_type or "manifest.list" in media_type:
        return True
    return config_media_type in IMAGE_CONFIGS


def _matches(pattern: str, name: str) -> bool:
    return glob.globmatch(name, pattern, flags=_FLAGS)


def config_media_type(body: bytes) -> str | None:
    """The media type of a manifest's config (None: an index, or not a manifest)."""
    try:
        config = json.loads(body).get("config")
    except (ValueError, AttributeError):
        return None
    found = config.get("mediaType") if isinstance(config, dict) else None
    return found if isinstance(found, str) else None
