"""Every error either API can return: code, HTTP status, message.

Services raise these anywhere; one renderer per API surface writes the body
(`{"errors": [{"code", "message", "detail"}]}` for `/v2`). Nothing else lives here.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "RegistryError",
    "PolicyViolation",
    "BlobUnknown",
    "BlobUploadInvalid",
    "BlobUploadUnknown",
    "DigestInvalid",
    "ManifestBlobUnknown",
    "ManifestInvalid",
    "ManifestUnknown",
    "NameInvalid",
    "NameUnknown",
    "SizeInvalid",
    "ManifestTooLarge",
    "BodyTooLarge",
    "BodyTimeout",
    "InsufficientStorage",
    "RangeInvalid",
    "Unauthorized",
    "Denied",
    "Unsupported",
    "TooManyRequests",
    "Unavailable",
    "PaginationInvalid",
    "NotFound",
    "Conflict",
    "BadRequest",
    "PreconditionFailed",
    "Forbidden",
]


class RegistryError(Exception):
    code: ClassVar[str] = "UNKNOWN"
    status: ClassVar[int] = 500
    message: ClassVar[str] = "unknown error"

    def __init__(self, message: str | None = None, detail: Any = None, headers: dict[str, str] | None = None):
        self.text = message or self.message
        self.detail = detail
        self.headers = headers or {}
        super().__init__(self.text)

    def body(self) -> dict[str, Any]:
        return {"errors": [{"code": self.code, "message": self.text, "detail": self.detail}]}


class BlobUnknown(RegistryError):
    code, status, message = "BLOB_UNKNOWN", 404, "blob unknown to registry"


class BlobUploadInvalid(RegistryError):
    code, status, message = "BLOB_UPLOAD_INVALID", 400, "blob upload invalid"


class BlobUploadUnknown(RegistryError):
    code, status, message = "BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry"


class DigestInvalid(RegistryError):
    code, status, message = "DIGEST_INVALID", 400, "provided digest did not match uploaded content"


class ManifestBlobUnknown(RegistryError):
    code, status, message = "MANIFEST_BLOB_UNKNOWN", 400, "manifest references a manifest or blob unknown to registry"


class ManifestInvalid(RegistryError):
    code, status, message = "MANIFEST_INVALID", 400, "manifest invalid"


class ManifestUnknown(RegistryError):
    code, status, message = "MANIFEST_UNKNOWN", 404, "manifest unknown to registry"


class NameInvalid(RegistryError):
    code, status, message = "NAME_INVALID", 400, "invalid repository name"


class NameUnknown(RegistryError):
    code, status, message = "NAME_UNKNOWN", 404, "repository name not known to registry"


class SizeInvalid(RegistryError):
    code, status, message = "SIZE_INVALID", 400, "provided length did not match content length"


class BodyTooLarge(SizeInvalid):
    """A request body over its limit (a form, JSON, a manifest): 413 with SIZE_INVALID."""

    status = 413
    message = "request body exceeds the size limit"


class ManifestTooLarge(BodyTooLarge):
    """The spec answers an oversized manifest with 413 and SIZE_INVALID."""

    message = "manifest exceeds the size limit"


class BodyTimeout(SizeInvalid):
    """A request body that stopped arriving: 408. What came is short of what the request
    was sent for, hence SIZE_INVALID."""

    status = 408
    message = "the request body stopped arriving"


class InsufficientStorage(BlobUploadInvalid):
    """The blob store is (nearly) full: 507 Insufficient Storage, whose message says how much
    is free and what the reserve is (docker and podman print it)."""

    status = 507
    message = "not enough free storage space for uploads"


class RangeInvalid(BlobUploadInvalid):
    """A chunk that does not start where the upload ends: 416, as the spec says."""

    status = 416
    message = "requested range not satisfiable"


class Unauthorized(RegistryError):
    code, status, message = "UNAUTHORIZED", 401, "authentication required"


class Denied(RegistryError):
    code, status, message = "DENIED", 403, "requested access to the resource is denied"


class Unsupported(RegistryError):
    code, status, message = "UNSUPPORTED", 405, "the operation is unsupported"


class TooManyRequests(RegistryError):
    code, status, message = "TOOMANYREQUESTS", 429, "too many requests"


class Unavailable(RegistryError):
    """A service the request needs (the shared Redis, say) did not answer in time."""

    code, status, message = "UNAVAILABLE", 503, "service temporarily unavailable"


class PaginationInvalid(Unsupported):
    """A bad `n`: the spec's UNSUPPORTED ("an invalid set of parameters"), as a 400."""

    status, message = 400, "invalid number of results requested"


# --- the management API (Harbor's codes); registry errors raised beneath it are rendered
# there by status, so both surfaces share these classes.


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


class PolicyViolation(RegistryError):
    """A pull its project's policy refuses (Harbor's code and status, which its clients show)."""

    code, status, message = "PROJECTPOLICYVIOLATION", 412, "the project's policy refuses this pull"
