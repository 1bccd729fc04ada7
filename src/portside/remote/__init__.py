"""Talking to another registry over the Distribution API: a client for one registry, used by
the scanner adapter to pull what it was asked to scan (and, later, by proxying and
replication). Below `portside.scan` in the layers; it knows only `portside.oci`."""

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
