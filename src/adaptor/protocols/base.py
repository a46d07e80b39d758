"""What every protocol adapter is, and the seams it is wired with."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adaptor.domain import EndpointConfig, IntegrationResponse, IntegrationSpec, RetryConfig

__all__ = ["BaseIntegration", "CallContext"]


@dataclass(frozen=True, slots=True)
class CallContext:
    """What an adapter may need about the call beyond the mapped request data.

    `endpoint` is the endpoint's whole configuration (a SQL statement or GraphQL document in
    `query`, `max_rows`, a file `format`...); `request_id` identifies the execution, and stays
    the same across retries, so adapters use it where a peer can deduplicate (a webhook id, a
    message id, an idempotency key).
    """

    endpoint: EndpointConfig
    request_id: str


class BaseIntegration(ABC):
    """A protocol adapter: turns one mapped request into an `IntegrationResponse`.

    Adapters are built per integration (by the `AdapterRegistry`) from its configuration and
    shared infrastructure passed in (transport, auth handler); they hold no per-call state, so
    one instance serves concurrent executions, and `close()` releases what they opened (pools,
    broker connections) when the integration changes or the service stops.

    Failures are raised as `UpstreamError`s (`adaptor.protocols.errors`): their class and `code`
    are what the pipeline's one policy table reads to decide on retrying, the circuit breaker
    and the execution's error code, whatever the protocol.
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
        *,
        deadline: float | None = None,
        call: CallContext | None = None,
    ) -> IntegrationResponse:
        """Call `endpoint` (the endpoint's path template) with `method` and the mapped
        `request_data` (`path_params`, `query_params`, `headers`, `body`).

        `timeout_ms` bounds the attempt, `deadline` (a `time.monotonic()` value) the whole
        call; `call` carries the endpoint's configuration and the execution's request id.
        """

    def repeats_safely(self, endpoint: EndpointConfig) -> bool:
        """Whether a failed call of `endpoint` may be sent again although its HTTP method is
        not idempotent (POST, PATCH).

        The retry policy still decides whether a failure is worth retrying; this only says
        whether repeating the call is harmless. By default it is when the endpoint says its
        upstream deduplicates (`retry_non_idempotent`); adapters that make every call
        repeatable (a webhook delivery with a stable id) or that know the call is a read (a
        GraphQL query) say so.
        """
        return endpoint.retry_non_idempotent

    async def close(self) -> None:
        """Release connections or pools this adapter opened (none by default); safe to call
        more than once."""
        return None
