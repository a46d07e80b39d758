"""A custom adapter as a plugin package would ship it: the object of an `adaptor.integrations`
entry point (see `test_custom.py`, which installs a distribution declaring it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adaptor.auth_handlers.base import BaseAuthHandler
from adaptor.domain import IntegrationResponse, IntegrationSpec, RetryConfig
from adaptor.protocols.base import BaseIntegration, CallContext
from adaptor.protocols.registry import AdapterContext, AdapterOptions, Problem


class EchoIntegration(BaseIntegration):
    """Answers with the mapped body, its endpoint and the integration's `metadata.greeting`."""

    async def execute(
        self,
        endpoint: str,
        method: str,
        request_data: Mapping[str, Any] | None = None,
        timeout_ms: int | None = None,
        retry_config: RetryConfig | None = None,
        *,
        deadline: float | None = None,
        call: CallContext | None = None,
    ) -> IntegrationResponse:
        return IntegrationResponse(
            success=True,
            status_code=None,
            data={
                "greeting": self.config.metadata.get("greeting"),
                "endpoint": endpoint,
                "body": (request_data or {}).get("body"),
            },
        )


class EchoAdapterFactory:
    def validate(self, spec: IntegrationSpec, options: AdapterOptions) -> list[Problem]:
        if "greeting" not in spec.metadata:
            return [(("metadata", "greeting"), "is required by the echo adapter")]
        return []

    def create(
        self, spec: IntegrationSpec, auth: BaseAuthHandler, context: AdapterContext
    ) -> BaseIntegration:
        return EchoIntegration(spec)
