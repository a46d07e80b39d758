"""Traces of executions, captured with OpenTelemetry's in-memory exporter."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import context as otel_context
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from adaptor.app import create_app
from adaptor.observability.tracing import (
    FixedResource,
    ParentOrAlwaysOn,
    TraceContextMiddleware,
    Tracing,
)
from tests.conftest import Backend, make_settings, new_tenant, serve_app
from tests.executions.upstream import Reply, serve_upstream
from tests.integrations.payloads import rest_integration

SECRET = "sk_live_SECRET_1234567890"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    yield memory
    memory.shutdown()


def tracing_into(exporter: InMemorySpanExporter) -> Tracing:
    return Tracing(SimpleSpanProcessor(exporter))


def cached_integration(url: str) -> dict[str, object]:
    document = rest_integration(url)
    endpoints = document["endpoints"]
    endpoints["get_customer"]["cache_config"] = {"enabled": True, "ttl_seconds": 60}
    return document


async def test_an_execution_is_a_span_with_a_child_per_stage_in_the_callers_trace(
    tmp_path: Path, backend: Backend, exporter: InMemorySpanExporter
) -> None:
    tracing = tracing_into(exporter)
    app = create_app(make_settings(tmp_path, backend), tracing=tracing)
    async with serve_upstream() as upstream, serve_app(app) as client:
        upstream.reply(
            "GET", "/customers/42", Reply(json={"data": {"id": 42, "email": "a@example.com"}})
        )
        tenant = await new_tenant(client)
        created = await client.post(
            "/api/v2/integrations", json=cached_integration(upstream.url), headers=tenant.headers
        )
        assert created.status_code == 201, created.text
        integration = created.json()["integration_id"]
        exporter.clear()
        executed = await client.post(
            f"/api/v2/execute/{integration}/get_customer",
            json={"input_data": {"variables": {"customer_id": "42"}}},
            headers={**tenant.headers, "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
        )
        assert executed.status_code == 200, executed.text
        assert executed.json()["success"] is True

    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert {
        "adaptor.execute",
        "adaptor.map_request",
        "adaptor.cache",
        "adaptor.call",
        "adaptor.limit",
        "HTTP GET",
        "adaptor.map_response",
    } <= set(spans)
    root = spans["adaptor.execute"]
    assert root.context is not None
    assert f"{root.context.trace_id:032x}" == CALLER_TRACE
    assert root.parent is not None
    assert f"{root.parent.span_id:016x}" == CALLER_SPAN
    assert root.attributes is not None
    assert root.attributes["adaptor.integration_id"] == integration
    assert root.attributes["adaptor.endpoint"] == "get_customer"
    assert root.attributes["adaptor.outcome"] == "ok"
    assert root.attributes["adaptor.retries"] == 0
    assert root.attributes["http.response.status_code"] == 200
    cache = spans["adaptor.cache"]
    assert cache.context is not None
    for name in ("adaptor.map_request", "adaptor.cache"):
        assert _parent(spans[name]) == root.context.span_id
    for name in ("adaptor.call", "adaptor.map_response"):  # a miss computes inside the lookup
        assert _parent(spans[name]) == cache.context.span_id
    http = spans["HTTP GET"]
    assert http.kind is SpanKind.CLIENT
    assert http.attributes is not None
    assert http.attributes["url.template"] == "/customers/{customer_id}"
    assert http.attributes["http.response.status_code"] == 200

    # The upstream saw the client span as its parent.
    seen = upstream.seen[-1].headers["traceparent"]
    assert http.context is not None
    assert seen == f"00-{CALLER_TRACE}-{http.context.span_id:016x}-01"

    for span in spans.values():
        text = f"{span.name} {dict(span.attributes or {})} {span.status.description}"
        assert SECRET not in text
        assert "a@example.com" not in text
        assert "42" not in str(dict(span.attributes or {}).get("url.template", ""))


def _parent(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_a_failed_call_marks_the_span_without_the_upstreams_words(
    tmp_path: Path, backend: Backend, exporter: InMemorySpanExporter
) -> None:
    app = create_app(make_settings(tmp_path, backend), tracing=tracing_into(exporter))
    async with serve_upstream() as upstream, serve_app(app) as client:
        upstream.reply("GET", "/customers/7", Reply(status=400, json={"error": "no-such-thing"}))
        tenant = await new_tenant(client)
        created = await client.post(
            "/api/v2/integrations", json=rest_integration(upstream.url), headers=tenant.headers
        )
        integration = created.json()["integration_id"]
        exporter.clear()
        executed = await client.post(
            f"/api/v2/execute/{integration}/get_customer",
            json={"input_data": {"variables": {"customer_id": "7"}}},
            headers=tenant.headers,
        )
        assert executed.json()["success"] is False
    spans = {span.name: span for span in exporter.get_finished_spans()}
    root = spans["adaptor.execute"]
    assert root.parent is None  # no caller context: a trace of its own
    assert root.attributes is not None
    assert root.attributes["adaptor.outcome"] == executed.json()["error"]["code"]
    assert root.status.description == root.attributes["adaptor.outcome"]
    for span in spans.values():
        assert "no-such-thing" not in f"{dict(span.attributes or {})} {span.status.description}"


async def test_without_an_endpoint_nothing_is_traced_or_propagated(
    tmp_path: Path, backend: Backend
) -> None:
    app = create_app(make_settings(tmp_path, backend))
    assert not any(m.cls is TraceContextMiddleware for m in app.user_middleware)
    async with serve_upstream() as upstream, serve_app(app) as client:
        upstream.reply("GET", "/customers/42", Reply(json={"data": {"id": 42}}))
        tenant = await new_tenant(client)
        created = await client.post(
            "/api/v2/integrations", json=rest_integration(upstream.url), headers=tenant.headers
        )
        integration = created.json()["integration_id"]
        executed = await client.post(
            f"/api/v2/execute/{integration}/get_customer",
            json={"input_data": {"variables": {"customer_id": "42"}}},
            headers={**tenant.headers, "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
        )
        assert executed.status_code == 200
        assert app.state.services.executions.tracing.enabled is False
    assert "traceparent" not in upstream.seen[-1].headers


def test_spans_follow_the_callers_sampling_decision(exporter: InMemorySpanExporter) -> None:
    tracing = Tracing(SimpleSpanProcessor(exporter), sampler=ParentOrAlwaysOn())
    for flags in ("01", "00"):
        caller = TraceContextTextMapPropagator().extract(
            {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-{flags}"}
        )
        token = otel_context.attach(caller)
        try:
            with tracing.execution("i-1", "get_customer"), tracing.stage("call"):
                sent = tracing.propagate({"headers": {}})
        finally:
            otel_context.detach(token)
        # Sampled or not, the upstream joins the caller's trace with the caller's decision.
        assert sent["headers"]["traceparent"].startswith(f"00-{CALLER_TRACE}-")
        assert sent["headers"]["traceparent"].endswith(f"-{flags}")
    with tracing.execution("i-1", "get_customer"):  # no caller: a sampled trace of its own
        pass
    spans = exporter.get_finished_spans()
    assert [span.name for span in spans] == ["adaptor.call", "adaptor.execute", "adaptor.execute"]
    assert all(span.context is not None and span.context.trace_flags.sampled for span in spans)
    first, own = spans[1], spans[2]
    assert first.context is not None
    assert f"{first.context.trace_id:032x}" == CALLER_TRACE
    assert own.context is not None
    assert f"{own.context.trace_id:032x}" != CALLER_TRACE


def test_a_fixed_resource_is_the_resource_it_was_made_from() -> None:
    created = Resource.create({"service.name": "adaptor-test"})
    fixed = FixedResource(created.attributes, created.schema_url)
    assert fixed == created
    assert created == fixed
    assert hash(fixed) == hash(created)
    assert fixed.attributes["service.name"] == "adaptor-test"


async def test_otlp_export_sends_every_span_of_an_execution_to_the_collector() -> None:
    async with serve_upstream() as collector:
        collector.reply("POST", "/v1/traces", Reply(json={}))
        tracing = Tracing.otlp(collector.url, "adaptor-test")
        for _ in range(3):
            with tracing.execution("i-1", "list_customers") as span:
                with tracing.stage("map_request"):
                    pass
                with tracing.upstream_request("GET", "/customers") as client:
                    tracing.answered(client, 200, 0)
                tracing.finished(span, {"retries": 0, "metadata": {"status_code": 200}})
        await asyncio.to_thread(tracing.shutdown)  # exports the batch from its thread
    exported = ExportTraceServiceRequest()
    for seen in collector.seen:
        assert seen.path == "/v1/traces"
        exported.MergeFromString(seen.body)
    names = [
        span.name
        for resource in exported.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    assert sorted(names) == sorted(["adaptor.map_request", "HTTP GET", "adaptor.execute"] * 3)
    attributes = {
        item.key: item.value.string_value
        for resource in exported.resource_spans
        for item in resource.resource.attributes
    }
    assert attributes["service.name"] == "adaptor-test"


def test_otel_traces_sampler_still_chooses_the_sampler(monkeypatch: pytest.MonkeyPatch) -> None:
    default = Tracing.otlp("http://127.0.0.1:9", "adaptor-test")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    chosen = Tracing.otlp("http://127.0.0.1:9", "adaptor-test")
    try:
        assert default.enabled
        assert isinstance(default.sampler, ParentOrAlwaysOn)
        with chosen.execution("i-1", "get_customer") as span:
            assert span is not None
            assert not span.is_recording()
    finally:
        default.shutdown()
        chosen.shutdown()
