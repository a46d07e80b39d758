"""Build the auth handler an integration's `AuthConfig` asks for."""

from __future__ import annotations

from typing import Any

from adaptor.auth_handlers.base import AuthConfigurationError, BaseAuthHandler, UnsupportedAuthType
from adaptor.auth_handlers.custom import CustomHandlerRegistry
from adaptor.auth_handlers.jwt_bearer import JWTHandler
from adaptor.auth_handlers.oauth2 import OAuth2Handler
from adaptor.auth_handlers.simple import (
    APIKeyHandler,
    BasicAuthHandler,
    BearerTokenHandler,
    NoAuthHandler,
)
from adaptor.auth_handlers.tokens import AuthContext
from adaptor.domain import MASK, AuthConfig, AuthType

__all__ = ["create_auth_handler"]


def _credential(auth_config: AuthConfig, name: str) -> str:
    value: Any = auth_config.credentials.get(name)
    if value is None or value == "":
        raise AuthConfigurationError(
            f"auth_config.credentials.{name} is required for {auth_config.type.value} auth"
        )
    if value == MASK:
        raise AuthConfigurationError(
            f"auth_config.credentials.{name} is the mask {MASK!r}, not the stored secret"
        )
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise AuthConfigurationError(f"auth_config.credentials.{name} must be a string")
    return str(value)


def create_auth_handler(
    auth_config: AuthConfig, context: AuthContext | None = None
) -> BaseAuthHandler:
    """The handler for `auth_config`, with its (decrypted) credentials.

    `context` (bound to the integration with `AuthContext.for_integration`) gives OAuth2 its
    transport and token store, and `custom` its registry; the static types need none. Raises
    `AuthConfigurationError` when a credential is missing or unusable, and `UnsupportedAuthType`
    for a type that needs a context when none is given.
    """
    match auth_config.type:
        case AuthType.NONE:
            return NoAuthHandler()
        case AuthType.API_KEY:
            return APIKeyHandler(
                _credential(auth_config, "api_key"),
                header=auth_config.api_key_header,
                param=auth_config.api_key_param,
            )
        case AuthType.BASIC_AUTH:
            return BasicAuthHandler(
                _credential(auth_config, "username"), _credential(auth_config, "password")
            )
        case AuthType.BEARER_TOKEN:
            return BearerTokenHandler(_credential(auth_config, "token"))
        case AuthType.JWT:
            return JWTHandler(auth_config, context.clock) if context else JWTHandler(auth_config)
        case AuthType.OAUTH2 if context is not None:
            return OAuth2Handler(auth_config, context)
        case AuthType.CUSTOM if context is not None:
            registry = context.custom_handlers or CustomHandlerRegistry()
            if not auth_config.custom_handler:
                raise AuthConfigurationError(
                    "auth_config.custom_handler is required for custom auth"
                )
            return registry.create(auth_config.custom_handler, auth_config, context)
        case _:
            raise UnsupportedAuthType(auth_config.type.value)
