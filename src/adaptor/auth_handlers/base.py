"""The auth handler interface: decorate a prepared request, refresh when the upstream says no.

Handlers only touch the request (headers, query); caching, encryption and single-flight refresh
of tokens belong to the token store that OAuth2/JWT handlers are built on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from adaptor.domain import ErrorCode
from adaptor.protocols.errors import UpstreamError
from adaptor.protocols.http import PreparedRequest

__all__ = ["AuthConfigurationError", "BaseAuthHandler", "UnsupportedAuthType"]


class AuthConfigurationError(UpstreamError):
    """The integration's auth configuration cannot be used (a credential is missing or bad)."""

    code = ErrorCode.AUTH_FAILED


class UnsupportedAuthType(AuthConfigurationError):
    """No handler exists for this `auth_config.type`."""

    def __init__(self, auth_type: str) -> None:
        super().__init__(
            f"auth type {auth_type!r} is not supported: no auth handler is available for it "
            "(supported: none, api_key, basic_auth, bearer_token)"
        )
        self.auth_type = auth_type


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

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
