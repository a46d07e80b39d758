"""The adapter registry: which protocol adapter runs each `IntegrationType`.

The execution pipeline never names a protocol: the runtime cache asks the registry for the
adapter of an integration (`create`), and the integration service asks it, before anything is
saved, whether the configuration can run at all (`validate`): an integration type without an
adapter, or a configuration its adapter cannot use (a GraphQL document that does not parse, a
SQL statement with an unmapped parameter), is a located problem at save time, not a failure at
the first execution.

    registry = default_registry(AdapterOptions(pool_size=10))
    problems = registry.validate(spec)          # [(("type",), "..."), ...]
    adapter = registry.create(spec, auth_handler, transport)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from adaptor.domain import IntegrationSpec, IntegrationType
from adaptor.protocols.base import BaseIntegration
from adaptor.protocols.errors import UpstreamError
from adaptor.protocols.http import HttpTransport

if TYPE_CHECKING:
    from adaptor.auth_handlers.base import BaseAuthHandler

__all__ = [
    "AdapterContext",
    "AdapterFactory",
    "AdapterOptions",
    "AdapterRegistry",
    "Problem",
    "UnsupportedIntegrationType",
    "default_registry",
]

Problem = tuple[Sequence[str | int], str]
"""A configuration problem: its location in the integration document, and what is wrong."""


class UnsupportedIntegrationType(UpstreamError):
    """No adapter runs this integration type (a row stored before its type was refused)."""

    def __init__(self, integration_type: str) -> None:
        super().__init__(
            f"integration type {integration_type!r} cannot be executed by this service"
        )


@dataclass(frozen=True, slots=True)
class AdapterOptions:
    """Deployment values adapters are built with (taken from the settings when wiring)."""

    pool_size: int = 10
    """Connections one integration may hold open (database pools, broker channels)."""
    file_roots: tuple[str, ...] = ()
    """Directories `file://` integrations may use (FILE_ROOTS); none by default."""
    max_file_bytes: int = 50 * 1024 * 1024
    """The largest file a file-system integration reads (MAX_FILE_BYTES)."""
    allow_private_networks: bool = False
    """Whether non-HTTP adapters may connect to private and loopback hosts."""


@dataclass(frozen=True, slots=True)
class AdapterContext:
    """Shared infrastructure an adapter is built with."""

    transport: HttpTransport
    options: AdapterOptions


class AdapterFactory(Protocol):
    """Builds the adapter of one integration type, and checks a configuration for it."""

    def validate(self, spec: IntegrationSpec, options: AdapterOptions) -> list[Problem]:
        """Every problem that would keep `spec` from running (empty when it can run)."""
        ...

    def create(
        self, spec: IntegrationSpec, auth: BaseAuthHandler, context: AdapterContext
    ) -> BaseIntegration:
        """The adapter for `spec` (called only for a configuration that validated)."""
        ...


class AdapterRegistry:
    """`IntegrationType` → `AdapterFactory`."""

    def __init__(self, options: AdapterOptions | None = None) -> None:
        self.options = options or AdapterOptions()
        self._factories: dict[IntegrationType, AdapterFactory] = {}

    def register(self, integration_type: IntegrationType, factory: AdapterFactory) -> None:
        self._factories[integration_type] = factory

    def supported(self) -> list[IntegrationType]:
        """The types that have an adapter, in declaration order."""
        return [t for t in IntegrationType if t in self._factories]

    def validate(self, spec: IntegrationSpec) -> list[Problem]:
        """Problems that keep `spec` from running; first of all a type without an adapter."""
        factory = self._factories.get(spec.type)
        if factory is None:
            known = ", ".join(str(t) for t in self.supported())
            return [
                (
                    ("type",),
                    f"integration type {str(spec.type)!r} cannot be executed by this service "
                    f"(supported: {known})",
                )
            ]
        return factory.validate(spec, self.options)

    def reads_own_credentials(self, spec: IntegrationSpec) -> bool:
        """Whether the adapter of `spec` takes its credentials from `auth_config` itself (S3
        requests signed by aiobotocore), so it runs without an auth handler."""
        check = getattr(self._factories.get(spec.type), "reads_own_credentials", None)
        return bool(check is not None and check(spec))

    def create(
        self, spec: IntegrationSpec, auth: BaseAuthHandler, transport: HttpTransport
    ) -> BaseIntegration:
        """The adapter for `spec`; `UnsupportedIntegrationType` for a type without one."""
        factory = self._factories.get(spec.type)
        if factory is None:
            raise UnsupportedIntegrationType(str(spec.type))
        return factory.create(spec, auth, AdapterContext(transport, self.options))


def default_registry(options: AdapterOptions | None = None) -> AdapterRegistry:
    """A registry with every adapter this package ships."""
    from adaptor.protocols.custom import CustomAdapterFactory
    from adaptor.protocols.graphql import GraphQLAdapterFactory
    from adaptor.protocols.rest import RESTAdapterFactory
    from adaptor.protocols.webhook import WebhookAdapterFactory

    registry = AdapterRegistry(options)
    registry.register(IntegrationType.REST_API, RESTAdapterFactory())
    registry.register(IntegrationType.GRAPHQL, GraphQLAdapterFactory())
    registry.register(IntegrationType.WEBHOOK, WebhookAdapterFactory())
    registry.register(IntegrationType.CUSTOM, CustomAdapterFactory())
    # Databases, files and message queues.
    from adaptor.protocols.database import DatabaseAdapterFactory
    from adaptor.protocols.files import FileAdapterFactory
    from adaptor.protocols.queues import QueueAdapterFactory

    registry.register(IntegrationType.DATABASE, DatabaseAdapterFactory())
    registry.register(IntegrationType.FILE_SYSTEM, FileAdapterFactory())
    registry.register(IntegrationType.MESSAGE_QUEUE, QueueAdapterFactory())
    return registry
