"""Every long-lived resource of one process, built once at start-up and closed at shutdown."""

from __future__ import annotations

import os
from dataclasses import dataclass

import structlog

from adaptor.auth_handlers import AuthContext, CustomHandlerRegistry
from adaptor.config import Settings
from adaptor.events.outbox import OutboxWriter
from adaptor.events.relay import EventRelay
from adaptor.events.sinks import sink_for
from adaptor.executions.logs import ExecutionLogWriter
from adaptor.executions.runtime import RuntimeCache
from adaptor.executions.service import ExecutionService
from adaptor.integrations.service import IntegrationService
from adaptor.keys.service import ApiKeyService
from adaptor.mapping import MappingEngine
from adaptor.marketplace.service import MarketplaceManager
from adaptor.mcp import McpService, ToolCatalog
from adaptor.oauth.service import OAuthService, OAuthTokenStore
from adaptor.observability.metrics import Metrics
from adaptor.observability.tracing import Tracing
from adaptor.protocols.http import AiohttpTransport
from adaptor.protocols.registry import AdapterOptions, default_registry
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
from adaptor.webhooks.service import WebhookService

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
    webhooks: WebhookService
    oauth: OAuthService
    mcp: McpService
    outbox: OutboxWriter
    relay: EventRelay | None = None
    tracing: Tracing | None = None
    vault: VaultSecrets | None = None
    generated_admin_key: str | None = None
    draining: bool = False
    """Set by the first stop signal: readiness answers 503 from then on."""
    marketplace: MarketplaceManager | None = None
    """The marketplace, while ENABLE_MARKETPLACE is on."""
    undecryptable_integrations: int = 0
    """Stored integrations whose secrets no configured key opens (counted at start-up)."""

    async def close(self) -> None:
        await self.mcp.catalog.close()
        await self.runtimes.close()
        await self.execution_logs.close()
        await self.outbox.close()
        if self.relay is not None:
            await self.relay.close()  # publishes what the two closes above wrote
        await self.transport.close()
        await self.kv.close()
        await self.database.close()
        if self.tracing is not None:
            self.tracing.shutdown()


def tracing_for(settings: Settings) -> Tracing:
    """OTLP export when OTEL_EXPORTER_OTLP_ENDPOINT is set, else tracing that does nothing."""
    if not settings.otel_exporter_otlp_endpoint:
        return Tracing()
    name = os.environ.get("OTEL_SERVICE_NAME") or settings.service_name
    return Tracing.otlp(settings.otel_exporter_otlp_endpoint, name)


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


async def build_services(settings: Settings, *, tracing: Tracing | None = None) -> Services:
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
        keys = ApiKeyService(database, production=settings.production)
        adapters = default_registry(
            AdapterOptions(
                pool_size=settings.connection_pool_size,
                file_roots=settings.file_root_list,
                max_file_bytes=settings.max_file_bytes,
                allow_private_networks=settings.allow_private_networks,
            )
        )
        integrations = IntegrationService(
            database,
            secret_box,
            mapping,
            adapters=adapters,
            vault=vault,
            default_timeout_ms=settings.default_timeout_ms,
        )
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

        metrics = Metrics()
        auth_context = AuthContext(
            transport,
            token_stores=token_store,
            custom_handlers=CustomHandlerRegistry(),
            on_token_request=lambda integration_id, ok: metrics.token_refreshed(
                integration_id, ok=ok
            ),
        )
        oauth = OAuthService(
            database,
            kv,
            secret_box,
            integrations,
            auth_context,
            public_base_url=settings.callback_base_url,
        )
        runtimes = RuntimeCache(
            integrations, mapping, transport, kv, adapters, auth_context=auth_context
        )
        oauth.listeners.append(runtimes.changed)
        log_writer = ExecutionLogWriter(database)
        outbox = OutboxWriter(database)
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
            outbox=outbox,
            tracing=tracing,
            default_budget_ms=settings.default_execution_budget_ms,
        )

        async def drop_cached_responses(tenant_id: str, integration_id: str) -> None:
            # Produced under the old configuration (mappings, base URL, credentials).
            await cache.invalidate(tenant_id, integration_id)

        tool_catalog = ToolCatalog(integrations, kv)
        integrations.listeners += [runtimes.changed, drop_cached_responses, tool_catalog.changed]
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
            webhooks=WebhookService(
                database, integrations, max_body_bytes=settings.max_webhook_bytes
            ),
            oauth=oauth,
            mcp=McpService(
                tool_catalog, executions, max_body_bytes=settings.max_request_body_bytes
            ),
            outbox=outbox,
            tracing=tracing,
            vault=vault,
        )
        if settings.events_url:
            services.relay = EventRelay(
                database,
                kv.without_fallback() if isinstance(kv, FailoverStore) else kv,
                sink_for(settings.events_url),
                metrics,
                source=f"/{settings.service_name}",
                lease_key=f"adaptor:events:relay:{settings.service_name}",
                retention_s=settings.events_retention_hours * 3600.0,
            )
            services.relay.start()
        if settings.enable_marketplace:
            services.marketplace = MarketplaceManager(
                database,
                integrations,
                executions,
                mapping,
                adapters,
                test_mode_enabled=settings.enable_test_mode,
                strict=not settings.production,
            )
            services.marketplace.load_builtin()
        services.undecryptable_integrations = await integrations.undecryptable_count()
        if services.undecryptable_integrations:
            log.error(
                "security.secrets_undecryptable",
                integrations=services.undecryptable_integrations,
                keys=secret_box.fingerprints,
                hint="their executions answer auth_failed: add the key they were stored with "
                "to ENCRYPTION_KEY (newest first), or send their secrets again",
            )
        log_writer.start()
        await runtimes.start()
        await tool_catalog.start()
        services.generated_admin_key = await keys.ensure_bootstrap_admin(settings.admin_api_key)
        return services
    except BaseException:
        await kv.close()
        await database.close()
        raise
