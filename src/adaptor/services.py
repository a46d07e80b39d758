"""Every long-lived resource of one process, built once at start-up and closed at shutdown."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from adaptor.auth_handlers import AuthContext, CustomHandlerRegistry
from adaptor.config import Settings
from adaptor.executions.logs import ExecutionLogWriter
from adaptor.executions.runtime import RuntimeCache
from adaptor.executions.service import ExecutionService
from adaptor.integrations.service import IntegrationService
from adaptor.keys.service import ApiKeyService
from adaptor.mapping import MappingEngine
from adaptor.oauth.service import OAuthService, OAuthTokenStore
from adaptor.observability.metrics import Metrics
from adaptor.protocols.http import AiohttpTransport
from adaptor.resilience.cache import ResponseCache
from adaptor.resilience.guard import DestinationGuard
from adaptor.resilience.ratelimit import RateLimiter
from adaptor.resilience.retry import RetryManager
from adaptor.security.crypto import EncryptionKeyError, SecretBox, local_key_file
from adaptor.storage.database import Database
from adaptor.storage.kv import KeyValueStore
from adaptor.storage.kv_failover import FailoverStore
from adaptor.storage.kv_memory import MemoryStore
from adaptor.storage.kv_redis import RedisStore
from adaptor.vault import SecretSealer, VaultSecrets, VaultUnavailable

log = structlog.get_logger("adaptor.services")

STALE_RESPONSE_S = 600.0
"""How long a cached response stays available, after it expires, for serving while the
integration's circuit is open."""


@dataclass
class Services:
    settings: Settings
    database: Database
    kv: KeyValueStore
    secret_box: SecretBox
    mapping: MappingEngine
    keys: ApiKeyService
    integrations: IntegrationService
    metrics: Metrics
    execution_logs: ExecutionLogWriter
    transport: AiohttpTransport
    runtimes: RuntimeCache
    executions: ExecutionService
    oauth: OAuthService
    vault: VaultSecrets | None = None
    generated_admin_key: str | None = None

    async def close(self) -> None:
        await self.runtimes.close()
        await self.execution_logs.close()
        await self.transport.close()
        await self.kv.close()
        await self.database.close()


def check_encryption_setting(settings: Settings) -> None:
    """Raise `EncryptionKeyError` now for what `secret_box_for` would refuse, creating nothing:
    a malformed ENCRYPTION_KEY, or none in production."""
    if settings.encryption_key:
        SecretBox.from_setting(settings.encryption_key)
    elif settings.production:
        raise EncryptionKeyError("ENCRYPTION_KEY: expects a Fernet key; required in production")


def vault_for(settings: Settings) -> VaultSecrets | None:
    """The Vault client when VAULT_URL is set; raises `VaultUnavailable` (one line) when it
    cannot be reached or refuses VAULT_TOKEN, so the service does not start without it."""
    if not settings.vault_url:
        return None
    if not settings.vault_token:
        raise VaultUnavailable("VAULT_TOKEN: required when VAULT_URL is set")
    vault = VaultSecrets(settings.vault_url, settings.vault_token, mount=settings.vault_mount)
    vault.check()
    return vault


def secret_box_for(settings: Settings) -> SecretBox:
    if settings.encryption_key:
        return SecretBox.from_setting(settings.encryption_key)
    if settings.production:
        raise EncryptionKeyError("ENCRYPTION_KEY: expects a Fernet key; required in production")
    key, created = local_key_file(settings.data_dir)
    log.warning(
        "security.local_encryption_key",
        path=str(settings.data_dir / "encryption.key"),
        created=created,
        hint="set ENCRYPTION_KEY for anything but local development",
    )
    return SecretBox([key])


async def build_services(settings: Settings) -> Services:
    secret_box = secret_box_for(settings)
    vault = vault_for(settings)
    sealer = SecretSealer(secret_box, vault)
    database = Database(settings.database_url, pool_size=settings.connection_pool_size)
    # With Redis, limits and breakers fall back to this process's memory while it is down,
    # and the response cache is bypassed (see FailoverStore).
    kv: KeyValueStore
    cache_store: KeyValueStore
    if settings.redis_url:
        kv = FailoverStore(RedisStore.from_url(settings.redis_url))
        cache_store = kv.without_fallback()
    else:
        kv = cache_store = MemoryStore()
    try:
        if not settings.production:
            await database.migrate()
        mapping = MappingEngine()
        keys = ApiKeyService(database)
        integrations = IntegrationService(database, secret_box, mapping, vault=vault)
        transport = AiohttpTransport(
            DestinationGuard(allow_private=settings.allow_private_networks),
            pool_size=settings.connection_pool_size,
            max_connections=max(
                settings.connection_pool_size, settings.max_concurrent_integrations
            ),
        )

        # OAuth2 token requests go through the same guarded transport as upstream calls.
        def token_store(tenant_id: str, integration_id: str) -> OAuthTokenStore:
            return OAuthTokenStore(database, kv, secret_box, tenant_id, integration_id, sealer)

        auth_context = AuthContext(
            transport, token_stores=token_store, custom_handlers=CustomHandlerRegistry()
        )
        oauth = OAuthService(
            database,
            kv,
            secret_box,
            integrations,
            auth_context,
            public_base_url=settings.callback_base_url,
        )
        runtimes = RuntimeCache(integrations, mapping, transport, kv, auth_context=auth_context)
        oauth.listeners.append(runtimes.changed)
        metrics = Metrics()
        log_writer = ExecutionLogWriter(database)
        cache = ResponseCache(cache_store, stale_s=STALE_RESPONSE_S)
        executions = ExecutionService(
            runtimes,
            log_writer,
            metrics,
            cache,
            RateLimiter(kv),
            retries=RetryManager(),
            max_concurrent=settings.max_concurrent_integrations,
            caching_enabled=settings.enable_response_caching,
        )

        async def drop_cached_responses(tenant_id: str, integration_id: str) -> None:
            # Produced under the old configuration (mappings, base URL, credentials).
            await cache.invalidate(tenant_id, integration_id)

        integrations.listeners += [runtimes.changed, drop_cached_responses]
        integrations.listeners.append(oauth.integration_changed)
        services = Services(
            settings=settings,
            database=database,
            kv=kv,
            secret_box=secret_box,
            mapping=mapping,
            keys=keys,
            integrations=integrations,
            metrics=metrics,
            execution_logs=log_writer,
            transport=transport,
            runtimes=runtimes,
            executions=executions,
            oauth=oauth,
            vault=vault,
        )
        log_writer.start()
        await runtimes.start()
        services.generated_admin_key = await keys.ensure_bootstrap_admin(settings.admin_api_key)
        return services
    except BaseException:
        await kv.close()
        await database.close()
        raise
