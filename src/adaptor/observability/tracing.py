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

Enabled, the spans are `Tracing`'s own light spans (not the SDK `Tracer`'s), handed when they
end to the SDK's `BatchSpanProcessor`, whose exporter is the SDK's OTLP/HTTP exporter with our
own protobuf encoder (`adaptor.observability.otlp`). Both replace SDK parts for their CPU:
with them, `bench/tracing_micro.py` measures about 100-115 µs added per execution of seven
spans instead of 370-450 µs (an untraced execution costs about 1 100 µs in the service); see
`Tracing` and the encoder's module for the parts.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import random
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from contextvars import Token
from time import time_ns
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.environment_variables import OTEL_SDK_DISABLED
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import (
    Event,
    ReadableSpan,
    SpanLimits,
    SpanProcessor,
    TracerProvider,
)
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    get_current_span,
    set_span_in_context,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import AnyValue, Attributes

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_logger = logging.getLogger(__name__)
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
    """Spans for the execute path, handed to one span processor when they end.

    `Tracing()` (the default) does nothing. `Tracing(processor, sampler=..., resource=...)`
    records the spans the sampler keeps and hands each, ended, to `processor.on_end` as the
    SDK's `ReadableSpan` (the SDK's `BatchSpanProcessor`, `SimpleSpanProcessor` and their
    exporters take them as they are). Without a sampler, the SDK's choice from the environment
    (`OTEL_TRACES_SAMPLER`, else `ParentBased(ALWAYS_ON)`); without a resource, the SDK's
    `Resource.create({})`. `OTEL_SDK_DISABLED=true` disables it, as it does the SDK.

    The spans are our own rather than the SDK's `Tracer`'s for their CPU: on the executions of
    `bench/tracing_micro.py` (seven spans each, a batch processor with an exporter that sends
    nothing), the SDK's span machinery (`Tracer.start_span`, `Span.__init__` with its
    `BoundedAttributes`, lock and `BoundedList`s, `Span.end`, `_readable_span`) cost about
    148 µs per execution, these spans about 36 µs. With the encoder of `otlp.py`, the tracing
    added to an execution in that benchmark went from 370-450 µs to about 100-115 µs, within the
    160 µs the 1.15x CPU gate leaves an execution of about 1 100 µs.

    A `_RecordedSpan` is one slotted object per span: ids from `random.getrandbits`, plain dict
    attributes (the SDK's `BoundedAttributes` only when a limit or an unusual value calls for
    it), and it is itself the `ReadableSpan` the processor gets. Processors are called on end
    only (`on_start` and `_on_ending` of the SDK's processors do nothing), and the SDK's
    internal span metrics (`OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED`) are not recorded.
    """

    def __init__(
        self,
        processor: SpanProcessor | None = None,
        *,
        sampler: Sampler | None = None,
        resource: Resource | None = None,
    ) -> None:
        self.processor = None if _sdk_disabled() else processor
        self.enabled = self.processor is not None
        self.sampler: Sampler = sampler or ParentOrAlwaysOn()
        self.resource: Resource = resource or Resource.get_empty()
        self.scope = InstrumentationScope("adaptor-service", "", None, None)
        self.limits = SpanLimits()
        self._on_end: Callable[[ReadableSpan], None] = _ignore
        self._own_sampler = False
        self._room = 0
        if self.processor is None:
            return
        if sampler is None:
            # The SDK's sampler from OTEL_TRACES_SAMPLER, resolved as its TracerProvider does.
            self.sampler = TracerProvider(shutdown_on_exit=False).sampler
        if resource is None:
            self.resource = Resource.create({})
        self._on_end = self.processor.on_end
        self._own_sampler = type(self.sampler) is ParentOrAlwaysOn
        # How many attributes a span keeps in a plain dict; -1: every value is the SDK's
        # `BoundedAttributes`' to clean, since string values have a length limit.
        limits = self.limits
        self._room = (
            (limits.max_span_attributes if limits.max_span_attributes is not None else 1 << 62)
            if limits.max_span_attribute_length is None
            else -1
        )
        atexit.register(self.shutdown)

    @classmethod
    def otlp(cls, endpoint: str, service_name: str) -> Tracing:
        """Batches of spans to the OTLP/HTTP collector at `endpoint` (`…/v1/traces`)."""
        from adaptor.observability.otlp import WireOTLPSpanExporter

        if _sdk_disabled():  # no exporter thread for spans that would never be made
            return cls()
        created = Resource.create({"service.name": service_name})
        exporter = WireOTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
        batch = {name: int(os.environ.get(name) or value) for name, value in BATCH_DEFAULTS.items()}
        processor = BatchSpanProcessor(
            exporter,
            max_queue_size=batch["OTEL_BSP_MAX_QUEUE_SIZE"],
            schedule_delay_millis=batch["OTEL_BSP_SCHEDULE_DELAY"],
            max_export_batch_size=batch["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"],
        )
        return cls(
            processor,
            # OTEL_TRACES_SAMPLER, when set, is the SDK's to read.
            sampler=None if os.environ.get("OTEL_TRACES_SAMPLER") else ParentOrAlwaysOn(),
            resource=FixedResource(created.attributes, created.schema_url),
        )

    def _span(
        self, name: str, kind: SpanKind, attributes: dict[str, Any] | None
    ) -> AbstractContextManager[Span]:
        context = otel_context.get_current()
        current = get_current_span(context).get_span_context()
        # A SpanContext is the tuple (trace_id, span_id, is_remote, flags, state, is_valid).
        trace_id, _, _, flags, parent_state, valid = current
        parent: SpanContext | None = None
        trace_state: TraceState | None = None
        if valid:
            parent = current
            random_flag = flags & TraceFlags.RANDOM_TRACE_ID
            sampled = bool(flags & TraceFlags.SAMPLED)
            trace_state = parent_state
        else:
            trace_id = _getrandbits(128) or 1
            random_flag = TraceFlags.RANDOM_TRACE_ID
            sampled = True
        if self._own_sampler:  # ParentOrAlwaysOn's decision, without a SamplingResult
            recording = sampled
        else:
            result = self.sampler.should_sample(context, trace_id, name, kind, attributes, ())
            sampled = result.decision is Decision.RECORD_AND_SAMPLE
            recording = result.decision is not Decision.DROP
            trace_state = result.trace_state
            attributes = dict(result.attributes) if result.attributes else None
        span_context = SpanContext(
            trace_id,
            _getrandbits(64) or 1,
            False,
            _TRACE_FLAGS[sampled | random_flag],
            trace_state,
        )
        if not recording:
            return _SpanScope(NonRecordingSpan(span_context))
        return _RecordedSpan(self, context, name, span_context, parent, kind, attributes)

    def execution(self, integration_id: str, endpoint: str) -> AbstractContextManager[Span | None]:
        """The span of one execution (None when disabled)."""
        if self.processor is None:
            return _NOTHING
        return self._span(
            "adaptor.execute",
            SpanKind.SERVER,
            {"adaptor.integration_id": integration_id, "adaptor.endpoint": endpoint},
        )

    def stage(self, name: str) -> AbstractContextManager[Span | None]:
        """A child span for one pipeline stage (`map_request`, `cache`, `call`, ...)."""
        if self.processor is None:
            return _NOTHING
        return self._span(f"adaptor.{name}", SpanKind.INTERNAL, None)

    def upstream_request(self, method: str, path: str) -> AbstractContextManager[Span | None]:
        """A client span for one request to the upstream (`path` is the endpoint's template,
        never the filled-in URL or its query)."""
        if self.processor is None:
            return _NOTHING
        return self._span(
            f"HTTP {method}",
            SpanKind.CLIENT,
            {"http.request.method": method, "url.template": path},
        )

    def propagate(self, request_data: dict[str, Any]) -> dict[str, Any]:
        """The mapped request with `traceparent` for the current span (a copy), when tracing."""
        if self.processor is None:
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

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export what the processor holds now (True when it did in time)."""
        if self.processor is None:
            return True
        return self.processor.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Export what is buffered and stop the exporter's thread (once)."""
        processor, self.processor = self.processor, None
        if processor is None:
            return
        self._on_end = _ignore
        atexit.unregister(self.shutdown)
        processor.shutdown()


def _ignore(span: ReadableSpan) -> None:
    return


def _sdk_disabled() -> bool:
    return os.environ.get(OTEL_SDK_DISABLED, "").strip().lower() == "true"


_PLAIN = frozenset({str, bool, int, float})
_TRACE_FLAGS = [TraceFlags(flags) for flags in range(4)]
_getrandbits = random.getrandbits


def _plain(attributes: Mapping[str, Any], room: int) -> bool:
    """Whether `attributes` can be kept as they are: as many as a span keeps, non-empty string
    keys, str/bool/int/float values (what `BoundedAttributes` would keep unchanged)."""
    if len(attributes) > room:
        return False
    for key, value in attributes.items():
        if key.__class__ is not str or not key or value.__class__ not in _PLAIN:
            return False
    return True


class _RecordedSpan(trace_api.Span, ReadableSpan):
    """A recorded span: made current for a `with` block, ended after it, then handed as it is
    (a `ReadableSpan`) to the processor. Used from one thread, the event loop's. Exceptions are
    recorded by type only: their messages may quote an upstream's answer."""

    __slots__ = (
        "_attributes",
        "_context",
        "_end_time",
        "_events",
        "_instrumentation_scope",
        "_kind",
        "_links",
        "_name",
        "_outer",
        "_owner",
        "_parent",
        "_resource",
        "_start_time",
        "_status",
        "_token",
    )
    _instrumentation_info = None

    def __init__(
        self,
        owner: Tracing,
        outer: otel_context.Context,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, Any] | None,
    ) -> None:
        self._owner = owner
        self._outer = outer
        self._name = name
        self._context: SpanContext = context
        self._parent = parent
        self._kind = kind
        if attributes is None:
            self._attributes: dict[str, Any] | BoundedAttributes = {}
        elif _plain(attributes, owner._room):
            self._attributes = attributes
        else:
            self._attributes = self._bounded(attributes)
        self._events: Sequence[Event] = ()
        self._links: Sequence[Link] = ()
        self._status = _UNSET
        self._resource = owner.resource
        self._instrumentation_scope = owner.scope
        self._start_time: int | None = time_ns()
        self._end_time: int | None = None
        self._token: Token[otel_context.Context] | None = None

    def _bounded(self, attributes: Mapping[str, Any]) -> BoundedAttributes:
        limits = self._owner.limits
        return BoundedAttributes(
            limits.max_span_attributes,
            attributes,
            immutable=False,
            max_value_len=limits.max_span_attribute_length,
        )

    def _frozen(self, most: int | None, attributes: Attributes) -> BoundedAttributes:
        """An event's or a link's attributes, at most `most` of them, no longer changeable."""
        return BoundedAttributes(
            most, attributes, immutable=True, max_value_len=self._owner.limits.max_attribute_length
        )

    def __enter__(self) -> _RecordedSpan:
        self._token = otel_context.attach(set_span_in_context(self, self._outer))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is not None:
            self.set_attribute("error.type", kind.__name__)
            self.set_status(Status(StatusCode.ERROR, kind.__name__))
        if self._token is not None:
            otel_context.detach(self._token)  # logs when ended in another context
            self._token = None
        self.end()

    def get_span_context(self) -> SpanContext:
        return self._context

    # ReadableSpan's, without its isinstance checks against abstract classes (the encoder
    # reads them for every span).
    @property
    def dropped_attributes(self) -> int:
        attributes = self._attributes
        return attributes.dropped if attributes.__class__ is BoundedAttributes else 0

    @property
    def dropped_events(self) -> int:
        events = self._events
        return events.dropped if events.__class__ is BoundedList else 0

    @property
    def dropped_links(self) -> int:
        links = self._links
        return links.dropped if links.__class__ is BoundedList else 0

    def is_recording(self) -> bool:
        return self._end_time is None

    def _ended(self, what: str) -> bool:
        if self._end_time is None:
            return False
        _logger.warning("%s on an ended span (%s).", what, self._name)
        return True

    def set_attribute(self, key: str, value: AnyValue) -> None:
        if self._end_time is not None:
            self._ended("Setting an attribute")
            return
        attributes = self._attributes
        if (
            attributes.__class__ is dict
            and value.__class__ in _PLAIN
            and key.__class__ is str
            and key
            and (len(attributes) < self._owner._room or key in attributes)
        ):
            attributes[key] = value
        else:
            if attributes.__class__ is dict:
                attributes = self._attributes = self._bounded(attributes)
            attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, AnyValue]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        """As the SDK's: UNSET is ignored, and so is anything once the status is OK."""
        if self._ended("Setting the status"):
            return
        if self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, Status):
            if status.status_code is StatusCode.UNSET:
                return
            if description is not None:
                _logger.warning(
                    "Description %s ignored. Use either `Status` or `(StatusCode, Description)`",
                    description,
                )
            self._status = status
        elif status is not StatusCode.UNSET:
            self._status = Status(status, description)

    def update_name(self, name: str) -> None:
        if not self._ended("Updating the name"):
            self._name = name

    def add_event(
        self, name: str, attributes: Attributes = None, timestamp: int | None = None
    ) -> None:
        if self._ended("Adding an event"):
            return
        limits = self._owner.limits
        if not isinstance(self._events, BoundedList):
            self._events = BoundedList(limits.max_events)
        cleaned = self._frozen(limits.max_event_attributes, attributes)
        self._events.append(Event(name, cleaned, timestamp))

    def add_link(self, context: SpanContext, attributes: Attributes = None) -> None:
        if self._ended("Adding a link"):
            return
        if not (context and (context.is_valid or attributes or context.trace_state)):
            return
        limits = self._owner.limits
        if not isinstance(self._links, BoundedList):
            self._links = BoundedList(limits.max_links)
        cleaned = self._frozen(limits.max_link_attributes, attributes)
        self._links.append(Link(context, cleaned))

    def record_exception(
        self,
        exception: BaseException,
        attributes: Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """An `exception` event with the exception's type only (no message, no stack trace:
        they may quote an upstream's answer or a secret)."""
        module = type(exception).__module__
        qualname = type(exception).__qualname__
        recorded: dict[str, AnyValue] = {
            "exception.type": qualname if module == "builtins" else f"{module}.{qualname}",
            "exception.escaped": str(escaped),
        }
        if attributes:
            recorded.update(attributes)
        self.add_event("exception", recorded, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._ended("Ending"):
            return
        self._end_time = end_time if end_time is not None else time_ns()
        self._owner._on_end(self)


_UNSET = Status(StatusCode.UNSET)


class _SpanScope:
    """A span the sampler dropped, made current for a block (its children and the upstream
    request follow the decision)."""

    __slots__ = ("_token", "span")

    def __init__(self, span: Span) -> None:
        self.span = span
        self._token: Token[otel_context.Context] | None = None

    def __enter__(self) -> Span:
        self._token = otel_context.attach(set_span_in_context(self.span))
        return self.span

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if self._token is not None:
            otel_context.detach(self._token)
            self._token = None


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
