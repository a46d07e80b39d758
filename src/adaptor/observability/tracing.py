"""OpenTelemetry traces of executions, exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT
is set, and nothing at all when it is not.

    adaptor.execute                 one per execution: integration, endpoint, outcome, retries
    ├── adaptor.map_request
    ├── adaptor.cache               the lookup (on a miss the call runs inside it)
    ├── adaptor.call                breaker, retries, rate limit and the upstream request(s)
    │   ├── adaptor.limit
    │   └── HTTP GET                one per attempt; the request carries `traceparent`
    └── adaptor.map_response

Spans carry ids, names, outcomes and status codes, never secrets or payloads. A caller's
`traceparent` (W3C Trace Context) is taken by `TraceContextMiddleware`, so an execution joins
the caller's trace. Disabled, `stage()` hands back one shared no-op context manager and
`propagate()` returns the request unchanged: the execute path pays an attribute check.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import (
    Link,
    Span,
    SpanKind,
    Status,
    StatusCode,
    Tracer,
    get_current_span,
    set_span_in_context,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_NOTHING: AbstractContextManager[None] = nullcontext()
_PROPAGATOR = TraceContextTextMapPropagator()

BATCH_DEFAULTS = {
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": 2048,
    "OTEL_BSP_MAX_QUEUE_SIZE": 8192,
    "OTEL_BSP_SCHEDULE_DELAY": 5000,
}
"""The batch processor's settings unless the environment sets them: an execution is seven
spans, so the SDK's batches of 512 would mean an export request every 73 executions; batches of
2048 cost a quarter of the requests, and the queue holds four batches (about 1 200 executions)
while one is sent."""


class ParentOrAlwaysOn(Sampler):
    """The SDK's default sampler, `ParentBased(ALWAYS_ON)`, in one step: a span is sampled
    unless its parent (local or the caller's) says it is not. The parent's trace state is kept."""

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = get_current_span(parent_context).get_span_context()
        if not parent.is_valid:
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
        if not parent.trace_flags.sampled:
            return SamplingResult(Decision.DROP, None, parent.trace_state)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, parent.trace_state)

    def get_description(self) -> str:
        return "ParentOrAlwaysOn"


class FixedResource(Resource):
    """A `Resource` that computes its hash once: the OTLP encoder groups every exported span
    by resource, and `Resource.__hash__` serialises the attributes to JSON on each call."""

    def __init__(self, attributes: Any, schema_url: str | None = None) -> None:
        super().__init__(attributes, schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return other is self or super().__eq__(other)


class Tracing:
    """Spans for the execute path; `Tracing(None)` (the default) does nothing."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self.provider = provider
        self.enabled = provider is not None
        self._tracer: Tracer | None = (
            provider.get_tracer("adaptor-service") if provider is not None else None
        )

    @classmethod
    def otlp(cls, endpoint: str, service_name: str) -> Tracing:
        """Batches of spans to the OTLP/HTTP collector at `endpoint` (`…/v1/traces`)."""
        from adaptor.observability.otlp import WireOTLPSpanExporter

        created = Resource.create({"service.name": service_name})
        exporter = WireOTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
        batch = {name: int(os.environ.get(name) or value) for name, value in BATCH_DEFAULTS.items()}
        processor = BatchSpanProcessor(
            exporter,
            max_queue_size=batch["OTEL_BSP_MAX_QUEUE_SIZE"],
            schedule_delay_millis=batch["OTEL_BSP_SCHEDULE_DELAY"],
            max_export_batch_size=batch["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"],
        )
        # The one processor is the provider's own (not one in a list of processors that every
        # span's start and end loop over).
        provider = TracerProvider(
            resource=FixedResource(created.attributes, created.schema_url),
            # OTEL_TRACES_SAMPLER, when set, is the SDK's to read.
            sampler=None if os.environ.get("OTEL_TRACES_SAMPLER") else ParentOrAlwaysOn(),
            active_span_processor=processor,  # type: ignore[arg-type]
        )
        return cls(provider)

    def _span(self, name: str, kind: SpanKind, attributes: dict[str, Any] | None) -> _SpanScope:
        assert self._tracer is not None
        return _SpanScope(self._tracer.start_span(name, kind=kind, attributes=attributes))

    def execution(self, integration_id: str, endpoint: str) -> AbstractContextManager[Span | None]:
        """The span of one execution (None when disabled)."""
        if self._tracer is None:
            return _NOTHING
        return self._span(
            "adaptor.execute",
            SpanKind.SERVER,
            {"adaptor.integration_id": integration_id, "adaptor.endpoint": endpoint},
        )

    def stage(self, name: str) -> AbstractContextManager[Span | None]:
        """A child span for one pipeline stage (`map_request`, `cache`, `call`, ...)."""
        if self._tracer is None:
            return _NOTHING
        return self._span(f"adaptor.{name}", SpanKind.INTERNAL, None)

    def upstream_request(self, method: str, path: str) -> AbstractContextManager[Span | None]:
        """A client span for one request to the upstream (`path` is the endpoint's template,
        never the filled-in URL or its query)."""
        if self._tracer is None:
            return _NOTHING
        return self._span(
            f"HTTP {method}",
            SpanKind.CLIENT,
            {"http.request.method": method, "url.template": path},
        )

    def propagate(self, request_data: dict[str, Any]) -> dict[str, Any]:
        """The mapped request with `traceparent` for the current span (a copy), when tracing."""
        if self._tracer is None:
            return request_data
        headers = dict(request_data.get("headers") or {})
        _PROPAGATOR.inject(headers)
        return {**request_data, "headers": headers}

    @staticmethod
    def finished(span: Span | None, result: dict[str, Any]) -> None:
        """Attributes of the execution's outcome on its span."""
        if span is None:
            return
        error = result.get("error")
        outcome = error["code"] if error else "ok"
        span.set_attribute("adaptor.outcome", outcome)
        span.set_attribute("adaptor.retries", result.get("retries", 0))
        span.set_attribute("adaptor.cached", bool(result.get("cached")))
        status_code = (result.get("metadata") or {}).get("status_code")
        if status_code is not None:
            span.set_attribute("http.response.status_code", status_code)
        if error:
            span.set_status(Status(StatusCode.ERROR, outcome))

    @staticmethod
    def answered(span: Span | None, status_code: int | None, retries: int) -> None:
        """Attributes of one upstream answer on its client span."""
        if span is None:
            return
        if status_code is not None:
            span.set_attribute("http.response.status_code", status_code)
        span.set_attribute("adaptor.retries", retries)

    def shutdown(self) -> None:
        """Export what is buffered and stop the exporter's thread."""
        if self.provider is not None:
            self.provider.shutdown()


class _SpanScope:
    """A started span made current for a block and ended after it (cheaper than the SDK's
    generator-based `start_as_current_span`). Exceptions are recorded by type only: their
    messages may quote an upstream's answer."""

    __slots__ = ("_token", "span")

    def __init__(self, span: Span) -> None:
        self.span = span
        self._token: object = None

    def __enter__(self) -> Span:
        self._token = otel_context.attach(set_span_in_context(self.span))
        return self.span

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if kind is not None:
            self.span.set_attribute("error.type", kind.__name__)
            self.span.set_status(Status(StatusCode.ERROR, kind.__name__))
        try:
            otel_context.detach(self._token)  # type: ignore[arg-type]
        except ValueError:  # ended in another context than the one it started in
            pass
        self.span.end()


class TraceContextMiddleware:
    """Makes a caller's `traceparent`/`tracestate` the parent of whatever the request does.

    Installed only when tracing is enabled (so a request without tracing pays nothing).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in (b"traceparent", b"tracestate")
        }
        if not carrier:
            await self.app(scope, receive, send)
            return
        token = otel_context.attach(_PROPAGATOR.extract(carrier))
        try:
            await self.app(scope, receive, send)
        finally:
            with contextlib.suppress(ValueError):
                otel_context.detach(token)
