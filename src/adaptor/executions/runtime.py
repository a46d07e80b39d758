"""Ready-to-run integrations: configuration, compiled mappings and adapter, cached in process.

Loading an integration decrypts its secrets, compiles every JMESPath expression, JSON Schema
and summary template, and builds its protocol adapter through the `AdapterRegistry`; that
happens once, not per call. A dropped entry's adapter is closed after a grace period, so calls
still holding it finish first. The cache is
dropped entry by entry when an integration changes: directly in the process that changed it,
and through a change notice on the shared store in every other replica. A periodic version
check catches a notice that was missed (a Redis reconnect), so no replica keeps running a
deleted or disabled integration for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from adaptor.auth_handlers import AuthContext, BaseAuthHandler, create_auth_handler
from adaptor.auth_handlers.base import AuthConfigurationError, UnsupportedAuthType
from adaptor.auth_handlers.simple import NoAuthHandler
from adaptor.connectors import Quota, connector_factory
from adaptor.domain import EndpointConfig, IntegrationConfig
from adaptor.flights import Flights
from adaptor.integrations.service import IntegrationService
from adaptor.mapping import CompiledEndpoint, MappingConfigError, MappingEngine
from adaptor.protocols.base import BaseIntegration
from adaptor.protocols.errors import UpstreamError
from adaptor.protocols.http import HttpTransport
from adaptor.protocols.pagination import Paginator
from adaptor.protocols.registry import AdapterRegistry, UnsupportedIntegrationType
from adaptor.resilience.breaker import CircuitBreaker
from adaptor.storage.kv import KeyValueStore

log = structlog.get_logger("adaptor.executions.runtime")

CHANGES_CHANNEL = "integration-changes"

QuotaReader = Callable[[Any, Mapping[str, str]], Quota | None]


@dataclass(slots=True)
class EndpointRuntime:
    config: EndpointConfig
    compiled: CompiledEndpoint
    invalidates: tuple[str, ...] = ()
    """Endpoints whose cached responses a success of this one drops (their `invalidate_on`)."""
    pager: Paginator | None = None
    """How to follow the endpoint's pages, when it has `pagination`."""


@dataclass(slots=True)
class IntegrationRuntime:
    config: IntegrationConfig
    endpoints: dict[str, EndpointRuntime]
    adapter: BaseIntegration | None
    adapter_error: UpstreamError | None
    """Why there is no adapter (unusable credentials, a type that cannot run): every
    execution answers with its code and message."""
    breaker: CircuitBreaker
    secrets: list[str]
    loaded_at: float = field(default_factory=time.monotonic)
    upstream_limited: bool = False
    """The upstream has reported an exhausted quota: check its pause before calling."""
    quota: QuotaReader | None = None
    """The connector's reader of the upstream's remaining quota, for marketplace installs
    whose vendor reports it in its own way."""

    @property
    def integration_id(self) -> str:
        return self.config.integration_id


class RuntimeCache:
    """`(tenant, integration) → IntegrationRuntime`, kept fresh across replicas."""

    def __init__(
        self,
        integrations: IntegrationService,
        mapping: MappingEngine,
        transport: HttpTransport,
        store: KeyValueStore,
        adapters: AdapterRegistry,
        *,
        revalidate_after_s: float = 30.0,
        retire_grace_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        auth_context: AuthContext | None = None,
    ) -> None:
        self.integrations = integrations
        self.auth_context = auth_context or AuthContext(transport)
        self.mapping = mapping
        self.transport = transport
        self.store = store
        self.adapters = adapters
        self.revalidate_after_s = revalidate_after_s
        self.retire_grace_s = retire_grace_s
        """How long a replaced adapter stays open for the calls that still hold it."""
        self._clock = clock
        self._entries: dict[tuple[str, str], IntegrationRuntime] = {}
        self._loading: Flights[tuple[str, str], IntegrationRuntime] = Flights()
        self._revalidating: Flights[tuple[str, str], None] = Flights()
        self._listener: asyncio.Task[None] | None = None
        self._epoch = 0  # bumped on every drop, so a load that raced a change is not kept
        self._first_attempt = asyncio.Event()  # set once the listener subscribed or failed to
        self._closing: dict[asyncio.Task[None], BaseIntegration] = {}

    async def get(self, tenant_id: str, integration_id: str) -> IntegrationRuntime:
        """The runtime for one of the tenant's integrations (NotFound if it has none)."""
        key = (tenant_id, integration_id)
        entry = self._entries.get(key)
        if entry is not None:
            if self._clock() - entry.loaded_at >= self.revalidate_after_s:
                # The version is checked in the background, once: this call and the ones
                # meanwhile use the entry (as they would have until a change notice), and
                # none of them waits for the database.
                entry.loaded_at = self._clock()
                self._revalidating.launch(key, lambda: self._revalidate(entry))
            return entry
        loading, _leader = self._loading.join(key, lambda: self._load(tenant_id, integration_id))
        return await loading

    async def _revalidate(self, entry: IntegrationRuntime) -> None:
        """Drop `entry` if its integration changed (or cannot be read) since it was loaded:
        the safety net under change notices, for one that was missed."""
        if await self._still_current(entry):
            entry.loaded_at = self._clock()
            return
        key = (entry.config.tenant_id, entry.integration_id)
        if self._entries.get(key) is entry:
            self.forget(*key)

    async def _still_current(self, entry: IntegrationRuntime) -> bool:
        try:
            current = await self.integrations.get(entry.config.tenant_id, entry.integration_id)
        except Exception:
            return False
        return current.version == entry.config.version

    async def _load(self, tenant_id: str, integration_id: str) -> IntegrationRuntime:
        epoch = self._epoch
        loaded = await self.integrations.load(tenant_id, integration_id)
        runtime = self.build(loaded.config, loaded.secrets, secrets_error=loaded.secrets_error)
        if epoch == self._epoch:
            self._entries[(tenant_id, integration_id)] = runtime
        return runtime

    def build(
        self, config: IntegrationConfig, secrets: list[str], *, secrets_error: str | None = None
    ) -> IntegrationRuntime:
        """Compile everything one integration needs to execute (no I/O). With `secrets_error`
        (its secrets could not be decrypted) every call answers `auth_failed` with it."""
        endpoints: dict[str, EndpointRuntime] = {}
        for name, endpoint in config.endpoints.items():
            try:
                compiled = self.mapping.compile_endpoint(endpoint)
            except MappingConfigError as exc:  # saved before a stricter check existed
                log.warning(
                    "executions.endpoint_unusable",
                    integration_id=config.integration_id,
                    endpoint=name,
                    problems=len(exc.problems),
                )
                continue
            pager = (
                Paginator(endpoint.pagination, self.mapping.compile_expression, config.base_url)
                if endpoint.pagination is not None
                else None
            )
            endpoints[name] = EndpointRuntime(endpoint, compiled, pager=pager)
        for name, runtime in endpoints.items():
            runtime.invalidates = tuple(
                other
                for other, candidate in endpoints.items()
                if candidate.config.cache_config is not None
                and name in candidate.config.cache_config.invalidate_on
            )
        marketplace = config.metadata.get("marketplace")
        hook = connector_factory(
            marketplace.get("item_id") if isinstance(marketplace, dict) else None
        )
        adapter: BaseIntegration | None = None
        adapter_error: UpstreamError | None = None
        try:
            if secrets_error is not None:
                log.error("executions.secrets_undecryptable", integration_id=config.integration_id)
                raise AuthConfigurationError(secrets_error)
            handler: BaseAuthHandler = create_auth_handler(
                config.auth_config,
                self.auth_context.for_integration(
                    config, base_url_from_token=hook.base_url_from_token
                ),
            )
            adapter = self.adapters.create(config, handler, self.transport)
        except UnsupportedAuthType as exc:
            if self.adapters.reads_own_credentials(config):
                adapter = self.adapters.create(config, NoAuthHandler(), self.transport)
            else:
                adapter_error = exc
        except (AuthConfigurationError, UnsupportedIntegrationType) as exc:
            adapter_error = exc
        breaker_config = config.circuit_breaker
        breaker = CircuitBreaker(
            self.store,
            config.integration_id,
            failure_threshold=breaker_config.failure_threshold,
            recovery_timeout_s=breaker_config.recovery_timeout_s,
            half_open_max_probes=breaker_config.half_open_max_probes,
        )
        return IntegrationRuntime(
            quota=hook.upstream_quota if hook.reads_quota else None,
            config=config,
            endpoints=endpoints,
            adapter=adapter,
            adapter_error=adapter_error,
            breaker=breaker,
            secrets=secrets,
            loaded_at=self._clock(),
        )

    # change notices ---------------------------------------------------------------------------

    def forget(self, tenant_id: str, integration_id: str) -> None:
        """Drop one integration; a load already under way is not reused (it may predate the
        change), so the next `get` reads the configuration again."""
        self._epoch += 1
        self._retire(self._entries.pop((tenant_id, integration_id), None))
        self._loading.forget((tenant_id, integration_id))

    def forget_all(self) -> None:
        self._epoch += 1
        for entry in self._entries.values():
            self._retire(entry)
        self._entries.clear()
        self._loading.clear()

    def _retire(self, entry: IntegrationRuntime | None) -> None:
        """Close a dropped entry's adapter once the calls still using it had time to end."""
        if entry is None or entry.adapter is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: nothing of the adapter's can be open either
            return
        adapter = entry.adapter
        task = loop.create_task(self._close_later(adapter))
        self._closing[task] = adapter
        task.add_done_callback(lambda done: self._closing.pop(done, None))

    async def _close_later(self, adapter: BaseIntegration) -> None:
        await asyncio.sleep(self.retire_grace_s)
        await self._close_adapter(adapter)

    @staticmethod
    async def _close_adapter(adapter: BaseIntegration) -> None:
        try:
            await adapter.close()
        except Exception as exc:
            log.warning("executions.adapter_close_failed", error_type=type(exc).__name__)

    async def changed(self, tenant_id: str, integration_id: str) -> None:
        """An integration changed here: drop it locally and tell every other replica."""
        self.forget(tenant_id, integration_id)
        try:
            await self.store.publish(
                CHANGES_CHANNEL, orjson.dumps({"t": tenant_id, "i": integration_id})
            )
        except Exception as exc:
            log.warning("executions.change_notice_failed", error_type=type(exc).__name__)

    async def start(self) -> None:
        """Listen for other replicas' change notices (returns once subscribed, or at once if
        the store is unreachable: the listener keeps retrying, and the service runs meanwhile)."""
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="integration-changes")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._first_attempt.wait(), timeout=5)

    async def close(self) -> None:
        """Stop listening and close every adapter (at shutdown, after the last call)."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        adapters = list(self._closing.values())  # retired, still in their grace period
        for task in list(self._closing):
            task.cancel()
        adapters += [e.adapter for e in self._entries.values() if e.adapter is not None]
        self._entries.clear()
        self._loading.clear()
        self._revalidating.cancel()
        for adapter in adapters:
            await self._close_adapter(adapter)

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            try:
                async with self.store.subscribe(CHANGES_CHANNEL) as notices:
                    self._first_attempt.set()
                    # Anything published while we were not listening may have been missed.
                    self.forget_all()
                    delay = 0.1
                    async for raw in notices:
                        self._on_notice(raw)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("executions.change_listener_failed", error_type=type(exc).__name__)
                self._first_attempt.set()
                self.forget_all()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _on_notice(self, raw: bytes) -> None:
        try:
            notice = orjson.loads(raw)
            self.forget(str(notice["t"]), str(notice["i"]))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.forget_all()
