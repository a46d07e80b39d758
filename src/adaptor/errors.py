"""The service's error tree. Services raise these; one handler renders them as problem JSON.

AdaptorError                 500 unless a subclass says otherwise
├── BadRequest               400
├── Unauthorized             401  missing, unknown or revoked API key
├── Forbidden                403  a tenant key naming another tenant, a non-admin on admin routes
├── NotFound                 404  also another tenant's object
├── Conflict                 409  e.g. executing a disabled integration, duplicate id
├── PreconditionFailed       412  stale If-Match
├── PayloadTooLarge          413
├── ValidationFailed         422  carries every offending field in `errors`
└── ServiceUnavailable       503
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Loc = Sequence[str | int]


class AdaptorError(Exception):
    """Base of every error the service raises on purpose."""

    status_code: int = 500
    title: str = "Internal Server Error"

    def __init__(
        self,
        message: str,
        *,
        errors: Sequence[dict[str, Any]] | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errors = list(errors or [])
        if status_code is not None:
            self.status_code = status_code
        self.headers = headers or {}


class BadRequest(AdaptorError):
    status_code = 400
    title = "Bad Request"


class Unauthorized(AdaptorError):
    status_code = 401
    title = "Unauthorized"

    def __init__(self, message: str = "A valid API key is required") -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AdaptorError):
    status_code = 403
    title = "Forbidden"


class NotFound(AdaptorError):
    status_code = 404
    title = "Not Found"


class Conflict(AdaptorError):
    status_code = 409
    title = "Conflict"


class PreconditionFailed(AdaptorError):
    status_code = 412
    title = "Precondition Failed"


class PayloadTooLarge(AdaptorError):
    status_code = 413
    title = "Payload Too Large"


class ValidationFailed(AdaptorError):
    """422 naming every offending field: `errors` is `[{"loc": [...], "msg": "..."}]`."""

    status_code = 422
    title = "Unprocessable Content"

    @classmethod
    def of(
        cls, problems: Sequence[tuple[Loc, str]], message: str | None = None
    ) -> ValidationFailed:
        errors = [{"loc": list(loc), "msg": msg} for loc, msg in problems]
        summary = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return cls(message or f"Validation failed: {summary}", errors=errors)


class ServiceUnavailable(AdaptorError):
    status_code = 503
    title = "Service Unavailable"
