"""Tokens and where they are kept: the interface OAuth2 handlers are built on.

A `TokenSet` is what a token endpoint issued. A `TokenStore` keeps one integration's tokens for
every replica: it reads them (shared cache first, durable storage behind it), saves a new set
with compare-and-set on `version` (so a refresher whose lock expired cannot overwrite a newer
set), records that the provider refused the refresh token, and hands out the one refresh lock.
The service implements it (`adaptor.oauth`); this package only depends on the protocol.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from adaptor.domain import IntegrationSpec
from adaptor.protocols.http import HttpTransport

if TYPE_CHECKING:
    from adaptor.auth_handlers.custom import CustomHandlerRegistry

__all__ = [
    "AuthContext",
    "AuthStatus",
    "BaseUrlFromToken",
    "MemoryTokenStore",
    "TokenSet",
    "TokenStore",
    "TokenStoreFactory",
]


class AuthStatus(StrEnum):
    """Whether an OAuth2 connection can be used, as `GET /integrations/{id}` shows it."""

    OK = "ok"
    NEEDS_AUTHORIZATION = "needs_authorization"
    NEEDS_REAUTHORIZATION = "needs_reauthorization"


@dataclass(frozen=True, slots=True)
class TokenSet:
    """One integration's tokens. `expires_at` and `obtained_at` are epoch seconds; `version`
    counts the sets saved for the integration (0: nothing saved yet). `repr` shows no token."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    token_type: str = "Bearer"
    expires_at: float | None = None
    scopes: tuple[str, ...] = ()
    obtained_at: float = 0.0
    version: int = 0
    status: AuthStatus = AuthStatus.OK
    base_url: str | None = None
    """The API base URL the token response named (Salesforce's `instance_url`, read by the
    vendor hook), or None: requests then go to the integration's own `base_url`."""

    def remaining(self, now: float) -> float:
        """Seconds of validity left (infinite without an expiry)."""
        return float("inf") if self.expires_at is None else self.expires_at - now

    def usable(self, now: float, skew_s: float = 1.0) -> bool:
        """Connected, with an access token that is still valid for `skew_s` seconds."""
        return (
            self.status is AuthStatus.OK
            and bool(self.access_token)
            and self.remaining(now) > min(skew_s, self.lifetime / 4)
        )

    @property
    def lifetime(self) -> float:
        if self.expires_at is None:
            return float("inf")
        return max(0.0, self.expires_at - self.obtained_at)

    def due(self, now: float, margin_s: float, fraction: float) -> bool:
        """Whether a refresh should start: less than `margin_s` seconds or `fraction` of the
        lifetime left, but never in the first half of the lifetime (a token that only lives a
        few seconds is not refreshed the moment it arrives)."""
        if self.expires_at is None:
            return False
        threshold = min(max(margin_s, self.lifetime * fraction), self.lifetime / 2)
        return self.remaining(now) < threshold

    def with_version(self, version: int) -> TokenSet:
        return replace(self, version=version)

    def to_document(self) -> dict[str, Any]:
        """Every field as JSON-ready data (encrypt it before it leaves the process)."""
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": self.token_type,
            "expires_at": self.expires_at,
            "scopes": list(self.scopes),
            "obtained_at": self.obtained_at,
            "version": self.version,
            "status": self.status.value,
            "base_url": self.base_url,
        }

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> TokenSet:
        return cls(
            access_token=str(document.get("access_token") or ""),
            refresh_token=document.get("refresh_token"),
            token_type=str(document.get("token_type") or "Bearer"),
            expires_at=document.get("expires_at"),
            scopes=tuple(document.get("scopes") or ()),
            obtained_at=float(document.get("obtained_at") or 0.0),
            version=int(document.get("version") or 0),
            status=AuthStatus(document.get("status") or AuthStatus.OK.value),
            base_url=document.get("base_url"),
        )


class TokenStore(Protocol):
    """One integration's tokens, shared by every replica."""

    async def load(self, *, fresh: bool = False) -> TokenSet | None:
        """The newest saved set, or None when nothing was ever saved. `fresh` skips any cache
        in front of the durable copy (the re-read after taking the refresh lock)."""
        ...

    async def save(self, tokens: TokenSet, *, expected_version: int) -> TokenSet | None:
        """Save `tokens` as version `expected_version + 1` if the saved version is still
        `expected_version`; the saved set, or None when another writer got there first."""
        ...

    async def mark_needs_reauthorization(self, *, expected_version: int) -> None:
        """The provider refused the refresh token of version `expected_version`."""
        ...

    def refresh_lock(self, wait_s: float) -> AbstractAsyncContextManager[bool]:
        """The integration's refresh mutex across replicas; yields whether it was acquired
        within `wait_s` seconds."""
        ...


TokenStoreFactory = Callable[[str, str], TokenStore]
"""(tenant_id, integration_id) → that integration's `TokenStore`."""

BaseUrlFromToken = Callable[[Mapping[str, Any], str], str | None]
"""(token response, token endpoint URL) → the API base URL it names, or None."""


@dataclass(frozen=True, slots=True)
class AuthContext:
    """What handlers need beyond the auth configuration, built once by the service and bound
    to one integration by `for_integration`.

    `transport` is the guarded HTTP transport token requests go through; `token_stores` makes
    an integration's `TokenStore` (None: OAuth2 tokens live in process memory only); `clock`
    is epoch seconds; `custom_handlers` the registry `custom` auth names a handler from (None:
    the built-in ones and entry points); `on_token_request` hears each token request to a
    provider (for metrics); `base_url_from_token` reads the API base URL from a token response
    and the token endpoint's URL (a vendor hook; None: the base URL is the integration's own).
    """

    transport: HttpTransport
    token_stores: TokenStoreFactory | None = None
    custom_handlers: CustomHandlerRegistry | None = None
    clock: Callable[[], float] = time.time
    tenant_id: str = ""
    integration_id: str = ""
    timeout_s: float = 10.0
    ssl_verify: bool = True
    metadata: dict[str, Any] = field(default_factory=dict)
    on_token_request: Callable[[str, bool], None] | None = None
    """Told of every token request to a provider: (integration id, whether it succeeded)."""
    base_url_from_token: BaseUrlFromToken | None = None

    def for_integration(
        self,
        config: IntegrationSpec,
        tenant_id: str = "",
        *,
        base_url_from_token: BaseUrlFromToken | None = None,
    ) -> AuthContext:
        """This context for one integration: its ids, timeout, TLS setting, metadata and the
        vendor's base-URL hook."""
        return replace(
            self,
            base_url_from_token=base_url_from_token,
            tenant_id=tenant_id or str(getattr(config, "tenant_id", "")),
            integration_id=config.integration_id or "",
            timeout_s=config.timeout_ms / 1000,
            ssl_verify=config.ssl_verify,
            metadata=dict(config.metadata),
        )


class MemoryTokenStore:
    """A `TokenStore` inside one process, for scripts and tests without a service around."""

    def __init__(self) -> None:
        self._tokens: TokenSet | None = None
        self._lock = asyncio.Lock()

    async def load(self, *, fresh: bool = False) -> TokenSet | None:
        return self._tokens

    async def save(self, tokens: TokenSet, *, expected_version: int) -> TokenSet | None:
        current = self._tokens.version if self._tokens is not None else 0
        if current != expected_version:
            return None
        self._tokens = tokens.with_version(expected_version + 1)
        return self._tokens

    async def mark_needs_reauthorization(self, *, expected_version: int) -> None:
        if self._tokens is not None and self._tokens.version == expected_version:
            self._tokens = replace(
                self._tokens,
                status=AuthStatus.NEEDS_REAUTHORIZATION,
                version=expected_version + 1,
            )

    @asynccontextmanager
    async def refresh_lock(self, wait_s: float) -> AsyncIterator[bool]:
        try:
            await asyncio.wait_for(self._lock.acquire(), timeout=wait_s)
        except TimeoutError:
            yield False
            return
        try:
            yield True
        finally:
            self._lock.release()
