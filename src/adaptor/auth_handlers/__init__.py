"""Auth handlers: add credentials to prepared requests and refresh them when refused."""

from adaptor.auth_handlers.base import (
    AuthConfigurationError,
    BaseAuthHandler,
    NeedsAuthorization,
    NeedsReauthorization,
    TokenEndpointError,
    UnsupportedAuthType,
)
from adaptor.auth_handlers.custom import ENTRY_POINT_GROUP, CustomHandlerRegistry
from adaptor.auth_handlers.factory import create_auth_handler
from adaptor.auth_handlers.jwt_bearer import JWTHandler
from adaptor.auth_handlers.oauth2 import OAuth2Handler, TokenEndpoint, authorization_request
from adaptor.auth_handlers.sigv4 import AWSSigV4Handler
from adaptor.auth_handlers.simple import (
    DEFAULT_API_KEY_HEADER,
    APIKeyHandler,
    BasicAuthHandler,
    BearerTokenHandler,
    NoAuthHandler,
)
from adaptor.auth_handlers.tokens import (
    AuthContext,
    AuthStatus,
    MemoryTokenStore,
    TokenSet,
    TokenStore,
    TokenStoreFactory,
)

__all__ = [
    "DEFAULT_API_KEY_HEADER",
    "ENTRY_POINT_GROUP",
    "APIKeyHandler",
    "AWSSigV4Handler",
    "AuthConfigurationError",
    "AuthContext",
    "AuthStatus",
    "BaseAuthHandler",
    "BasicAuthHandler",
    "BearerTokenHandler",
    "CustomHandlerRegistry",
    "JWTHandler",
    "MemoryTokenStore",
    "NeedsAuthorization",
    "NeedsReauthorization",
    "NoAuthHandler",
    "OAuth2Handler",
    "TokenEndpoint",
    "TokenEndpointError",
    "TokenSet",
    "TokenStore",
    "TokenStoreFactory",
    "UnsupportedAuthType",
    "authorization_request",
    "create_auth_handler",
]
