"""Named auth handlers for `auth_config.type: custom`, chosen by `custom_handler`.

`aws_sigv4` is built in. A third party adds one by publishing a Python entry point in the group
`adaptor.auth_handlers` whose object is a `CustomHandlerFactory`: a callable taking the
integration's `AuthConfig` and bound `AuthContext` and returning a `BaseAuthHandler`
(a handler class with that constructor qualifies):

    [project.entry-points."adaptor.auth_handlers"]
    hmac_v2 = "acme_auth:HmacV2Handler"
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import entry_points

import structlog

from adaptor.auth_handlers.base import AuthConfigurationError, BaseAuthHandler
from adaptor.auth_handlers.sigv4 import AWSSigV4Handler
from adaptor.auth_handlers.tokens import AuthContext
from adaptor.domain import AuthConfig

__all__ = ["ENTRY_POINT_GROUP", "CustomHandlerFactory", "CustomHandlerRegistry"]

log = structlog.get_logger("adaptor.auth.custom")

ENTRY_POINT_GROUP = "adaptor.auth_handlers"

CustomHandlerFactory = Callable[[AuthConfig, AuthContext], BaseAuthHandler]

_BUILT_IN: dict[str, CustomHandlerFactory] = {"aws_sigv4": AWSSigV4Handler}


class CustomHandlerRegistry:
    """The custom handlers this process knows: the built-in ones, then entry points (loaded
    once, on first use; a built-in name cannot be taken over)."""

    def __init__(
        self,
        handlers: Mapping[str, CustomHandlerFactory] | None = None,
        *,
        load_entry_points: bool = True,
    ) -> None:
        self._handlers: dict[str, CustomHandlerFactory] = dict(_BUILT_IN)
        self._handlers.update(handlers or {})
        self._entry_points_loaded = not load_entry_points

    def register(self, name: str, factory: CustomHandlerFactory) -> None:
        self._handlers[name] = factory

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._load_entry_points()
        return sorted(self._handlers)

    def create(self, name: str, auth_config: AuthConfig, context: AuthContext) -> BaseAuthHandler:
        self._load_entry_points()
        factory = self._handlers.get(name)
        if factory is None:
            raise AuthConfigurationError(
                f"custom_handler {name!r} is not registered (known: {', '.join(self.names())})"
            )
        return factory(auth_config, context)

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for point in entry_points(group=ENTRY_POINT_GROUP):
            if point.name in _BUILT_IN:
                log.warning("auth.custom.name_taken", name=point.name)
                continue
            try:
                self._handlers[point.name] = point.load()
            except Exception as exc:
                log.warning(
                    "auth.custom.entry_point_failed", name=point.name, error_type=type(exc).__name__
                )
