"""The `jwt` auth type: each request carries a bearer JWT the service signs itself."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt

from adaptor.auth_handlers.base import AuthConfigurationError, BaseAuthHandler
from adaptor.domain import MASK, AuthConfig
from adaptor.protocols.http import PreparedRequest

__all__ = ["JWT_ALGORITHMS", "JWTHandler", "jwt_key_problem"]

JWT_ALGORITHMS = ("HS256", "RS256", "ES256")
DEFAULT_TTL_S = 300
MIN_HMAC_KEY_BYTES = 32
REUSE_MARGIN_S = 30
"""A cached token is re-signed once less than this (or a tenth of its lifetime) is left."""


def _algorithm(auth_config: AuthConfig) -> str:
    credentials = auth_config.credentials
    default = "RS256" if credentials.get("private_key") else "HS256"
    return str(credentials.get("algorithm") or default)


def _key(auth_config: AuthConfig, algorithm: str) -> tuple[str, Any]:
    """(credential name, signing key) for `algorithm`; raises AuthConfigurationError."""
    name = "secret" if algorithm == "HS256" else "private_key"
    value = auth_config.credentials.get(name)
    if value in (None, ""):
        raise AuthConfigurationError(
            f"auth_config.credentials.{name} is required for {algorithm} JWTs"
        )
    if value == MASK:
        raise AuthConfigurationError(
            f"auth_config.credentials.{name} is the mask {MASK!r}, not the stored secret"
        )
    if name == "secret":
        if len(str(value).encode()) < MIN_HMAC_KEY_BYTES:
            raise AuthConfigurationError(
                f"auth_config.credentials.secret must be at least {MIN_HMAC_KEY_BYTES} bytes "
                "for HS256 (RFC 7518 section 3.2)"
            )
        return name, str(value)
    try:
        key = jwt.get_algorithm_by_name(algorithm).prepare_key(str(value))
    except Exception:
        raise AuthConfigurationError(
            f"auth_config.credentials.private_key is not a PEM private key usable for {algorithm}"
        ) from None
    if not hasattr(key, "sign"):
        raise AuthConfigurationError(
            "auth_config.credentials.private_key is a public key; a private key is needed"
        )
    return name, key


def jwt_key_problem(auth_config: AuthConfig) -> tuple[str, str] | None:
    """(credential field, message) when a jwt configuration cannot sign, else None."""
    algorithm = _algorithm(auth_config)
    if algorithm not in JWT_ALGORITHMS:
        return "algorithm", f"must be one of {', '.join(JWT_ALGORITHMS)}"
    try:
        _key(auth_config, algorithm)
    except AuthConfigurationError as exc:
        field = "secret" if algorithm == "HS256" else "private_key"
        return field, exc.message.removeprefix(f"auth_config.credentials.{field} ")
    return None


class JWTHandler(BaseAuthHandler):
    """`Authorization: Bearer <jwt>` signed HS256 (`credentials.secret`) or RS256/ES256
    (`credentials.private_key`, PEM), with `credentials.claims` plus `iat` and `exp` from
    `credentials.ttl_seconds` (default 300). A token is reused until shortly before it expires.
    """

    def __init__(self, auth_config: AuthConfig, clock: Callable[[], float] = time.time) -> None:
        self.algorithm = _algorithm(auth_config)
        if self.algorithm not in JWT_ALGORITHMS:
            raise AuthConfigurationError(
                f"auth_config.credentials.algorithm must be one of {', '.join(JWT_ALGORITHMS)}"
            )
        self._key_name, self._key = _key(auth_config, self.algorithm)
        claims = auth_config.credentials.get("claims") or {}
        if not isinstance(claims, dict):
            raise AuthConfigurationError("auth_config.credentials.claims must be an object")
        self.claims: dict[str, Any] = dict(claims)
        try:
            self.ttl_s = int(auth_config.credentials.get("ttl_seconds") or DEFAULT_TTL_S)
        except (TypeError, ValueError):
            raise AuthConfigurationError(
                "auth_config.credentials.ttl_seconds must be a whole number"
            ) from None
        if self.ttl_s < 1:
            raise AuthConfigurationError("auth_config.credentials.ttl_seconds must be at least 1")
        self._secret = str(auth_config.credentials.get(self._key_name))
        self._clock = clock
        self._token: str | None = None
        self._renew_at = 0.0

    def __repr__(self) -> str:
        return f"JWTHandler(algorithm={self.algorithm!r}, ttl_s={self.ttl_s})"

    def token(self) -> str:
        """The current token, signed anew once it is close to expiry."""
        now = self._clock()
        if self._token is None or now >= self._renew_at:
            issued = int(now)
            payload = {**self.claims, "iat": issued, "exp": issued + self.ttl_s}
            self._token = jwt.encode(payload, self._key, algorithm=self.algorithm)
            self._renew_at = issued + self.ttl_s - min(REUSE_MARGIN_S, self.ttl_s / 10)
        return self._token

    async def apply(self, request: PreparedRequest) -> None:
        """Set `Authorization: Bearer <jwt>`."""
        request.set_header("Authorization", f"Bearer {self.token()}")
        request.sensitive_headers.add("authorization")

    def secrets(self) -> list[str]:
        return [value for value in (self._secret, self._token) if value]
