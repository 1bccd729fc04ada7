"""What can go wrong talking to a scanner adapter, as one small tree:

AdapterError
├── AdapterUnreachable     the connection failed or timed out
├── AdapterProtocolError   the adapter answered something the API does not allow
├── AdapterRejected        the adapter answered with an error status (and its message)
│   └── ScanNotFound       404: the adapter knows no such scan request
└── ScanTimedOut           the report was still being generated when the wait ran out

and, on the serving side, `RequestRefused`: what Portside's own adapter API refuses.
"""

from __future__ import annotations

__all__ = [
    "AdapterError",
    "AdapterProtocolError",
    "AdapterRejected",
    "AdapterUnreachable",
    "RequestRefused",
    "ScanNotFound",
    "ScanTimedOut",
]


class AdapterError(Exception):
    """Anything that kept a scanner adapter from answering as its API says."""


class AdapterUnreachable(AdapterError):
    pass


class AdapterProtocolError(AdapterError):
    pass


class AdapterRejected(AdapterError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"scanner adapter answered {status}: {message}")
        self.status = status
        self.message = message


class ScanNotFound(AdapterRejected):
    pass


class ScanTimedOut(AdapterError):
    def __init__(self, scan_id: str, waited: float) -> None:
        super().__init__(f"scan {scan_id} had no report after {waited:.0f}s")
        self.scan_id = scan_id
        self.waited = waited


# The serving side: Portside as an adapter refuses what the API lets it refuse, each with
# the status the API names for it.


class RequestRefused(Exception):
    """A request Portside's adapter API refuses: `status` and the ErrorResponse's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
