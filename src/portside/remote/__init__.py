"""Talking to another registry over the Distribution API: a client for one registry
(`client`), used by the scanner adapter to pull what it was asked to scan and by `portside
sign`, and its push side (`transfer`); `referrers` adds OCI 1.1 referrers with the spec's
fallback tag; `adapters` speak each registry type. The copy engine (`copy`) that `portside
copy`, `portside sync` and replication share works over endpoints (`endpoints`: a registry;
`layout`: an OCI layout directory), with a journal of open uploads (`journal`). Below
`portside.scan` in the layers; it knows only `portside.oci`."""

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
