"""What makes a project a proxy (pull-through cache) and tunes it: its metadata keys.

`registry_id` is set once, at creation, by a system administrator (Harbor's rule); no one
may set or change it through metadata afterwards. The others tune the cache, each with
Harbor's name where Harbor has one:

- `manifest_check_interval`: seconds a tag's digest, once confirmed upstream, is trusted
  before the upstream is asked again (0, the default: every pull by tag asks, as Harbor);
- `proxy_cache_local_on_not_found`: serve the cached copy of a tag the upstream no longer
  has ("true", the default);
- `max_upstream_conn`: requests to the upstream at once (0: no limit);
- `max_upstream_rps`: requests per second to the upstream (0: no limit; Portside's own).
"""

from __future__ import annotations

__all__ = ["CACHE_METADATA", "REGISTRY_ID", "check_cache_metadata"]

REGISTRY_ID = "registry_id"
CACHE_METADATA = {
    "manifest_check_interval": "a whole number of seconds",
    "proxy_cache_local_on_not_found": '"true" or "false"',
    "max_upstream_conn": "a whole number (0: no limit)",
    "max_upstream_rps": "a number of requests per second (0: no limit)",
}


def check_cache_metadata(key: str, value: str) -> str | None:
    """What is wrong with a value of one of `CACHE_METADATA` (None: nothing)."""
    if key not in CACHE_METADATA:
        return None
    if key == "proxy_cache_local_on_not_found":
        ok = value in ("true", "false")
    elif key == "max_upstream_rps":
        try:
            ok = 0 <= float(value) < 1e6
        except ValueError:
            ok = False
    else:
        ok = value.isdigit() and int(value) < 2**31
    return None if ok else f"metadata.{key} must be {CACHE_METADATA[key]}"
