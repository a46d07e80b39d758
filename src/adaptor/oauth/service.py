"""OAuth2 consent and the token store every replica shares.

Tokens live encrypted in the database (`oauth_tokens`, the durable copy, compare-and-set on
`version`) and, encrypted as well, in the shared store under `tok:<integration id>` so replicas
read them without a query. The refresh lock is `tok:lock:<integration id>`. Consent states are
`oauth:state:<state>`: random, bound to tenant and integration, ten minutes to live, and
consumed with a compare-and-set so only one callback can use one.
"""

from __future__ import annotations

import secrets as random_tokens
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from adaptor.auth_handlers import (
    AuthConfigurationError,
    AuthContext,
    AuthStatus,
    TokenSet,
    authorization_request,
)
from adaptor.auth_handlers.oauth2 import token_endpoint
from adaptor.connectors import connector_factory
from adaptor.domain import AuthType, IntegrationConfig, OAuthTokenInfo
from adaptor.errors import BadRequest, Conflict, NotFound
from adaptor.integrations.service import IntegrationService
from adaptor.oauth.repository import OAuthTokenRepository
from adaptor.oauth.schemas import AuthorizeResponse, CallbackResult
from adaptor.security.crypto import SecretBox
from adaptor.storage.database import Database
from adaptor.storage.kv import KeyValueStore, StoreError
from adaptor.vault import SecretSealer, VaultUnavailable, is_reference

log = structlog.get_logger("adaptor.oauth")

STATE_TTL_S = 600.0
TOKEN_CACHE_TTL_S = 3600.0
LOCK_TTL_S = 30.0
CALLBACK_PATH = "/api/v2/oauth/callback"

ConnectedListener = Callable[[str, str], Awaitable[None]]


def _token_key(integration_id: str) -> str:
    return f"tok:{integration_id}"


def _state_key(state: str) -> str:
    return f"oauth:state:{state}"


class OAuthTokenStore:
    """The `TokenStore` of one integration: database behind, shared cache in front."""

    def __init__(
        self,
        database: Database,
        kv: KeyValueStore,
        secret_box: SecretBox,
        tenant_id: str,
        integration_id: str,
        sealer: SecretSealer | None = None,
    ) -> None:
        self.database = database
        self.kv = kv
        self.secret_box = secret_box
        self.tenant_id = tenant_id
        self.integration_id = integration_id
        self.sealer = sealer or SecretSealer(secret_box)

    async def load(self, *, fresh: bool = False) -> TokenSet | None:
        """The newest set: the shared cache's copy, or the database's when `fresh` or on a
        miss (then cached again)."""
        key = _token_key(self.integration_id)
        if not fresh:
            try:
                cached = await self.kv.get(key)
            except StoreError:
                cached = None
            if cached is not None:
                tokens = self._decode(cached.decode())
                if tokens is not None:
                    return tokens
        async with self.database.session() as session:
            row = await OAuthTokenRepository(session).get(self.tenant_id, self.integration_id)
            if row is None:
                return None
            stored, version, status = row.tokens, row.version, row.status
        try:
            document = await self.sealer.unseal(stored)
        except VaultUnavailable:
            raise
        except Exception:
            log.warning("oauth.tokens_unreadable", integration_id=self.integration_id)
            return None
        if not isinstance(document, dict):
            return None
        tokens = TokenSet.from_document(document)
        tokens = TokenSet.from_document(
            {**tokens.to_document(), "version": version, "status": status}
        )
        await self._cache(tokens)
        return tokens

    async def save(self, tokens: TokenSet, *, expected_version: int) -> TokenSet | None:
        saved = tokens.with_version(expected_version + 1)
        encrypted = await self.sealer.seal(
            saved.to_document(),
            tenant_id=self.tenant_id,
            integration_id=self.integration_id,
            kind="oauth",
        )
        async with self.database.session() as session:
            written = await OAuthTokenRepository(session).save_if_version(
                self.tenant_id,
                self.integration_id,
                expected_version,
                status=saved.status.value,
                tokens=encrypted,
            )
        if not written:
            await self._drop_cache()
            return None
        await self._cache(saved)
        return saved

    async def mark_needs_reauthorization(self, *, expected_version: int) -> None:
        current = await self.load(fresh=True)
        base = current or TokenSet(access_token="")
        if (current.version if current else 0) != expected_version:
            return  # someone saved newer tokens meanwhile
        marked = TokenSet.from_document(
            {**base.to_document(), "status": AuthStatus.NEEDS_REAUTHORIZATION.value}
        )
        await self.save(marked, expected_version=expected_version)

    def refresh_lock(self, wait_s: float) -> AbstractAsyncContextManager[bool]:
        return self.kv.lock(f"tok:lock:{self.integration_id}", LOCK_TTL_S, wait_s)

    async def forget(self) -> None:
        """Drop the tokens (the integration was deleted or reconnected from scratch)."""
        async with self.database.session() as session:
            await OAuthTokenRepository(session).delete(self.tenant_id, self.integration_id)
        await self._drop_cache()

    def _decode(self, encrypted: str) -> TokenSet | None:
        try:
            document = self.secret_box.decrypt(encrypted)
        except Exception:
            log.warning("oauth.tokens_unreadable", integration_id=self.integration_id)
            return None
        return TokenSet.from_document(document) if isinstance(document, dict) else None

    async def _cache(self, tokens: TokenSet) -> None:
        try:
            await self.kv.set(
                _token_key(self.integration_id),
                self.secret_box.encrypt(tokens.to_document()).encode(),
                TOKEN_CACHE_TTL_S,
            )
        except StoreError:
            await self._drop_cache()

    async def _drop_cache(self) -> None:
        try:
            await self.kv.delete(_token_key(self.integration_id))
        except StoreError:
            log.warning("oauth.token_cache_unavailable", integration_id=self.integration_id)


@dataclass(frozen=True, slots=True)
class _PendingConsent:
    tenant_id: str
    integration_id: str
    code_verifier: str
    redirect_uri: str


class OAuthService:
    """Consent for authorization-code integrations, and each integration's token store."""

    def __init__(
        self,
        database: Database,
        kv: KeyValueStore,
        secret_box: SecretBox,
        integrations: IntegrationService,
        auth_context: AuthContext,
        *,
        public_base_url: str,
        listeners: list[ConnectedListener] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.database = database
        self.kv = kv
        self.secret_box = secret_box
        self.integrations = integrations
        self.auth_context = auth_context
        self.redirect_uri = f"{public_base_url.rstrip('/')}{CALLBACK_PATH}"
        self.listeners: list[ConnectedListener] = listeners or []
        self._clock = clock

    def token_store(self, tenant_id: str, integration_id: str) -> OAuthTokenStore:
        stores = self.auth_context.token_stores
        if stores is not None:
            store = stores(tenant_id, integration_id)
            if isinstance(store, OAuthTokenStore):
                return store
        return OAuthTokenStore(self.database, self.kv, self.secret_box, tenant_id, integration_id)

    # consent -------------------------------------------------------------------------------

    async def authorize(self, tenant_id: str, integration_id: str) -> AuthorizeResponse:
        """A consent URL (PKCE S256) and its single-use state, valid for ten minutes."""
        loaded = await self.integrations.load(tenant_id, integration_id)
        auth = loaded.config.auth_config
        if auth.type is not AuthType.OAUTH2 or auth.oauth2_flow != "authorization_code":
            raise Conflict(
                "Only an oauth2 integration with oauth2_flow authorization_code is authorized "
                "through consent"
            )
        try:
            request = authorization_request(
                auth, self.redirect_uri, state=random_tokens.token_urlsafe(32)
            )
        except AuthConfigurationError as exc:
            raise Conflict(exc.message) from None
        pending = {
            "t": tenant_id,
            "i": integration_id,
            "v": request.code_verifier,
            "r": self.redirect_uri,
        }
        await self.kv.set(
            _state_key(request.state),
            self.secret_box.encrypt(pending).encode(),
            STATE_TTL_S,
            only_if_absent=True,
        )
        log.info("oauth.authorize", tenant_id=tenant_id, integration_id=integration_id)
        return AuthorizeResponse(
            authorization_url=request.url,
            state=request.state,
            redirect_uri=self.redirect_uri,
            expires_in=int(STATE_TTL_S),
        )

    async def callback(
        self,
        *,
        state: str | None,
        code: str | None,
        error: str | None = None,
        error_description: str | None = None,
    ) -> CallbackResult:
        """Finish a consent: check and consume the state, exchange the code, save the tokens.

        An unknown, reused or expired state is a `BadRequest` and exchanges nothing; so is the
        provider's refusal (`error=access_denied`)."""
        if not state:
            raise BadRequest("The callback has no state parameter")
        pending = await self._consume_state(state)
        if pending is None:
            raise BadRequest(
                "This authorization is unknown, was already used or has expired (after 10 "
                "minutes); start again with POST /api/v2/integrations/{id}/oauth/authorize"
            )
        if error:
            reason = error if not error_description else f"{error}: {error_description[:300]}"
            log.info("oauth.consent_refused", integration_id=pending.integration_id, error=error)
            raise BadRequest(
                f"The provider did not grant access ({reason}); nothing was stored. "
                "Authorize again to connect the integration."
            )
        if not code:
            raise BadRequest("The callback has no code parameter")
        loaded = await self.integrations.load(pending.tenant_id, pending.integration_id)
        marketplace = loaded.config.metadata.get("marketplace")
        hook = connector_factory(
            marketplace.get("item_id") if isinstance(marketplace, dict) else None
        )
        context = self.auth_context.for_integration(
            loaded.config, pending.tenant_id, base_url_from_token=hook.base_url_from_token
        )
        try:
            endpoint = token_endpoint(loaded.config.auth_config, context)
            issued = await endpoint.grant(
                "authorization_code",
                code=code,
                redirect_uri=pending.redirect_uri,
                code_verifier=pending.code_verifier,
            )
        except AuthConfigurationError as exc:
            raise BadRequest(f"Exchanging the authorization code failed: {exc.message}") from None
        store = self.token_store(pending.tenant_id, pending.integration_id)
        saved: TokenSet | None = None
        while saved is None:
            current = await store.load(fresh=True)
            saved = await store.save(issued, expected_version=current.version if current else 0)
        log.info(
            "oauth.connected",
            tenant_id=pending.tenant_id,
            integration_id=pending.integration_id,
            version=saved.version,
        )
        for listener in self.listeners:
            await listener(pending.tenant_id, pending.integration_id)
        return CallbackResult(
            connected=True,
            integration_id=pending.integration_id,
            auth_status=AuthStatus.OK.value,
            token=_token_info(saved),
        )

    async def _consume_state(self, state: str) -> _PendingConsent | None:
        key = _state_key(state)
        raw = await self.kv.get(key)
        if raw is None or not await self.kv.compare_and_set(key, raw, None):
            return None  # unknown, expired, or another callback consumed it first
        try:
            pending: Any = self.secret_box.decrypt(raw.decode())
            return _PendingConsent(
                str(pending["t"]), str(pending["i"]), str(pending["v"]), str(pending["r"])
            )
        except Exception:
            return None

    async def integration_changed(self, tenant_id: str, integration_id: str) -> None:
        """After any change: a deleted integration's tokens (and, with Vault, its secrets
        there) are removed."""
        try:
            await self.integrations.get(tenant_id, integration_id)
            return
        except NotFound:
            pass
        await self.token_store(tenant_id, integration_id).forget()
        vault = self.integrations.sealer.vault
        if vault is not None:
            try:
                for kind in ("credentials", "oauth"):
                    await vault.destroy(vault.path(tenant_id, integration_id, kind))
            except VaultUnavailable as exc:
                log.warning(
                    "oauth.vault_cleanup_failed", integration_id=integration_id, error=str(exc)
                )

    # reads ---------------------------------------------------------------------------------

    async def describe(self, config: IntegrationConfig) -> IntegrationConfig:
        """`config` with `auth_status` and the token's expiry and scopes (never the tokens)."""
        auth = config.auth_config
        if auth.type is not AuthType.OAUTH2:
            return config
        tokens = await self.token_store(config.tenant_id, config.integration_id).load()
        if tokens is None:
            status = (
                AuthStatus.NEEDS_AUTHORIZATION
                if auth.oauth2_flow in (None, "authorization_code")
                else AuthStatus.OK
            )
            return config.model_copy(update={"auth_status": status.value})
        return config.model_copy(
            update={"auth_status": tokens.status.value, "oauth2_token": _token_info(tokens)}
        )

    async def rotate_secrets(self) -> int:
        """Re-encrypt every stored token set under the newest key; how many rows."""
        return await rotate_token_secrets(self.database, self.secret_box)


async def rotate_token_secrets(database: Database, secret_box: SecretBox) -> int:
    """Re-encrypt every stored token set under the newest key; how many rows. (Cached copies
    expire on their own, and are read from the database again once undecryptable.)"""
    count = 0
    async with database.session() as session:
        for row in await OAuthTokenRepository(session).all():
            if is_reference(row.tokens):
                continue  # kept in Vault, which encrypts with its own keys
            row.tokens = secret_box.rotate(row.tokens)
            count += 1
    return count


def _token_info(tokens: TokenSet) -> OAuthTokenInfo:
    expires_at = (
        datetime.fromtimestamp(tokens.expires_at, UTC) if tokens.expires_at is not None else None
    )
    return OAuthTokenInfo(
        expires_at=expires_at,
        scopes=list(tokens.scopes),
        has_refresh_token=tokens.refresh_token is not None,
        version=tokens.version,
    )
