"""Custom adapters (`type: custom`): protocol adapters from other packages, by entry point.

A package makes an adapter available by declaring an entry point in the group
`adaptor.integrations` whose object is an `AdapterFactory` (a class, instantiated without
arguments, or an instance):

    # the plugin's pyproject.toml
    [project.entry-points."adaptor.integrations"]
    ldap = "acme_ldap.adapter:LDAPAdapterFactory"

and an integration chooses it by that name in `custom_adapter`:

    {"type": "custom", "custom_adapter": "ldap", ...}

At save time the name must be one of the installed entry points (else a 422 at
`custom_adapter` listing the known ones) and the plugin's own `validate` runs; the runtime
cache builds the adapter through the plugin's `create`. Entry points are read when a
configuration is checked or built, so a plugin installed into the environment is found
without a code change here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Final

import structlog

from adaptor.domain import IntegrationSpec
from adaptor.protocols.base import BaseIntegration
from adaptor.protocols.errors import UpstreamError
from adaptor.protocols.registry import UnsupportedIntegrationType

if TYPE_CHECKING:
    from adaptor.auth_handlers.base import BaseAuthHandler
    from adaptor.protocols.registry import AdapterContext, AdapterFactory, AdapterOptions, Problem

__all__ = ["ENTRY_POINT_GROUP", "CustomAdapterFactory", "CustomAdapterUnavailable"]

ENTRY_POINT_GROUP: Final = "adaptor.integrations"

log = structlog.get_logger("adaptor.protocols.custom")


class CustomAdapterUnavailable(UnsupportedIntegrationType):
    """The integration's custom adapter is not installed (any more) or cannot be built."""

    def __init__(self, message: str) -> None:
        UpstreamError.__init__(self, message)


class CustomAdapterFactory:
    """Builds the adapter an integration names in `custom_adapter`, from the entry point of
    that name in `adaptor.integrations`.

    `discover` lists the entry points (the installed distributions' by default), so a test or
    an embedding application can pass its own.
    """

    def __init__(
        self,
        group: str = ENTRY_POINT_GROUP,
        *,
        discover: Callable[[], Iterable[EntryPoint]] | None = None,
    ) -> None:
        self.group = group
        self._discover = discover or (lambda: entry_points(group=group))
        self._loaded: dict[tuple[str, str], AdapterFactory] = {}

    def known(self) -> dict[str, EntryPoint]:
        """The adapters installed now, by name."""
        return {point.name: point for point in self._discover()}

    def validate(self, spec: IntegrationSpec, options: AdapterOptions) -> list[Problem]:
        known = self.known()
        names = ", ".join(sorted(known)) or f"none: no package declares a {self.group} entry point"
        if not spec.custom_adapter:
            return [(("custom_adapter",), f"is required for type custom (installed: {names})")]
        point = known.get(spec.custom_adapter)
        if point is None:
            return [
                (
                    ("custom_adapter",),
                    f"no custom adapter named {spec.custom_adapter!r} is installed "
                    f"(installed: {names})",
                )
            ]
        try:
            factory = self._load(point)
        except Exception as exc:
            return [
                (
                    ("custom_adapter",),
                    f"the custom adapter {point.name!r} ({point.value}) could not be loaded: "
                    f"{type(exc).__name__}",
                )
            ]
        return factory.validate(spec, options)

    def create(
        self, spec: IntegrationSpec, auth: BaseAuthHandler, context: AdapterContext
    ) -> BaseIntegration:
        name = spec.custom_adapter or ""
        point = self.known().get(name)
        if point is None:
            raise CustomAdapterUnavailable(f"the custom adapter {name!r} is not installed")
        try:
            adapter = self._load(point).create(spec, auth, context)
        except Exception as exc:
            log.warning("protocols.custom_adapter_failed", name=name, error_type=type(exc).__name__)
            raise CustomAdapterUnavailable(
                f"the custom adapter {name!r} could not be built: {type(exc).__name__}"
            ) from exc
        if not isinstance(adapter, BaseIntegration):
            raise CustomAdapterUnavailable(
                f"the custom adapter {name!r} did not build a BaseIntegration"
            )
        return adapter

    def _load(self, point: EntryPoint) -> AdapterFactory:
        key = (point.name, point.value)
        factory = self._loaded.get(key)
        if factory is None:
            loaded: Any = point.load()
            factory = loaded() if isinstance(loaded, type) else loaded
            if not (
                callable(getattr(factory, "validate", None))
                and callable(getattr(factory, "create", None))
            ):
                raise TypeError(f"{point.value} is not an adapter factory (validate, create)")
            self._loaded[key] = factory
            log.info("protocols.custom_adapter_loaded", name=point.name, value=point.value)
        return factory
