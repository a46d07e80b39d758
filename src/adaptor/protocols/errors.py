"""What can go wrong when an adapter calls an upstream system.

Every failure a protocol adapter reports is an `UpstreamError`; its `code` is the
`ExecutionResult.error.code` the execution pipeline answers with, and the class tells retry and
the circuit breaker what happened:

    UpstreamError                  base; code, status_code, retry_after
    ├── TransportError             network_error   no HTTP answer at all
    │   ├── UpstreamTimeout        timeout         the deadline passed
    │   └── NetworkError           network_error   DNS, refused, reset, TLS, disconnect
    ├── BlockedDestination         blocked_destination  private/loopback/link-local/bad scheme
    ├── RequestBuildError          mapping_error   the request could not be built from the input
    ├── InvalidResponse            upstream_error  the answer could not be read
    │   ├── MalformedResponse      upstream_error  e.g. bad JSON, XML with entities
    │   └── ResponseTooLarge       upstream_error  body over the configured cap
    ├── TooManyRedirects           upstream_error
    └── UpstreamStatusError        upstream_error  a non-2xx answer: status, headers, body, message
        ├── UpstreamAuthError      auth_failed     401/403 that a credential refresh did not fix
        └── RateLimitedError       rate_limited    429 (or 403 with an exhausted quota)

`adaptor.auth_handlers` adds `AuthConfigurationError` (auth_failed) and its child
`UnsupportedAuthType` under `UpstreamError`.

Messages never carry secrets: no credentials, no Authorization header, and no query string
(it may carry an API key). URLs in messages are reduced to scheme, host, port and path.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from adaptor.domain import ErrorCode, ErrorDetail

__all__ = [
    "BlockedDestination",
    "InvalidResponse",
    "MalformedResponse",
    "NetworkError",
    "RateLimitedError",
    "RequestBuildError",
    "ResponseTooLarge",
    "TooManyRedirects",
    "TransportError",
    "UpstreamAuthError",
    "UpstreamError",
    "UpstreamStatusError",
    "UpstreamTimeout",
    "safe_url",
]


def safe_url(url: str) -> str:
    """`url` without userinfo, query string and fragment, fit for messages and logs."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "<invalid url>"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class UpstreamError(Exception):
    """Base of every failure an adapter call reports.

    `code` is the execution error code; `status_code` the upstream HTTP status when there was
    one; `retry_after` the seconds the upstream asked us to wait, when it said.
    """

    code: ErrorCode = ErrorCode.UPSTREAM_ERROR

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after
        self.retries = 0
        """Retries made before this failure was final (set by the adapter)."""

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code.value!r})"

    def details(self) -> dict[str, Any]:
        """Extra, secret-free facts for `ErrorDetail.details`."""
        return {"status_code": self.status_code} if self.status_code is not None else {}

    def to_error_detail(self) -> ErrorDetail:
        """This failure as the `error` of an `ExecutionResult`."""
        return ErrorDetail(
            code=self.code,
            message=self.message,
            details=self.details() or None,
            retry_after=math.ceil(self.retry_after) if self.retry_after is not None else None,
        )


class TransportError(UpstreamError):
    """No HTTP answer was received."""

    code = ErrorCode.NETWORK_ERROR


class UpstreamTimeout(TransportError):
    """The upstream did not answer within the deadline."""

    code = ErrorCode.TIMEOUT


class NetworkError(TransportError):
    """The connection could not be made or broke: DNS, refused, reset, TLS, disconnect."""

    code = ErrorCode.NETWORK_ERROR


class BlockedDestination(UpstreamError):
    """The destination is not allowed: a non-public address or a non-http(s) scheme."""

    code = ErrorCode.BLOCKED_DESTINATION


class RequestBuildError(UpstreamError):
    """The request could not be built from the mapped input (missing path parameter, bad body)."""

    code = ErrorCode.MAPPING_ERROR


class InvalidResponse(UpstreamError):
    """The upstream answered, but the answer could not be read."""

    code = ErrorCode.UPSTREAM_ERROR


class MalformedResponse(InvalidResponse):
    """The body does not parse as its content type says (bad JSON, unsafe or broken XML)."""


class ResponseTooLarge(InvalidResponse):
    """The response body is larger than the transport accepts."""

    def __init__(self, message: str, *, limit_bytes: int) -> None:
        super().__init__(message)
        self.limit_bytes = limit_bytes

    def details(self) -> dict[str, Any]:
        return {"limit_bytes": self.limit_bytes}


class TooManyRedirects(UpstreamError):
    """The upstream redirected more often than the transport follows."""

    code = ErrorCode.UPSTREAM_ERROR


class UpstreamStatusError(UpstreamError):
    """The upstream answered with a non-2xx status.

    Carries the status, the response headers, the parsed body and the error message found in it
    (`upstream_message`), already stripped of any credential the request carried.
    """

    code = ErrorCode.UPSTREAM_ERROR

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        upstream_message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, retry_after=retry_after)
        self.headers = dict(headers or {})
        self.body = body
        self.upstream_message = upstream_message

    def details(self) -> dict[str, Any]:
        details = super().details()
        if self.upstream_message is not None:
            details["upstream_message"] = self.upstream_message
        return details


class UpstreamAuthError(UpstreamStatusError):
    """The upstream refused our credentials (401/403) and a refresh did not help."""

    code = ErrorCode.AUTH_FAILED


class RateLimitedError(UpstreamStatusError):
    """The upstream (or a limiter in front of it) said to slow down; see `retry_after`."""

    code = ErrorCode.RATE_LIMITED

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = 429,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        upstream_message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message,
            status_code=status_code,
            headers=headers,
            body=body,
            upstream_message=upstream_message,
            retry_after=retry_after,
        )
