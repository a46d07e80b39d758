"""What every protocol adapter is, and the seams it is wired with."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from adaptor.domain import IntegrationResponse, IntegrationSpec, RetryConfig

__all__ = ["BaseIntegration"]


class BaseIntegration(ABC):
    """A protocol adapter: turns one mapped request into an `IntegrationResponse`.

    Adapters are built per integration from its configuration and shared infrastructure passed
    in (transport, auth handler, retry runner); they hold no per-call state, so one instance
    serves concurrent executions. Failures are raised as `UpstreamError`s whose `code` becomes
    the execution's error code.
    """

    def __init__(self, config: IntegrationSpec) -> None:
        self.config = config

    @property
    def name(self) -> str:
        """The integration's name, for logs."""
        return self.config.name

    @abstractmethod
    async def execute(
        self,
        endpoint: str,
        method: str,
        request_data: Mapping[str, Any] | None = None,
        timeout_ms: int | None = None,
        retry_config: RetryConfig | None = None,
    ) -> IntegrationResponse:
        """Call `endpoint` with `method` and the mapped `request_data`."""
