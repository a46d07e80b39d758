"""Protocol adapters and the HTTP transport they share; no web framework, storage or settings."""

from adaptor.protocols.base import BaseIntegration
from adaptor.protocols.errors import (
    BlockedDestination,
    InvalidResponse,
    MalformedResponse,
    NetworkError,
    RateLimitedError,
    RequestBuildError,
    ResponseTooLarge,
    TooManyRedirects,
    TransportError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeout,
    safe_url,
)
from adaptor.protocols.http import (
    DEFAULT_MAX_RESPONSE_BYTES,
    AiohttpTransport,
    HttpTransport,
    PreparedRequest,
    RawResponse,
)
from adaptor.protocols.rest import (
    DEFAULT_USER_AGENT,
    RESTIntegration,
    RESTRequestBuilder,
    RESTResponseParser,
)

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_USER_AGENT",
    "AiohttpTransport",
    "BaseIntegration",
    "BlockedDestination",
    "HttpTransport",
    "InvalidResponse",
    "MalformedResponse",
    "NetworkError",
    "PreparedRequest",
    "RESTIntegration",
    "RESTRequestBuilder",
    "RESTResponseParser",
    "RateLimitedError",
    "RawResponse",
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
