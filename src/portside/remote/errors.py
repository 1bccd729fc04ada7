"""What can go wrong talking to another registry, in words its callers can act on."""

from __future__ import annotations

__all__ = ["RemoteError", "RemoteNotFound", "RemoteProtocolError", "RemoteUnauthorized", "RemoteUnreachable"]


class RemoteError(Exception):
    """Any failure talking to a remote registry."""


class RemoteUnreachable(RemoteError):
    """No answer: connection refused, DNS, TLS, timeout."""


class RemoteUnauthorized(RemoteError):
    """The registry (or its token service) refused the credentials given."""


class RemoteNotFound(RemoteError):
    """The repository, manifest or blob does not exist there."""


class RemoteProtocolError(RemoteError):
    """The registry answered, but not as the Distribution API says (a wrong digest, a
    malformed manifest or challenge, an unexpected status)."""
