"""`Tracing`'s own spans against the SDK's tracer, and what they do besides the execute path."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanContext, SpanKind, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from adaptor.observability.tracing import ParentOrAlwaysOn, Tracing

CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
RESOURCE = Resource.create({"service.name": "adaptor-test"})
RESULT = {"retries": 1, "cached": False, "metadata": {"status_code": 502}, "error": {"code": "x"}}

Start = Callable[[str, SpanKind, dict[str, Any] | None], AbstractContextManager[Any]]


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    yield memory
    memory.shutdown()


def _execution(start: Start, propagate: Callable[[], dict[str, str]]) -> dict[str, str]:
    """The spans of a cache miss; the headers an upstream request would carry."""
    attributes = {"adaptor.integration_id": "i-1", "adaptor.endpoint": "get_customer"}
    with start("adaptor.execute", SpanKind.SERVER, attributes) as root:
        with start("adaptor.map_request", SpanKind.INTERNAL, None):
            pass
        with start("adaptor.call", SpanKind.INTERNAL, None):
            with start("adaptor.limit", SpanKind.INTERNAL, None):
                pass
            template = {"http.request.method": "GET", "url.template": "/customers/{id}"}
            with start("HTTP GET", SpanKind.CLIENT, template) as client:
                headers = propagate()
                Tracing.answered(client, 502, 1)
        Tracing.finished(root, RESULT)
    return headers


def _shape(spans: Sequence[ReadableSpan]) -> list[tuple[object, ...]]:
    """Everything exported about each span, with ids replaced by positions (caller: -1)."""
    ids = {span.context.span_id: index for index, span in enumerate(spans) if span.context}
    shaped = []
    for span in spans:
        assert span.context is not None
        parent = span.parent
        shaped.append(
            (
                span.name,
                span.kind,
                ids.get(parent.span_id, -1) if parent else None,
                parent.is_remote if parent else None,
                int(span.context.trace_flags),
                dict(span.context.trace_state),
                dict(span.attributes or {}),
                span.status.status_code,
                span.status.description,
                span.events,
                span.links,
                span.dropped_attributes,
                span.instrumentation_scope,
                span.resource.attributes,
                span.end_time is not None and span.start_time is not None,
            )
        )
    return shaped


def _both(caller: str | None, sampler: Sampler | None) -> tuple[list[Any], list[Any], list[Any]]:
    """The same execution through the SDK's tracer and through `Tracing`."""
    sdk_memory, our_memory = InMemorySpanExporter(), InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler, resource=RESOURCE, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(sdk_memory))
    tracer = provider.get_tracer("adaptor-service")
    tracing = Tracing(SimpleSpanProcessor(our_memory), sampler=sampler, resource=RESOURCE)

    def sdk(name: str, kind: SpanKind, attributes: dict[str, Any] | None) -> Any:
        return tracer.start_as_current_span(name, kind=kind, attributes=attributes)

    def ours(name: str, kind: SpanKind, attributes: dict[str, Any] | None) -> Any:
        if kind is SpanKind.SERVER:
            assert attributes is not None
            return tracing.execution(
                attributes["adaptor.integration_id"], attributes["adaptor.endpoint"]
            )
        if kind is SpanKind.CLIENT:
            return tracing.upstream_request("GET", "/customers/{id}")
        return tracing.stage(name.removeprefix("adaptor."))

    def propagate() -> dict[str, str]:
        headers: dict[str, str] = tracing.propagate({})["headers"]
        return headers

    headers = []
    for start in (sdk, ours):
        token = None
        if caller:
            extracted = TraceContextTextMapPropagator().extract({"traceparent": caller})
            token = otel_context.attach(extracted)
        try:
            headers.append(_execution(start, propagate))
        finally:
            if token is not None:
                otel_context.detach(token)
    try:
        return (
            _shape(sdk_memory.get_finished_spans()),
            _shape(our_memory.get_finished_spans()),
            headers,
        )
    finally:
        tracing.shutdown()
        provider.shutdown()


@pytest.mark.parametrize("caller", [None, CALLER, CALLER[:-2] + "00"])
@pytest.mark.parametrize("sampler", [None, ParentOrAlwaysOn()])
def test_spans_are_those_the_sdks_tracer_records(caller: str | None, sampler: Sampler) -> None:
    sdk, ours, headers = _both(caller, sampler)
    assert ours == sdk
    assert len(ours) == (0 if caller and caller.endswith("-00") else 5)
    sdk_flags, our_flags = (header["traceparent"][-2:] for header in headers)
    assert our_flags == sdk_flags  # the random-trace-id flag of a trace of our own included
    if caller:
        assert headers[1]["traceparent"].startswith(CALLER[:36])


class RecordOnly(Sampler):
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
        return SamplingResult(
            Decision.RECORD_ONLY, {"sampler.saw": name}, TraceState([("vendor", "v")])
        )

    def get_description(self) -> str:
        return "RecordOnly"


def test_a_span_recorded_but_not_sampled_is_not_exported(exporter: InMemorySpanExporter) -> None:
    tracing = Tracing(SimpleSpanProcessor(exporter), sampler=RecordOnly())
    with tracing.execution("i-1", "get_customer") as span:
        assert span is not None
        assert span.is_recording()
        context = span.get_span_context()
        assert not context.trace_flags.sampled
        assert context.trace_state.get("vendor") == "v"
        assert tracing.propagate({})["headers"]["traceparent"].endswith("-02")
    assert not span.is_recording()
    assert exporter.get_finished_spans() == ()
    tracing.shutdown()


def test_an_exception_marks_the_span_with_its_type_only(exporter: InMemorySpanExporter) -> None:
    tracing = Tracing(SimpleSpanProcessor(exporter))
    with pytest.raises(ValueError, match="upstream said"), tracing.stage("call"):
        raise ValueError("the upstream said sk_live_SECRET")
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "ValueError"
    assert dict(span.attributes or {}) == {"error.type": "ValueError"}
    assert "SECRET" not in repr(span.to_json())
    assert otel_context.get_current() == {}  # the span is no longer current
    tracing.shutdown()


def test_events_links_and_recorded_exceptions(exporter: InMemorySpanExporter) -> None:
    tracing = Tracing(SimpleSpanProcessor(exporter))
    other = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1))
    with tracing.execution("i-1", "get_customer") as span:
        assert span is not None
        span.add_event("retry", {"attempt": 2}, timestamp=123)
        span.add_link(other, {"link.reason": "batch"})
        span.add_link(SpanContext(0, 0, is_remote=False))  # invalid, no attributes: ignored
        span.record_exception(RuntimeError("token sk_live_SECRET"), {"retry": True})
        span.update_name("adaptor.execute.renamed")
        span.set_attributes({"adaptor.cached": True, "tags": ["a", "b"]})
    span.set_attribute("after.end", 1)  # ignored: the span has ended
    span.end()  # ignored too
    (exported,) = exporter.get_finished_spans()
    assert exported.name == "adaptor.execute.renamed"
    retry, exception = exported.events
    assert (retry.name, retry.timestamp) == ("retry", 123)
    assert dict(retry.attributes or {}) == {"attempt": 2}
    assert exception.name == "exception"
    assert dict(exception.attributes or {}) == {
        "exception.type": "RuntimeError",
        "exception.escaped": "False",
        "retry": True,
    }
    assert [link.context for link in exported.links] == [other]
    assert dict(exported.links[0].attributes or {}) == {"link.reason": "batch"}
    attributes = dict(exported.attributes or {})
    assert attributes["tags"] == ("a", "b")  # cleaned as the SDK cleans a list
    assert attributes["adaptor.cached"] is True
    assert "after.end" not in attributes
    assert "SECRET" not in exported.to_json()
    tracing.shutdown()


def test_span_limits_from_the_environment_apply(
    monkeypatch: pytest.MonkeyPatch, exporter: InMemorySpanExporter
) -> None:
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "3")
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4")
    tracing = Tracing(SimpleSpanProcessor(exporter))
    with tracing.execution("integration-1", "get_customer") as span:
        Tracing.finished(span, RESULT)
    (exported,) = exporter.get_finished_spans()
    attributes = dict(exported.attributes or {})
    assert len(attributes) == 3
    assert exported.dropped_attributes == 3
    assert all(len(value) <= 4 for value in attributes.values() if isinstance(value, str))
    tracing.shutdown()


def test_otel_sdk_disabled_disables_tracing(
    monkeypatch: pytest.MonkeyPatch, exporter: InMemorySpanExporter
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    tracing = Tracing(SimpleSpanProcessor(exporter))
    assert tracing.enabled is False
    with tracing.execution("i-1", "get_customer") as span:
        assert span is None
    assert tracing.propagate({"headers": {}}) == {"headers": {}}
    assert Tracing.otlp("http://127.0.0.1:9", "adaptor-test").enabled is False


def test_force_flush_and_shutdown(exporter: InMemorySpanExporter) -> None:
    tracing = Tracing(SimpleSpanProcessor(exporter))
    with tracing.stage("map_request"):
        pass
    assert tracing.force_flush() is True
    assert [span.name for span in exporter.get_finished_spans()] == ["adaptor.map_request"]
    tracing.shutdown()
    tracing.shutdown()  # once is enough; twice does nothing
    with tracing.stage("map_request") as span:
        assert span is None
    assert Tracing().force_flush() is True
