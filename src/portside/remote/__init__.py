"""Talking to another registry over the Distribution API: a client for one registry, used by
the scanner adapter to pull what it was asked to scan and by `portside sign` (and, later, by
proxying and replication); `referrers` adds OCI 1.1 referrers with the spec's fallback tag.
Below `portside.scan` in the layers; it knows only `portside.oci`."""

from portside.remote.client import RemoteRegistry
from portside.remote.errors import (
    RemoteError,
    RemoteNotFound,
    RemoteProtocolError,
    RemoteUnauthorized,
    RemoteUnreachable,
)

__all__ = [
    "RemoteError",
    "RemoteNotFound",
    "RemoteProtocolError",
    "RemoteRegistry",
    "RemoteUnauthorized",
    "RemoteUnreachable",
]
