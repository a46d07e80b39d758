"""Handlers for static credentials: none, API key, HTTP Basic, bearer token."""

from __future__ import annotations

import base64

from adaptor.auth_handlers.base import AuthConfigurationError, BaseAuthHandler
from adaptor.protocols.http import PreparedRequest

__all__ = [
    "DEFAULT_API_KEY_HEADER",
    "APIKeyHandler",
    "BasicAuthHandler",
    "BearerTokenHandler",
    "NoAuthHandler",
]

DEFAULT_API_KEY_HEADER = "X-API-Key"


def _require(value: str, what: str) -> str:
    if not value:
        raise AuthConfigurationError(f"{what} is empty")
    if any(char in value for char in "\r\n\x00"):
        raise AuthConfigurationError(f"{what} contains a line break or NUL character")
    return value


class NoAuthHandler(BaseAuthHandler):
    """Sends requests as they are."""

    async def apply(self, request: PreparedRequest) -> None:
        """Nothing to add."""


class APIKeyHandler(BaseAuthHandler):
    """Sends an API key in a header, a query parameter, or both.

    With neither `header` nor `param` given the key goes into `X-API-Key`.
    """

    def __init__(
        self, api_key: str, *, header: str | None = None, param: str | None = None
    ) -> None:
        self._api_key = _require(api_key, "credentials.api_key")
        if header is None and param is None:
            header = DEFAULT_API_KEY_HEADER
        self.header = _require(header, "api_key_header") if header is not None else None
        self.param = _require(param, "api_key_param") if param is not None else None

    async def apply(self, request: PreparedRequest) -> None:
        """Put the key where the integration said."""
        if self.header is not None:
            request.set_header(self.header, self._api_key)
            request.sensitive_headers.add(self.header.lower())
        if self.param is not None:
            request.params = [(key, value) for key, value in request.params if key != self.param]
            request.add_param(self.param, self._api_key)
            request.sensitive_params.add(self.param.lower())

    def secrets(self) -> list[str]:
        return [self._api_key]

    def __repr__(self) -> str:
        return f"APIKeyHandler(header={self.header!r}, param={self.param!r})"


class BasicAuthHandler(BaseAuthHandler):
    """HTTP Basic authentication (RFC 7617), credentials encoded as UTF-8."""

    def __init__(self, username: str, password: str) -> None:
        _require(username, "credentials.username")
        if ":" in username:
            raise AuthConfigurationError("credentials.username must not contain ':'")
        self.username = username
        self._password = _require(password, "credentials.password")
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._token = token

    async def apply(self, request: PreparedRequest) -> None:
        """Set `Authorization: Basic …`."""
        request.set_header("Authorization", f"Basic {self._token}")
        request.sensitive_headers.add("authorization")

    def secrets(self) -> list[str]:
        return [self._password, self._token]

    def __repr__(self) -> str:
        return f"BasicAuthHandler(username={self.username!r})"


class BearerTokenHandler(BaseAuthHandler):
    """A static bearer token in `Authorization: Bearer …`."""

    def __init__(self, token: str) -> None:
        self._token = _require(token, "credentials.token")

    async def apply(self, request: PreparedRequest) -> None:
        """Set `Authorization: Bearer …`."""
        request.set_header("Authorization", f"Bearer {self._token}")
        request.sensitive_headers.add("authorization")

    def secrets(self) -> list[str]:
        return [self._token]
