"""Domain errors and their RFC 9457 ``application/problem+json`` form.

Every error that leaves the API has a stable ``type``, a human ``title`` and ``detail`` and never a
stack trace, SQL or personal data. Services raise these; handlers only render them.
"""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "/problems/"
PROBLEM_JSON = "application/problem+json"


class RempartError(Exception):
    """Base of every error a user may see. ``detail`` must never carry personal data."""

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str | None = None, *, extra: dict[str, Any] | None = None) -> None:
        self.detail = detail or self.title
        self.extra = extra or {}
        super().__init__(self.detail)

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers that say the same as the body to generic clients (``Retry-After``)."""
        retry_after = self.extra.get("retry_after")
        return {"Retry-After": str(int(retry_after))} if isinstance(retry_after, int | float) else {}

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status, "detail": self.detail}
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class ValidationFailed(RempartError):
    status = 422
    slug = "validation-failed"
    title = "The request is not valid"


class NotFound(RempartError):
    """Both "missing" and "forbidden" for tenant-owned objects: nobody can probe what exists."""

    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(RempartError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class Unauthenticated(RempartError):
    """Every 401 says how to authenticate (RFC 9110, section 11.6.1): practice software with a
    DPoP-bound token (RFC 9449, section 7.1). People sign in with a passkey in the portal, for which
    HTTP has no scheme; the problem's detail tells them."""

    status = 401
    slug = "unauthenticated"
    title = "Authentication required"

    @property
    def headers(self) -> dict[str, str]:
        return {**super().headers, "WWW-Authenticate": self.challenge()}

    def challenge(self) -> str:
        return "DPoP"


class Forbidden(RempartError):
    status = 403
    slug = "forbidden"
    title = "Not allowed"


class ServiceUnavailable(RempartError):
    status = 503
    slug = "service-unavailable"
    title = "Service unavailable"


class ImportFileError(RempartError):
    """A members file that cannot be read at all: wrong format, empty, truncated."""

    status = 422
    slug = "import-file-unreadable"
    title = "The file cannot be imported"


class KeyUnavailable(RempartError):
    status = 500
    slug = "key-unavailable"
    title = "Encryption key unavailable"
