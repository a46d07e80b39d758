"""The wire-format OTLP encoder against OpenTelemetry's own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as official
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    Link,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.trace.span import NonRecordingSpan, TraceState

from adaptor.observability.otlp import encode_spans

SERVICE = Resource.create({"service.name": "adaptor-test", "deployment.environment": "ci"})
OTHER = Resource({"service.name": "other", "host.cores": 8, "ratio": 0.5}, "https://schema/1")
SCOPE = InstrumentationScope("adaptor-service", "", None, None)
VERSIONED = InstrumentationScope("lib", "1.2.3", "https://schema/scope", {"lib.flag": True})
SAMPLED = TraceFlags(TraceFlags.SAMPLED)

EVERY_TYPE = {
    "text": "héllo ✓",
    "empty": "",
    "long": "x" * 20_000,  # a length of three varint bytes, and too long to be cached
    "yes": True,
    "no": False,
    "zero": 0,
    "count": 300,
    "negative": -5,
    "large": 2**62,
    "smallest": -(2**63),
    "ratio": 0.25,
    "nothing.float": 0.0,
    "texts": ("a", "", "ç"),
    "flags": (True, False),
    "numbers": (1, -1, 0, 2**40),
    "floats": (1.5, -0.0),
    "none": (),
}


def _context(trace_id: int, span_id: int, remote: bool = False, **extra: object) -> SpanContext:
    return SpanContext(trace_id, span_id, is_remote=remote, trace_flags=SAMPLED, **extra)  # type: ignore[arg-type]


def _readable(name: str, **fields: object) -> ReadableSpan:
    defaults: dict[str, object] = {
        "context": _context(0x1234, 0x99),
        "resource": SERVICE,
        "instrumentation_scope": SCOPE,
        "start_time": 1_700_000_000_000_000_000,
        "end_time": 1_700_000_000_000_500_000,
    }
    return ReadableSpan(name, **{**defaults, **fields})  # type: ignore[arg-type]


def _varied() -> list[ReadableSpan]:
    state = TraceState([("vendor", "abc"), ("other", "x=y")])
    remote = _context(0xFEDCBA9876543210FEDCBA9876543210, 0xABCDEF, remote=True, trace_state=state)
    return [
        _readable("adaptor.execute", kind=SpanKind.SERVER, attributes=EVERY_TYPE),
        _readable(
            "joined",
            context=_context(remote.trace_id, 0x77, trace_state=state),
            parent=remote,
            kind=SpanKind.CLIENT,
            status=Status(StatusCode.ERROR, "upstream_error"),
            attributes={"http.response.status_code": 503},
        ),
        _readable(
            "local child",
            parent=_context(0x1234, 0x98),
            kind=SpanKind.PRODUCER,
            status=Status(StatusCode.OK),
            events=(
                Event("retry", {"attempt": 2, "delays": (0.1, 0.2)}, timestamp=1_700_000_000_1),
                Event("bare", timestamp=5),
            ),
            links=(
                Link(remote, {"link.kind": "follows"}),
                Link(_context(0x55, 0x66)),
            ),
        ),
        _readable("error without words", status=Status(StatusCode.ERROR), kind=SpanKind.CONSUMER),
        _readable("", start_time=None, end_time=None),
        _readable("other resource", resource=OTHER, instrumentation_scope=VERSIONED),
        _readable("no scope", resource=OTHER, instrumentation_scope=None),
        _readable("back to the first", attributes={"text": "héllo ✓", "zero": 0}),
        _readable("versioned again", resource=OTHER, instrumentation_scope=VERSIONED),
    ]


@pytest.fixture
def sdk_spans() -> Iterator[list[ReadableSpan]]:
    """Spans from the SDK itself, with limits that drop attributes, events and links."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=SERVICE,
        span_limits=SpanLimits(max_span_attributes=2, max_events=1, max_links=1),
        shutdown_on_exit=False,
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("adaptor-service")
    caller = NonRecordingSpan(_context(0xABC, 0xDEF, remote=True))
    with tracer.start_as_current_span("root", context=set_span_in_context(caller)) as root:
        root.set_attributes({"a": 1, "b": "two", "c": 3.0})
        root.add_event("first", {"n": 1})
        root.add_event("second")
        root.add_link(_context(0x1, 0x2), {"why": "because"})
        root.add_link(_context(0x3, 0x4))
        with tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
            child.set_status(Status(StatusCode.ERROR, "TimeoutError"))
    yield list(memory.get_finished_spans())
    provider.shutdown()


def _same(spans: list[ReadableSpan]) -> None:
    ours = encode_spans(spans)
    expected = official(spans)
    assert ExportTraceServiceRequest.FromString(ours) == expected
    assert ours == expected.SerializeToString()  # fields in number order, as upb writes them


def test_varied_spans_encode_to_the_official_message() -> None:
    spans = _varied()
    _same(spans)
    decoded = ExportTraceServiceRequest.FromString(encode_spans(spans))
    assert [len(resource.scope_spans) for resource in decoded.resource_spans] == [1, 2]
    assert decoded.resource_spans[1].schema_url == "https://schema/1"
    first = decoded.resource_spans[0].scope_spans[0].spans[0]
    assert {item.key for item in first.attributes} == set(EVERY_TYPE)


def test_every_span_alone_encodes_to_the_official_message() -> None:
    for span in _varied():
        _same([span])


def test_sdk_spans_with_dropped_counts_encode_to_the_official_message(
    sdk_spans: list[ReadableSpan],
) -> None:
    assert sdk_spans[1].dropped_attributes == 1
    assert sdk_spans[1].dropped_events == 1
    assert sdk_spans[1].dropped_links == 1
    _same(sdk_spans)


def test_repeated_encodings_are_identical() -> None:
    spans = _varied()
    assert encode_spans(spans) == encode_spans(spans)  # the caches hand back what they stored
    assert encode_spans([]) == official([]).SerializeToString() == b""


def test_an_attribute_that_cannot_be_encoded_is_left_out_alone() -> None:
    span = _readable("big", attributes={"too.large": 2**64, "kept": "yes"})
    _same([span])
    decoded = ExportTraceServiceRequest.FromString(encode_spans([span]))
    attributes = decoded.resource_spans[0].scope_spans[0].spans[0].attributes
    assert [(item.key, item.value.string_value) for item in attributes] == [("kept", "yes")]
