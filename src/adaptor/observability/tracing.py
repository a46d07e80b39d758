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
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_NOTHING: AbstractContextManager[None] = nullcontext()
_PROPAGATOR = TraceContextTextMapPropagator()


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
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
        provider.add_span_processor(BatchSpanProcessor(exporter))
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
        with contextlib.suppress(ValueError):
            otel_context.detach(self._token)  # type: ignore[arg-type]
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
