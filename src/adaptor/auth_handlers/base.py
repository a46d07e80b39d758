"""The auth handler interface: decorate a prepared request, refresh when the upstream says no.

Handlers only touch the request (headers, query); caching, encryption and single-flight refresh
of tokens belong to the token store that OAuth2/JWT handlers are built on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from adaptor.domain import ErrorCode
from adaptor.protocols.errors import UpstreamError
from adaptor.protocols.http import PreparedRequest

__all__ = [
    "AuthConfigurationError",
    "BaseAuthHandler",
    "NeedsAuthorization",
    "NeedsReauthorization",
    "TokenEndpointError",
    "UnsupportedAuthType",
]


class AuthConfigurationError(UpstreamError):
    """The integration's auth configuration cannot be used (a credential is missing or bad)."""

    code = ErrorCode.AUTH_FAILED


class UnsupportedAuthType(AuthConfigurationError):
    """No handler exists for this `auth_config.type`."""

    def __init__(self, auth_type: str) -> None:
        super().__init__(
            f"auth type {auth_type!r} is not supported: no auth handler is available for it "
            "(supported: none, api_key, basic_auth, bearer_token, oauth2, jwt, custom)"
        )
        self.auth_type = auth_type


class NeedsAuthorization(AuthConfigurationError):
    """An authorization-code connection nobody has authorised yet."""


class NeedsReauthorization(AuthConfigurationError):
    """The provider refused the stored refresh token: a person must connect again."""


class TokenEndpointError(AuthConfigurationError):
    """The token endpoint could not be reached, was too slow, or refused the request.

    `status_code` is the token endpoint's HTTP status when it answered; it is kept out of the
    execution's `status_code`, which is the upstream's."""

    def __init__(self, message: str, *, endpoint_status: int | None = None) -> None:
        super().__init__(message)
        self.endpoint_status = endpoint_status

    def details(self) -> dict[str, Any]:
        if self.endpoint_status is None:
            return {}
        return {"token_endpoint_status": self.endpoint_status}


class BaseAuthHandler(ABC):
    """Adds credentials to a `PreparedRequest` and knows how to refresh them.

    `apply` is called on every attempt with a fresh copy of the request. After an upstream
    401/403 the caller awaits `refresh()` once and retries once if it returned True. `secrets()`
    lists the values to redact from messages, traces and logs. `repr` never shows a secret.
    """

    @abstractmethod
    async def apply(self, request: PreparedRequest) -> None:
        """Add credentials to `request` (headers, query), marking what they fill as sensitive."""

    async def refresh(self) -> bool:
        """Obtain new credentials after a refusal; True when retrying makes sense."""
        return False

    def secrets(self) -> list[str]:
        """Values that must never appear in a message, trace or log."""
        return []

    inspects_responses = False
    """Whether `response_expired` must see successful answers (it costs a parse)."""

    def response_expired(self, data: Any) -> bool:
        """Whether a successful answer's body says the credentials expired (then it is
        treated as a 401: one refresh and one retry)."""
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
