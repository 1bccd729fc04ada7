"""Management API errors Harbor answers with; `/v2`'s own live in `portside.errors`.

The renderer maps every `RegistryError` to Harbor's code by HTTP status, so registry
errors raised underneath (a missing manifest, a denied delete) read the same way.
"""

from __future__ import annotations

from portside.errors import RegistryError

__all__ = ["NotFound", "Conflict", "BadRequest", "PreconditionFailed", "Forbidden"]


class NotFound(RegistryError):
    code, status, message = "NOT_FOUND", 404, "resource not found"


class Conflict(RegistryError):
    code, status, message = "CONFLICT", 409, "resource already exists"


class BadRequest(RegistryError):
    code, status, message = "BAD_REQUEST", 400, "bad request"


class PreconditionFailed(RegistryError):
    code, status, message = "PRECONDITION", 412, "precondition failed"


class Forbidden(RegistryError):
    code, status, message = "FORBIDDEN", 403, "forbidden"
