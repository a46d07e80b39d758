"""Each tenant's tool list, cached in process and kept fresh like the runtime cache.

The list is built from the tenant's enabled integrations on first use and kept until a change
notice names the tenant: directly from this process's integration service, and through the
same change notices on the shared store (`integration-changes`) that drop runtime entries in
every replica. A notice missed while the store was unreachable is covered by dropping
everything on (re)subscribing and by `ttl_s`, so a replica never lists a deleted endpoint for
long. Every drop tells the tenant's open `subscriptions/listen` streams that the tool list
changed (`notifications/tools/list_changed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import orjson
import structlog
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged

from adaptor.executions.runtime import CHANGES_CHANNEL
from adaptor.flights import Flights
from adaptor.integrations.service import IntegrationService
from adaptor.mcp.tools import TenantTools, build_tools
from adaptor.pagination import MAX_LIMIT
from adaptor.storage.kv import KeyValueStore

log = structlog.get_logger("adaptor.mcp")


class ToolCatalog:
    def __init__(
        self,
        integrations: IntegrationService,
        store: KeyValueStore,
        *,
        ttl_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.integrations = integrations
        self.store = store
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[str, tuple[float, TenantTools]] = {}
        self._epochs: dict[str, int] = {}
        self._buses: dict[str, InMemorySubscriptionBus] = {}
        self._listen_handlers: dict[str, ListenHandler] = {}
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._loading: Flights[str, TenantTools] = Flights()

    async def tools(self, tenant_id: str) -> TenantTools:
        entry = self._entries.get(tenant_id)
        if entry is not None and self._clock() - entry[0] < self.ttl_s:
            return entry[1]
        # One load per tenant at a time: the calls that find the list missing or stale while
        # it loads wait for that load instead of each reading every integration again.
        loading, _leader = self._loading.join(tenant_id, lambda: self._load(tenant_id))
        return await loading

    async def _load(self, tenant_id: str) -> TenantTools:
        epoch = self._epochs.get(tenant_id, 0)
        integrations = []
        cursor: str | None = None
        while True:
            page = await self.integrations.page(
                tenant_id, filters={"enabled": True}, cursor=cursor, limit=MAX_LIMIT
            )
            integrations.extend(page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        built = build_tools(integrations)
        if self._epochs.get(tenant_id, 0) == epoch:  # no change arrived while loading
            self._entries[tenant_id] = (self._clock(), built)
        return built

    def cached(self, tenant_id: str) -> TenantTools | None:
        """The tenant's list if it is cached and fresh (no I/O)."""
        entry = self._entries.get(tenant_id)
        if entry is not None and self._clock() - entry[0] < self.ttl_s:
            return entry[1]
        return None

    def listen_handler(self, tenant_id: str) -> ListenHandler:
        """The `subscriptions/listen` handler for the tenant's streams (only its own events)."""
        handler = self._listen_handlers.get(tenant_id)
        if handler is None:
            bus = self._buses[tenant_id] = InMemorySubscriptionBus()
            handler = self._listen_handlers[tenant_id] = ListenHandler(bus)
        return handler

    # change notices ---------------------------------------------------------------------------

    async def changed(self, tenant_id: str, integration_id: str) -> None:
        """An integration of the tenant changed in this process."""
        await self._forget(tenant_id)

    async def _forget(self, tenant_id: str) -> None:
        self._epochs[tenant_id] = self._epochs.get(tenant_id, 0) + 1
        self._entries.pop(tenant_id, None)
        self._loading.forget(tenant_id)  # a load under way may predate the change
        bus = self._buses.get(tenant_id)
        if bus is not None:
            await bus.publish(ToolsListChanged())

    async def _forget_all(self) -> None:
        for tenant_id in {*self._entries, *self._buses}:
            await self._forget(tenant_id)

    async def start(self) -> None:
        """Listen for change notices (returns once subscribed, or after 5 s without)."""
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="mcp-tool-changes")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._subscribed.wait(), timeout=5)

    async def close(self) -> None:
        for handler in self._listen_handlers.values():
            handler.close()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            try:
                async with self.store.subscribe(CHANGES_CHANNEL) as notices:
                    self._subscribed.set()
                    await self._forget_all()  # anything sent meanwhile may have been missed
                    delay = 0.1
                    async for raw in notices:
                        try:
                            await self._forget(str(orjson.loads(raw)["t"]))
                        except (orjson.JSONDecodeError, KeyError, TypeError):
                            await self._forget_all()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("mcp.change_listener_failed", error_type=type(exc).__name__)
                self._subscribed.set()
                await self._forget_all()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
