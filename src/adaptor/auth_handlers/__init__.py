"""Auth handlers: add credentials to prepared requests and refresh them when refused."""

from adaptor.auth_handlers.base import AuthConfigurationError, BaseAuthHandler, UnsupportedAuthType
from adaptor.auth_handlers.factory import create_auth_handler
from adaptor.auth_handlers.simple import (
    DEFAULT_API_KEY_HEADER,
    APIKeyHandler,
    BasicAuthHandler,
    BearerTokenHandler,
    NoAuthHandler,
)

__all__ = [
    "DEFAULT_API_KEY_HEADER",
    "APIKeyHandler",
    "AuthConfigurationError",
    "BaseAuthHandler",
    "BasicAuthHandler",
    "BearerTokenHandler",
    "NoAuthHandler",
    "UnsupportedAuthType",
    "create_auth_handler",
]
