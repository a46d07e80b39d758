"""OAuth2: access tokens from the provider's token endpoint, kept fresh for every request.

`TokenEndpoint` makes the grant requests (RFC 6749 §4.1.3, §4.4, §6 and RFC 7523) with
authlib's request and client-authentication primitives, sent through the service's guarded
`HttpTransport`. `OAuth2Handler` (the seed's name) puts the access token on each request and
keeps it valid:

- the token is held in memory while it has time left, so the request path costs nothing;
- once less than `refresh_margin_s` seconds or `refresh_fraction` of its lifetime remains, a
  refresh starts in the background and requests keep using the still-valid token;
- an expired (or missing) token is renewed before the request, once per process (concurrent
  requests wait for the same renewal) and once across replicas: the renewal takes the token
  store's refresh lock, reads the store again and uses what another replica saved meanwhile;
- a new set, with its rotated refresh token, is saved with compare-and-set on the version
  before its access token is used;
- a refresh token the provider refuses (`invalid_grant`) marks the connection as needing
  re-authorisation, and executions then fail with `auth_failed` saying so.
"""

from __future__ import annotations

import asyncio
import secrets as random_tokens
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import jmespath
import jwt
import orjson
import structlog
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from adaptor.auth_handlers.base import (
    AuthConfigurationError,
    BaseAuthHandler,
    NeedsAuthorization,
    NeedsReauthorization,
    TokenEndpointError,
)
from adaptor.auth_handlers.tokens import (
    AuthContext,
    AuthStatus,
    BaseUrlFromToken,
    MemoryTokenStore,
    TokenSet,
    TokenStore,
)
from adaptor.domain import MASK, AuthConfig
from adaptor.protocols.errors import UpstreamError, safe_url
from adaptor.protocols.http import HttpTransport, PreparedRequest

__all__ = [
    "CLIENT_AUTH_METHODS",
    "JWT_BEARER_GRANT",
    "AuthorizationRequest",
    "OAuth2Handler",
    "TokenEndpoint",
    "authorization_request",
]

log = structlog.get_logger("adaptor.auth.oauth2")
T = TypeVar("T")

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
DEFAULT_REFRESH_MARGIN_S = 60.0
DEFAULT_REFRESH_FRACTION = 0.1
ASSERTION_TTL_S = 300
AHEAD_RETRY_S = 5.0
"""After a failed refresh ahead of expiry, the next one waits this long (the token still works)."""


def _oauth2_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    value = metadata.get("oauth2")
    return value if isinstance(value, dict) else {}


def _text(auth_config: AuthConfig, name: str, *, required: bool = True) -> str | None:
    value = auth_config.credentials.get(name)
    if value in (None, ""):
        if required:
            raise AuthConfigurationError(f"auth_config.credentials.{name} is required for oauth2")
        return None
    if value == MASK:
        raise AuthConfigurationError(
            f"auth_config.credentials.{name} is the mask {MASK!r}, not the stored secret"
        )
    return str(value)


class TokenEndpoint:
    """Grant requests to one provider's token endpoint, answered as `TokenSet`s.

    The client authenticates with `client_secret_basic` (default) or `client_secret_post`, or
    only names itself (`client_id` in the body) when it has no secret (jwt_bearer). Failures:
    `TokenEndpointError` (unreachable, slow, a refusal, an unreadable answer) and
    `NeedsReauthorization` for an `invalid_grant` answer to a refresh.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str | None,
        transport: HttpTransport,
        *,
        auth_method: str = "client_secret_basic",
        timeout_s: float = 10.0,
        ssl_verify: bool = True,
        clock: Callable[[], float] = time.time,
        base_url_from_token: BaseUrlFromToken | None = None,
    ) -> None:
        if auth_method not in CLIENT_AUTH_METHODS:
            known = ", ".join(CLIENT_AUTH_METHODS)
            raise AuthConfigurationError(
                f"metadata.oauth2.client_auth_method must be one of {known}"
            )
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.transport = transport
        self.auth_method = auth_method
        self.timeout_s = timeout_s
        self.ssl_verify = ssl_verify
        self._clock = clock
        self._base_url_from_token = base_url_from_token

    def __repr__(self) -> str:
        return f"TokenEndpoint(url={safe_url(self.token_url)!r}, auth_method={self.auth_method!r})"

    async def grant(
        self, grant_type: str, *, scopes: tuple[str, ...] = (), **params: str | None
    ) -> TokenSet:
        """Ask for tokens with `grant_type` and its parameters."""
        form: dict[str, Any] = {key: value for key, value in params.items() if value}
        if scopes:
            form["scope"] = list(scopes)
        if self._client_secret is None:
            form["client_id"] = self.client_id  # a public client only names itself
        body: str = prepare_token_request(grant_type, **form)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        if self._client_secret is not None:
            client = ClientAuth(self.client_id, self._client_secret, self.auth_method)
            _, headers, body = client.prepare("POST", self.token_url, headers, body)
        request = PreparedRequest(
            "POST",
            self.token_url,
            headers=headers,
            body=body.encode(),
            sensitive_headers={"authorization"},
        )
        where = safe_url(self.token_url)
        started = self._clock()
        try:
            raw = await self.transport.send(
                request, timeout_s=self.timeout_s, ssl_verify=self.ssl_verify
            )
        except UpstreamError as exc:
            raise TokenEndpointError(
                f"the token endpoint {where} failed, so the upstream was not called: "
                f"{self._redact(exc.message)}"
            ) from None
        document = self._parse(raw.body, raw.content_type)
        error = document.get("error") if isinstance(document, dict) else None
        if raw.status >= 400 or error:
            reason = str(error or "no error code")
            description = document.get("error_description") if isinstance(document, dict) else None
            if description:
                reason = f"{reason}: {self._redact(str(description))[:300]}"
            if error == "invalid_grant" and grant_type == "refresh_token":
                raise NeedsReauthorization(
                    f"the provider refused the stored refresh token ({where} answered "
                    f"{raw.status} {reason}); reconnect the integration through "
                    "POST /api/v2/integrations/{id}/oauth/authorize"
                )
            raise TokenEndpointError(
                f"the token endpoint {where} answered {raw.status} ({reason}), "
                "so the upstream was not called",
                endpoint_status=raw.status,
            )
        if not isinstance(document, dict) or not document.get("access_token"):
            raise TokenEndpointError(
                f"the token endpoint {where} answered {raw.status} without an access_token",
                endpoint_status=raw.status,
            )
        base_url = (
            self._base_url_from_token(document, self.token_url)
            if self._base_url_from_token is not None
            else None
        )
        return self._token_set(document, scopes, started, base_url)

    @staticmethod
    def _parse(body: bytes, content_type: str) -> Any:
        if not body:
            return {}
        if content_type == "application/x-www-form-urlencoded":
            return dict(parse_qsl(body.decode("utf-8", errors="replace")))
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            return dict(parse_qsl(body.decode("utf-8", errors="replace")))

    @staticmethod
    def _token_set(
        document: dict[str, Any], scopes: tuple[str, ...], now: float, base_url: str | None
    ) -> TokenSet:
        expires_at: float | None = None
        expires_in = document.get("expires_in")
        try:
            if expires_in not in (None, ""):
                expires_at = now + float(expires_in)
        except (TypeError, ValueError):
            expires_at = None
        if expires_at is None and document.get("expires_at") not in (None, ""):
            try:
                expires_at = float(document["expires_at"])
            except (TypeError, ValueError):
                expires_at = None
        granted = document.get("scope")
        granted_scopes = tuple(str(granted).split()) if granted else scopes
        refresh = document.get("refresh_token")
        return TokenSet(
            access_token=str(document["access_token"]),
            refresh_token=str(refresh) if refresh else None,
            token_type=_token_type(document.get("token_type")),
            expires_at=expires_at,
            scopes=granted_scopes,
            obtained_at=now,
            base_url=base_url,
        )

    def secrets(self) -> list[str]:
        """The client secret, if any (for redaction)."""
        return [self._client_secret] if self._client_secret else []

    def _redact(self, text: str) -> str:
        if self._client_secret and len(self._client_secret) >= 3:
            text = text.replace(self._client_secret, "********")
        return text


def rebased(url: str, base_url: str) -> str:
    """`url` on the origin of `base_url` (scheme and host from it; path and query kept)."""
    target, base = urlsplit(url), urlsplit(base_url)
    return urlunsplit((base.scheme, base.netloc, target.path, target.query, target.fragment))


def _token_type(value: Any) -> str:
    # Providers answer "bearer" too; the header scheme is case-insensitive but some APIs are not.
    if not value or str(value).lower() == "bearer":
        return "Bearer"
    return str(value)


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """Where to send a person for consent, and what the callback needs to finish."""

    url: str
    state: str
    code_verifier: str


def authorization_request(
    auth_config: AuthConfig, redirect_uri: str, *, state: str | None = None
) -> AuthorizationRequest:
    """The authorization URL for the authorization-code flow with PKCE S256 (RFC 7636)."""
    if not auth_config.authorization_url:
        raise AuthConfigurationError("auth_config.authorization_url is required for consent")
    client_id = _text(auth_config, "client_id")
    assert client_id is not None
    state = state or random_tokens.token_urlsafe(32)
    verifier = random_tokens.token_urlsafe(64)[:96]
    url = prepare_grant_uri(
        auth_config.authorization_url,
        client_id,
        "code",
        redirect_uri=redirect_uri,
        scope=list(auth_config.scopes) or None,
        state=state,
        code_challenge=create_s256_code_challenge(verifier),
        code_challenge_method="S256",
    )
    return AuthorizationRequest(url=str(url), state=state, code_verifier=verifier)


def token_endpoint(auth_config: AuthConfig, context: AuthContext) -> TokenEndpoint:
    """The token endpoint client for an oauth2 configuration."""
    if not auth_config.token_url:
        raise AuthConfigurationError("auth_config.token_url is required for oauth2")
    flow = auth_config.oauth2_flow or "client_credentials"
    client_id = _text(auth_config, "client_id")
    assert client_id is not None
    secret = _text(auth_config, "client_secret", required=flow != "jwt_bearer")
    method = str(
        _oauth2_metadata(context.metadata).get("client_auth_method") or CLIENT_AUTH_METHODS[0]
    )
    return TokenEndpoint(
        auth_config.token_url,
        client_id,
        secret,
        context.transport,
        auth_method=method,
        timeout_s=context.timeout_s,
        ssl_verify=context.ssl_verify,
        clock=context.clock,
        base_url_from_token=context.base_url_from_token,
    )


class OAuth2Handler(BaseAuthHandler):
    """`Authorization: <token_type> <access token>` from the integration's OAuth2 flow.

    Flows (`auth_config.oauth2_flow`): `authorization_code` (tokens from the consent callback,
    renewed with the refresh token), `client_credentials`, `refresh_token` (renewed from
    `credentials.refresh_token` and then from each rotated one), `jwt_bearer` (RFC 7523: an
    assertion signed with `credentials.private_key`, `algorithm` default RS256, `claims`).
    `metadata.oauth2`: `client_auth_method`, `expired_when` (JMESPath over a 2xx body; truthy
    means the token expired), `refresh_margin_s`, `refresh_fraction`.
    """

    inspects_responses = False

    def __init__(self, auth_config: AuthConfig, context: AuthContext) -> None:
        self.flow = auth_config.oauth2_flow or "client_credentials"
        self.endpoint = token_endpoint(auth_config, context)
        self.scopes = tuple(auth_config.scopes)
        self.integration_id = context.integration_id
        self._clock = context.clock
        self._on_token_request = context.on_token_request
        stores = context.token_stores
        self.store: TokenStore = (
            stores(context.tenant_id, context.integration_id) if stores else MemoryTokenStore()
        )
        self._configured_refresh = _text(auth_config, "refresh_token", required=False)
        if self.flow == "refresh_token" and self._configured_refresh is None:
            raise AuthConfigurationError(
                "auth_config.credentials.refresh_token is required for the refresh_token flow"
            )
        self._private_key: str | None = None
        self._claims: dict[str, Any] = {}
        self._algorithm = "RS256"
        if self.flow == "jwt_bearer":
            self._private_key = _text(auth_config, "private_key")
            self._algorithm = str(auth_config.credentials.get("algorithm") or "RS256")
            claims = auth_config.credentials.get("claims") or {}
            if not isinstance(claims, dict):
                raise AuthConfigurationError("auth_config.credentials.claims must be an object")
            self._claims = claims
        options = _oauth2_metadata(context.metadata)
        self.refresh_margin_s = float(options.get("refresh_margin_s", DEFAULT_REFRESH_MARGIN_S))
        self.refresh_fraction = float(options.get("refresh_fraction", DEFAULT_REFRESH_FRACTION))
        expired_when = options.get("expired_when")
        self._expired_when = jmespath.compile(str(expired_when)) if expired_when else None
        self.inspects_responses = self._expired_when is not None
        self._tokens: TokenSet | None = None
        self._renewal: asyncio.Task[TokenSet] | None = None
        self._ahead_not_before = 0.0

    def __repr__(self) -> str:
        return f"OAuth2Handler(flow={self.flow!r}, endpoint={self.endpoint!r})"

    # the request path ---------------------------------------------------------------------

    async def apply(self, request: PreparedRequest) -> None:
        """Set `Authorization` from a valid access token (renewing it first if it expired); a
        token set that names its API's base URL (Salesforce's `instance_url`) sends the
        request there."""
        tokens = await self.get_token_set()
        if tokens.base_url is not None:
            request.url = rebased(request.url, tokens.base_url)
        request.set_header("Authorization", f"{tokens.token_type} {tokens.access_token}")
        request.sensitive_headers.add("authorization")

    async def get_access_token(self, integration_id: str | None = None) -> str:
        """A valid access token, refreshing if needed (the seed's entry point)."""
        return (await self.get_token_set()).access_token

    async def get_token_set(self) -> TokenSet:
        now = self._clock()
        tokens = self._tokens
        if tokens is not None and tokens.usable(now):
            if tokens.due(now, self.refresh_margin_s, self.refresh_fraction):
                self._refresh_ahead(tokens)
            return tokens
        loaded = await self._guarded(self.store.load())
        if loaded is not None and loaded.usable(now):
            self._tokens = loaded
            if loaded.due(now, self.refresh_margin_s, self.refresh_fraction):
                self._refresh_ahead(loaded)
            return loaded
        if loaded is not None and loaded.status is AuthStatus.NEEDS_REAUTHORIZATION:
            raise self._reconnect()
        return await self._renew(loaded)

    async def refresh(self) -> bool:
        """The upstream refused the token: renew it once (or take another replica's newer one)."""
        seen = self._tokens
        try:
            renewed = await self._renew(seen)
        except AuthConfigurationError as exc:
            log.warning(
                "auth.oauth2.refresh_failed",
                integration_id=self.integration_id,
                error_type=type(exc).__name__,
            )
            return False
        return seen is None or renewed.version != seen.version

    def response_expired(self, data: Any) -> bool:
        if self._expired_when is None:
            return False
        return bool(self._expired_when.search(data))

    def secrets(self) -> list[str]:
        values = self.endpoint.secrets()
        if self._configured_refresh:
            values.append(self._configured_refresh)
        if self._tokens is not None:
            values.append(self._tokens.access_token)
            values.append(self._tokens.refresh_token or "")
        return [value for value in values if value]

    # renewal -------------------------------------------------------------------------------

    def _refresh_ahead(self, tokens: TokenSet) -> None:
        if self._renewal is not None and not self._renewal.done():
            return
        if self._clock() < self._ahead_not_before:
            return  # the last attempt failed moments ago: do not hammer the token endpoint
        log.info(
            "auth.oauth2.refresh_ahead",
            integration_id=self.integration_id,
            remaining_s=round(tokens.remaining(self._clock()), 1),
        )
        self._renewal = asyncio.create_task(self._renew_once(tokens))
        self._renewal.add_done_callback(self._ahead_done)

    def _ahead_done(self, task: asyncio.Task[TokenSet]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._ahead_not_before = self._clock() + AHEAD_RETRY_S
            # The current token is still valid; the next request past the window tries again.
            log.warning(
                "auth.oauth2.refresh_ahead_failed",
                integration_id=self.integration_id,
                error=str(exc),
            )

    async def _renew(self, seen: TokenSet | None) -> TokenSet:
        """One renewal per process at a time: concurrent callers share it."""
        task = self._renewal
        if task is None or task.done():
            task = asyncio.create_task(self._renew_once(seen))
            self._renewal = task
        return await asyncio.shield(task)

    async def _renew_once(self, seen: TokenSet | None) -> TokenSet:
        seen_version = seen.version if seen is not None else -1
        async with self.store.refresh_lock(wait_s=self.endpoint.timeout_s) as acquired:
            current = await self._guarded(self.store.load(fresh=True))
            now = self._clock()
            if current is not None and current.status is AuthStatus.NEEDS_REAUTHORIZATION:
                raise self._reconnect()
            if current is not None and current.version != seen_version and current.usable(now):
                # Another replica (or task) renewed while we waited for the lock.
                self._tokens = current
                return current
            if not acquired:
                raise TokenEndpointError(
                    "another replica held the token refresh lock for too long, so the "
                    "upstream was not called"
                )
            try:
                issued = await self._request_tokens(current)
            except BaseException:
                self._told(ok=False)
                raise
            self._told(ok=True)
            expected = current.version if current is not None else 0
            saved = await self._guarded(self.store.save(issued, expected_version=expected))
            if saved is None:
                latest = await self._guarded(self.store.load(fresh=True))
                if latest is not None and latest.usable(now):
                    self._tokens = latest
                    return latest
                raise TokenEndpointError("a newer token set was saved meanwhile but is not usable")
            log.info(
                "auth.oauth2.token_refreshed",
                integration_id=self.integration_id,
                flow=self.flow,
                version=saved.version,
                expires_in_s=None if saved.expires_at is None else round(saved.remaining(now)),
                rotated=saved.refresh_token is not None
                and (current is None or current.refresh_token != saved.refresh_token),
            )
            self._tokens = saved
            return saved

    def _told(self, *, ok: bool) -> None:
        if self._on_token_request is not None:
            self._on_token_request(self.integration_id, ok)

    async def _request_tokens(self, current: TokenSet | None) -> TokenSet:
        match self.flow:
            case "client_credentials":
                return await self.endpoint.grant("client_credentials", scopes=self.scopes)
            case "jwt_bearer":
                return await self.endpoint.grant(
                    JWT_BEARER_GRANT, scopes=self.scopes, assertion=self._assertion()
                )
            case _:
                return await self._refresh_grant(current)

    async def _refresh_grant(self, current: TokenSet | None) -> TokenSet:
        refresh_token = current.refresh_token if current is not None else None
        if refresh_token is None and current is None:
            refresh_token = self._configured_refresh
        if refresh_token is None:
            if current is None:
                raise NeedsAuthorization(
                    "this integration is not connected yet: authorize it through "
                    f"{self._authorize_route()}"
                )
            raise self._reconnect()
        try:
            issued = await self.endpoint.grant(
                "refresh_token", refresh_token=refresh_token, scopes=self.scopes
            )
        except NeedsReauthorization:
            self._tokens = None  # executions now answer auth_failed, saying to reconnect
            expected = current.version if current is not None else 0
            await self._guarded(self.store.mark_needs_reauthorization(expected_version=expected))
            log.warning("auth.oauth2.needs_reauthorization", integration_id=self.integration_id)
            raise self._reconnect() from None
        if issued.refresh_token is None:  # not rotated: the old one stays valid
            issued = replace(issued, refresh_token=refresh_token)
        return issued

    def _assertion(self) -> str:
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self.endpoint.client_id,
            "sub": self.endpoint.client_id,
            "aud": self.endpoint.token_url,
            "iat": now,
            "exp": now + ASSERTION_TTL_S,
            "jti": str(uuid.uuid4()),
        }
        claims.update(self._claims)
        assert self._private_key is not None
        try:
            return jwt.encode(claims, self._private_key, algorithm=self._algorithm)
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise AuthConfigurationError(
                f"auth_config.credentials.private_key cannot sign {self._algorithm} "
                f"assertions ({type(exc).__name__})"
            ) from None

    def _reconnect(self) -> NeedsReauthorization:
        return NeedsReauthorization(
            "the provider refused the stored refresh token: reconnect the integration "
            f"through {self._authorize_route()}"
        )

    def _authorize_route(self) -> str:
        return f"POST /api/v2/integrations/{self.integration_id or '{id}'}/oauth/authorize"

    async def _guarded(self, operation: Awaitable[T]) -> T:
        """A token store call; its failure is an `auth_failed`, never a crash."""
        try:
            return await operation
        except AuthConfigurationError:
            raise
        except Exception as exc:
            raise TokenEndpointError(
                f"the token store is unavailable ({type(exc).__name__}), so the upstream "
                "was not called"
            ) from exc
