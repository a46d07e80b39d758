"""`ExecutionService`: run one endpoint of one integration for a conversation.

The pipeline, top to bottom in `_execute`:

    load ─► validate ─► map request ─► cache? ─► breaker ─► retry( limit ─► slot ─► auth ─► call )
         ─► parse ─► map response ─► summary ─► cache fill ─► invalidate ─► record (log, metrics)

Failures before the call (unknown integration or endpoint, disabled integration, invalid
input, a required mapping with no value) raise `AdaptorError`s: 404, 409, 422. Everything after
that is an `ExecutionResult` with `success` and, on failure, an `error.code` from `ErrorCode`;
nothing on this path becomes a 500. Resilience wraps only the call, so a mapping error is never
retried and never trips the breaker. No database transaction is open during the call, and the
log is queued, not written, on the request path.

Around the call:
- The breaker is asked once per execution and hears the final outcome once (a call that
  succeeds after two retries is one success). While it is open the execution is answered by
  the endpoint's cached response (fresh, else the stale copy the cache keeps), else its
  `fallback_response`, else `circuit_open` with `retry_after`.
- The retry loop runs each attempt through the rate limiter (every request the upstream sees
  counts against `RateLimitConfig`, retries included) and the process-wide cap on concurrent
  upstream calls (`MAX_CONCURRENT_INTEGRATIONS`), neither of which is held during a backoff.
  A refusal by our own limits is final, is not retried and says nothing to the breaker.
- The upstream's own quota headers (X-RateLimit-Remaining at 0 with a reset, or a 429's
  Retry-After) pause further calls to it on every replica until the reset.

Stage boundaries: the hot path (`execute_serialised`, behind the direct route and MCP tool
calls) gives the event loop a turn before the execution, before each upstream call and before
its answer (`stage_boundary`), so that under concurrency each stage runs for every ready
request in turn.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from pydantic_core import to_jsonable_python

from adaptor.domain import (
    EndpointConfig,
    ErrorCode,
    ErrorDetail,
    ExecutionOptions,
    ExecutionResult,
    IntegrationConfig,
    IntegrationResponse,
    RateLimitConfig,
    RetryConfig,
)
from adaptor.errors import Conflict, NotFound, ValidationFailed
from adaptor.events.outbox import CIRCUIT_CLOSED, CIRCUIT_OPENED, OutboxWriter
from adaptor.executions.logs import ExecutionLogWriter, LogRecord
from adaptor.executions.runtime import EndpointRuntime, IntegrationRuntime, RuntimeCache
from adaptor.executions.trace import Trace
from adaptor.ids import new_request_id
from adaptor.mapping import MappedResponse, MappingError
from adaptor.observability.metrics import Metrics
from adaptor.observability.tracing import Tracing
from adaptor.protocols.base import CallContext
from adaptor.protocols.errors import UpstreamError, UpstreamStatusError
from adaptor.protocols.http import recording_exchanges
from adaptor.protocols.pagination import FetchedPage, PageRequest, follow_pages
from adaptor.resilience.breaker import CircuitOpenError, Permit
from adaptor.resilience.cache import ResponseCache
from adaptor.resilience.policy import Action, BreakerVerdict, Decision, classify_outcome
from adaptor.resilience.ratelimit import Lease, RateLimiter, RateLimitExceeded
from adaptor.resilience.ratelimit import parse_rate_limit_headers as rate_limit_headers
from adaptor.resilience.retry import RetryManager

log = structlog.get_logger("adaptor.executions")

MAX_BUDGET_MS = 60_000
"""The longest any execution may take, retries included: a person is waiting."""


DEFAULT_BUDGET_MS = 15_000
"""What an execution may take in all, retries included (`DEFAULT_EXECUTION_BUDGET_MS`), unless
the caller sets `timeout_override_ms` or one attempt of the integration takes longer: without
it, 5 s attempts and 3 retries would hold a conversation 20 s."""


@dataclass(slots=True)
class CallOutcome:
    """What the upstream call stage hands to the response stage."""

    body: Any
    status_code: int | None
    request_size: int
    response_size: int
    retries: int
    headers: Mapping[str, str] = field(default_factory=dict)
    pages: int = 1
    metadata: dict[str, Any] | None = None
    """What the adapter adds to the result's `metadata` (e.g. `truncated`)."""


class ExecutionFailure(Exception):
    """A failure after validation; becomes `ExecutionResult.error`."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        retries: int = 0,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after
        self.retries = retries
        self.details = details

    def detail(self) -> ErrorDetail:
        return ErrorDetail(
            code=self.code,
            message=self.message,
            details=self.details,
            retry_after=math.ceil(self.retry_after) if self.retry_after is not None else None,
        )


class LocalRefusal(Exception):
    """One of our own limits kept an attempt from going out (rate limit, concurrency cap).

    Nothing reached the upstream, so the outcome is final and tells the breaker nothing.
    """

    def __init__(self, code: ErrorCode, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


async def stage_boundary() -> None:
    """One turn of the event loop, taken at the start of `execute_serialised`, before each
    upstream call and before `execute_serialised` returns its answer. With many requests in
    flight the loop then runs each stage for every ready request in turn instead of one
    request from start to end, so that stage's code and data stay in the CPU's caches.
    Measured at concurrency 16 (`bench/`, the three boundaries together): 17 % less CPU per
    plain execution and 19 % per mapped one, and as much more throughput; at concurrency 1 no
    difference beyond the noise."""
    await asyncio.sleep(0)


def classify_attempt(outcome: object, config: RetryConfig) -> Decision:
    """The policy table's verdict on one attempt, with our own refusals final and ignored."""
    if isinstance(outcome, LocalRefusal):
        return Decision(Action.FAIL, retry=False, breaker=BreakerVerdict.IGNORE)
    return classify_outcome(outcome, config)


class ExecutionService:
    """Executes integrations: the specification's `ExecutionService`."""

    def __init__(
        self,
        runtimes: RuntimeCache,
        log_writer: ExecutionLogWriter,
        metrics: Metrics,
        cache: ResponseCache,
        limiter: RateLimiter,
        *,
        retries: RetryManager | None = None,
        max_concurrent: int = 50,
        caching_enabled: bool = True,
        outbox: OutboxWriter | None = None,
        tracing: Tracing | None = None,
        default_budget_ms: int = DEFAULT_BUDGET_MS,
    ) -> None:
        self.runtimes = runtimes
        self.log_writer = log_writer
        self.metrics = metrics
        self.cache = cache
        self.limiter = limiter
        self.retries = retries or RetryManager()
        self.caching_enabled = caching_enabled
        self.default_budget_ms = default_budget_ms
        self.max_concurrent = max_concurrent
        self.outbox = outbox
        self.tracing = tracing or Tracing()
        self._upstream_slots = asyncio.Semaphore(max_concurrent)

    async def execute_integration(
        self,
        tenant_id: str,
        integration_id: str,
        endpoint_name: str,
        input_data: dict[str, Any],
        options: ExecutionOptions | None = None,
        *,
        context: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> ExecutionResult:
        """Run `endpoint_name` of the tenant's integration with `input_data`.

        Raises NotFound (unknown integration/endpoint or another tenant's), Conflict (disabled)
        and ValidationFailed (input schema, required mappings); returns an `ExecutionResult`
        for everything that happens after validation.
        """
        with self.tracing.execution(integration_id, endpoint_name) as span:
            result, secrets = await self._execute(
                tenant_id, integration_id, endpoint_name, input_data, options, context, request_id
            )
            self.tracing.finished(span, result)
        body = _serialise(result)
        scrubbed = scrub_secrets(body, secrets)
        if scrubbed is body:
            return ExecutionResult.model_validate(result)
        return ExecutionResult.model_validate_json(scrubbed)

    async def execute_serialised(
        self,
        tenant_id: str,
        integration_id: str,
        endpoint_name: str,
        input_data: dict[str, Any],
        options: ExecutionOptions | None = None,
        *,
        context: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> bytes:
        """`execute_integration` as the JSON the HTTP route sends (the hot path)."""
        await stage_boundary()
        with self.tracing.execution(integration_id, endpoint_name) as span:
            result, secrets = await self._execute(
                tenant_id, integration_id, endpoint_name, input_data, options, context, request_id
            )
            self.tracing.finished(span, result)
        payload = scrub_secrets(_serialise(result), secrets)
        await stage_boundary()
        return payload

    async def execute_unsaved(
        self,
        config: IntegrationConfig,
        secrets: list[str],
        endpoint_name: str,
        input_data: dict[str, Any],
        options: ExecutionOptions | None = None,
    ) -> ExecutionResult:
        """Run an endpoint of a configuration that is not stored (a marketplace connection
        test): the same pipeline, with no execution log, and the adapter closed afterwards."""
        runtime = self.runtimes.build(config, secrets)
        try:
            result, _ = await self._execute(
                config.tenant_id,
                config.integration_id,
                endpoint_name,
                input_data,
                options,
                None,
                None,
                runtime=runtime,
            )
        finally:
            if runtime.adapter is not None:
                await runtime.adapter.close()
        return ExecutionResult.model_validate_json(scrub_secrets(_serialise(result), secrets))

    async def _execute(
        self,
        tenant_id: str,
        integration_id: str,
        endpoint_name: str,
        input_data: dict[str, Any],
        options: ExecutionOptions | None,
        context: dict[str, Any] | None,
        request_id: str | None,
        *,
        runtime: IntegrationRuntime | None = None,
    ) -> tuple[dict[str, Any], list[str]]:
        started = time.perf_counter()
        options = options or ExecutionOptions()
        request_id = request_id or new_request_id()
        unsaved = runtime is not None

        # 1-3. configuration (cached in process), tenant, endpoint
        runtime = runtime or await self.runtimes.get(tenant_id, integration_id)
        if not runtime.config.enabled:
            raise Conflict(f"Integration {integration_id} is disabled")
        endpoint = runtime.endpoints.get(endpoint_name)
        if endpoint is None:
            raise NotFound(f"Integration {integration_id} has no endpoint {endpoint_name!r}")
        trace = Trace(runtime.secrets) if options.debug_mode else None

        # 4-5. input document, validation, request mapping
        document = input_document(input_data, context)
        stage = time.perf_counter()
        with self.tracing.stage("map_request"):
            problems = endpoint.compiled.validate_input(document)
            if problems:
                raise ValidationFailed.of(
                    [(("body", "input_data", *loc), msg) for loc, msg in problems]
                )
            try:
                mapped = endpoint.compiled.map_request(document)
            except MappingError as exc:
                raise ValidationFailed.of(
                    [
                        (input_location(endpoint.config, loc), f"{msg} (request {_dotted(loc)})")
                        for loc, msg in exc.problems
                    ],
                    message="The input does not provide what the request mapping requires: "
                    + "; ".join(f"{_dotted(loc)}: {msg}" for loc, msg in exc.problems),
                ) from None
        request_data = {
            "path_params": mapped.path_params,
            "query_params": mapped.query_params,
            "headers": mapped.headers,
            "body": mapped.body or None,
        }
        if trace is not None:
            trace.add("map_request", stage, document, request_data)

        # 6-9. the call (through the cache when enabled), response mapping, summary
        mocked = "mock_response" in options.model_fields_set
        cache_config = endpoint.config.cache_config
        use_cache = (
            self.caching_enabled
            and cache_config is not None
            and cache_config.enabled
            and cache_config.ttl_seconds > 0
            and not mocked
        )
        cache_key: str | None = None
        if use_cache and cache_config is not None:
            # Tenant, integration and endpoint are always in the key; then the configured
            # `cache_key_fields` (JMESPath over the input document), else the whole document.
            cache_key = ResponseCache.key(
                tenant_id,
                integration_id,
                endpoint_name,
                endpoint.compiled.cache_key_values(document)
                if cache_config.cache_key_fields
                else document,
            )

        show_raw = options.include_raw_response or options.debug_mode

        async def produce() -> dict[str, Any]:
            try:
                value = await self._produce(
                    runtime, endpoint, request_data, document, options, trace, request_id
                )
            except ExecutionFailure as exc:
                return _failed(exc)
            except (CircuitOpenError, asyncio.CancelledError):
                raise
            except Exception as exc:  # a defect must not become a 500 for the conversation
                log.error(
                    "executions.unexpected_error",
                    integration_id=integration_id,
                    endpoint=endpoint_name,
                    error_type=type(exc).__name__,
                )
                return _failed(
                    ExecutionFailure(ErrorCode.UPSTREAM_ERROR, "The execution failed unexpectedly")
                )
            if cache_key is not None and not show_raw:
                value.pop("raw", None)
            return value

        cached = False
        try:
            if cache_key is not None and cache_config is not None:
                if options.skip_cache:
                    produced = await produce()
                    if produced["success"]:
                        await self.cache.set(cache_key, produced, cache_config.ttl_seconds)
                else:
                    with self.tracing.stage("cache"):
                        lookup = await self.cache.get_or_compute(
                            cache_key,
                            cache_config.ttl_seconds,
                            produce,
                            should_cache=lambda value: bool(value.get("success")),
                        )
                    produced, cached = lookup.value, lookup.cached
                self.metrics.cache_lookup(hit=cached)
            else:
                produced = await produce()
        except CircuitOpenError as exc:
            produced = await self._circuit_open(exc, endpoint, cache_key)
            cached = bool(produced.pop("_cached", False))

        # 10-12. invalidations, log, metrics, result
        called = not cached and not produced.get("fallback") and not mocked
        if produced["success"] and endpoint.invalidates and called:
            for other in endpoint.invalidates:
                await self.cache.invalidate(tenant_id, integration_id, other)
        elapsed_ms = round((time.perf_counter() - started) * 1000)
        error: dict[str, Any] | None = produced.get("error")
        error_code: str | None = error["code"] if error else None
        await self._record(
            unsaved,
            LogRecord(
                "",  # the writer stamps the id as it writes the row, in commit order
                tenant_id,
                integration_id,
                endpoint_name,
                request_id,
                datetime.now(UTC),
                elapsed_ms,
                produced["success"],
                produced.get("status_code"),
                error_code,
                error["message"] if error else None,
                produced.get("request_size", 0),
                produced.get("response_size", 0),
                produced.get("retries", 0),
                cached,
            ),
        )

        metadata: dict[str, Any] = {
            "status_code": produced.get("status_code"),
            "integration_id": integration_id,
            "endpoint": endpoint_name,
        }
        for key, value in (produced.get("adapter_metadata") or {}).items():
            metadata.setdefault(key, value)
        if "summary" in produced:
            metadata["summary"] = produced["summary"]
        if "pages" in produced:
            metadata["pages"] = produced["pages"]
        if produced.get("warnings"):
            metadata["warnings"] = produced["warnings"]
        if produced.get("fallback"):
            metadata["fallback"] = True
        if mocked:
            metadata["mocked"] = True
        if trace is not None:
            metadata["trace"] = trace.stages
        # The `ExecutionResult` document, field for field (its JSON is built without the
        # model: this is every request's cost).
        result: dict[str, Any] = {
            "request_id": request_id,
            "success": produced["success"],
            "data": produced.get("data"),
            "raw_response": produced.get("raw") if show_raw else None,
            "error": None
            if error is None
            else {
                "code": error_code,
                "message": error["message"],
                "details": error.get("details"),
                "retry_after": error.get("retry_after"),
            },
            "execution_time_ms": elapsed_ms,
            "cached": cached,
            "retries": produced.get("retries", 0),
            "metadata": metadata,
        }
        return result, runtime.secrets

    # stages -------------------------------------------------------------------------------

    async def _record(self, unsaved: bool, entry: LogRecord) -> None:
        """The execution's log and metrics (none for a configuration that is not stored)."""
        if unsaved:
            return
        await self.log_writer.record(entry)
        self.metrics.executed(
            entry.integration_id, entry.error_code or "ok", entry.duration_ms / 1000
        )
        if entry.retry_count:
            self.metrics.upstream_retries.labels(entry.integration_id).inc(entry.retry_count)

    async def _produce(
        self,
        runtime: IntegrationRuntime,
        endpoint: EndpointRuntime,
        request_data: dict[str, Any],
        document: dict[str, Any],
        options: ExecutionOptions,
        trace: Trace | None,
        request_id: str,
    ) -> dict[str, Any]:
        """Call (or mock) and map: the part of an execution a cache hit replaces."""
        mocked = "mock_response" in options.model_fields_set
        stage = time.perf_counter()
        response: MappedResponse | None = None  # paginated calls map each page themselves
        if mocked:
            outcome = CallOutcome(options.mock_response, None, 0, 0, 0)
        elif trace is None:
            with self.tracing.stage("call"):
                outcome, response = await self._call_stage(
                    runtime, endpoint, request_data, options, request_id
                )
        else:
            with self.tracing.stage("call"), recording_exchanges() as sent:
                # what each attempt put on the wire, for the debug trace
                try:
                    outcome, response = await self._call_stage(
                        runtime, endpoint, request_data, options, request_id
                    )
                except ExecutionFailure as exc:
                    trace.add_call(stage, endpoint.config, sent, exc.status_code, exc.retries)
                    raise
            trace.add_call(stage, endpoint.config, sent, outcome.status_code, outcome.retries)
        if response is None:
            stage = time.perf_counter()
            with self.tracing.stage("map_response"):
                response = _map_response(endpoint, outcome)
            if trace is not None:
                # The upstream body is the result's `raw_response` already; not repeated here.
                trace.add(
                    "map_response", stage, "(the upstream body: see raw_response)", response.data
                )
        produced: dict[str, Any] = {
            "success": response.success,
            "data": response.data,
            "raw": outcome.body,
            "status_code": outcome.status_code,
            "request_size": outcome.request_size,
            "response_size": outcome.response_size,
            "retries": outcome.retries,
        }
        if outcome.metadata:
            produced["adapter_metadata"] = outcome.metadata
        if endpoint.pager is not None and not mocked:
            produced["pages"] = outcome.pages
        if response.warnings:
            produced["warnings"] = [
                {"loc": list(loc), "msg": msg} for loc, msg in response.warnings
            ]
        if not response.success:
            produced["error"] = {
                "code": ErrorCode.UPSTREAM_ERROR.value,
                "message": response.error_message or "The upstream reported a failure",
            }
            return produced
        stage = time.perf_counter()
        produced["summary"] = endpoint.compiled.render_summary(response.data, document)
        if trace is not None:
            trace.add("summary", stage, None, produced["summary"])
        return produced

    async def _call_stage(
        self,
        runtime: IntegrationRuntime,
        endpoint: EndpointRuntime,
        request_data: dict[str, Any],
        options: ExecutionOptions,
        request_id: str,
    ) -> tuple[CallOutcome, MappedResponse | None]:
        """One call, or every page of a paginated endpoint (then mapped page by page)."""
        if endpoint.pager is None:
            return await self._call(runtime, endpoint, request_data, options, request_id), None
        outcome, mapped = await self._call_pages(
            runtime, endpoint, request_data, options, request_id
        )
        return outcome, mapped

    async def _call_pages(
        self,
        runtime: IntegrationRuntime,
        endpoint: EndpointRuntime,
        request_data: dict[str, Any],
        options: ExecutionOptions,
        request_id: str,
    ) -> tuple[CallOutcome, MappedResponse]:
        """The call stage for a paginated endpoint: each page is one `_call` (breaker, retry,
        limit, slot) and is mapped on its own; the items are concatenated."""
        pager = endpoint.pager
        assert pager is not None

        async def fetch(page: PageRequest) -> FetchedPage[tuple[CallOutcome, MappedResponse]]:
            outcome = await self._call(
                runtime, endpoint, page.request_data, options, request_id, path=page.path
            )
            mapped = _map_response(endpoint, outcome)
            items = len(mapped.data) if isinstance(mapped.data, list) else None
            return FetchedPage(
                (outcome, mapped), outcome.body, outcome.headers, items, mapped.success
            )

        first = pager.first(endpoint.config.path, request_data)
        return _concatenated(await follow_pages(pager, first, fetch))

    async def _call(
        self,
        runtime: IntegrationRuntime,
        endpoint: EndpointRuntime,
        request_data: dict[str, Any],
        options: ExecutionOptions,
        request_id: str,
        *,
        path: str | None = None,
    ) -> CallOutcome:
        """breaker ─► retry( limit ─► slot ─► auth ─► call ) (the breaker check and the first
        limit are one store round trip, see `_admit`): the only stage that leaves the
        process, through the integration's protocol adapter, whatever its type. Raises
        `CircuitOpenError` (answered by `_circuit_open`) or `ExecutionFailure`."""
        adapter = runtime.adapter
        if adapter is None:
            assert runtime.adapter_error is not None
            raise ExecutionFailure(runtime.adapter_error.code, runtime.adapter_error.message)
        config = runtime.config
        retry_config = options.retry_override or config.retry_config
        attempt_ms = endpoint.config.timeout_ms or config.timeout_ms
        if options.timeout_override_ms is not None:  # the caller's own budget
            budget_ms = options.timeout_override_ms
        else:
            # Retries fit in the default budget; one attempt is always given its whole
            # timeout (an integration with a longer `timeout_ms` asks for more).
            budget_ms = min(
                MAX_BUDGET_MS,
                attempt_ms * (retry_config.max_retries + 1),
                max(self.default_budget_ms, attempt_ms),
            )
        attempt_ms = min(attempt_ms, budget_ms)
        deadline = time.monotonic() + budget_ms / 1000
        call = CallContext(endpoint.config, request_id)

        sent = 0  # requests that got past our own limits
        last_failure: UpstreamError | None = None  # the upstream's answer to the last of them

        permit, admitted = await self._admit(runtime, deadline)
        if self.metrics.open_circuits and not permit.probe:
            # A call passed: another replica closed the circuit this one saw open.
            if runtime.integration_id in self.metrics.open_circuits:
                self.metrics.circuit(runtime.integration_id, open=False)

        async def attempt() -> IntegrationResponse:
            nonlocal sent, last_failure, admitted
            with self.tracing.stage("limit"):
                # The first attempt's room may have come with the breaker check.
                lease, admitted = admitted or await self._limit(runtime, deadline), None
            try:
                await self._take_upstream_slot(deadline)
                sent += 1
                method, target = str(endpoint.config.method), path or endpoint.config.path
                await stage_boundary()
                try:
                    with self.tracing.upstream_request(method, target) as span:
                        response = await adapter.execute(
                            target,
                            method,
                            self.tracing.propagate(request_data),
                            timeout_ms=attempt_ms,
                            deadline=deadline,
                            call=call,
                        )
                        self.tracing.answered(span, response.status_code, response.retries)
                finally:
                    self._upstream_slots.release()
            except UpstreamError as exc:
                last_failure = exc
                if isinstance(exc, UpstreamStatusError):
                    await self._note_upstream_limits(runtime, exc.headers, exc)
                raise
            finally:
                if lease is not None:
                    await lease.release()
            await self._note_upstream_limits(runtime, response.headers, None, response.data)
            return response

        try:
            result = await self.retries.run(
                attempt,
                retry_config=retry_config,
                method=str(endpoint.config.method),
                allow_non_idempotent=adapter.repeats_safely(endpoint.config),
                deadline=deadline,
                classify=lambda outcome: classify_attempt(outcome, retry_config),
            )
        except BaseException:
            if admitted is not None:
                await admitted.release()
            await runtime.breaker.release(permit)
            raise
        retries = max(sent - 1, 0)  # what reached the upstream again, not what we refused
        error = result.error
        if isinstance(error, LocalRefusal) and last_failure is not None:
            # Our limits stopped a retry: the failure to report (and to count) is the
            # upstream's last answer, not the refusal.
            error = last_failure
            await self._record_breaker(
                runtime, classify_attempt(error, retry_config).breaker, permit
            )
        else:
            await self._record_breaker(runtime, result.decision.breaker, permit)

        if error is None:
            response = result.unwrap()
            return CallOutcome(
                response.data,
                response.status_code,
                response.request_size_bytes,
                response.response_size_bytes,
                retries + response.retries,
                headers=response.headers,
                metadata=response.metadata,
            )
        if isinstance(error, LocalRefusal):
            raise ExecutionFailure(error.code, error.message, retry_after=error.retry_after)
        if isinstance(error, UpstreamError):
            if error.code is ErrorCode.AUTH_FAILED:
                self.metrics.auth_failures.labels(runtime.integration_id).inc()
            raise ExecutionFailure(
                error.code,
                error.message,
                status_code=error.status_code,
                retry_after=error.retry_after,
                retries=retries + error.retries,
            )
        raise error

    async def _admit(
        self, runtime: IntegrationRuntime, deadline: float
    ) -> tuple[Permit, Lease | None]:
        """The breaker's leave, and with a rate limit the first attempt's room too, in one
        store round trip: the limit's atomic step first checks that the breaker has no stored
        state (healthy) and takes nothing when it has. Otherwise the breaker is asked as
        usual and the first attempt takes its own room. Raises `CircuitOpenError`, or
        `ExecutionFailure` when the rate limit refuses (which says nothing to a healthy
        breaker, exactly as when it refuses the first attempt)."""
        config = runtime.config.rate_limit
        if config is not None and self.limiter.checks_gate(config):
            with self.tracing.stage("limit"):
                try:
                    lease = await self.limiter.acquire_unless(
                        runtime.breaker.store_key, runtime.integration_id, config, deadline
                    )
                except RateLimitExceeded as exc:
                    refusal = self._refused(runtime, exc)
                    raise ExecutionFailure(
                        refusal.code, refusal.message, retry_after=refusal.retry_after
                    ) from None
            if lease is not None:
                return runtime.breaker.healthy_permit(), lease
        return await runtime.breaker.allow(), None

    def _refused(self, runtime: IntegrationRuntime, exc: RateLimitExceeded) -> LocalRefusal:
        self.metrics.rate_limited.labels(runtime.integration_id).inc()
        return LocalRefusal(
            ErrorCode.RATE_LIMITED,
            f"The rate limit for this integration is reached ({exc.reason}); "
            f"retry in {exc.retry_after_s:.1f}s",
            retry_after=exc.retry_after_s,
        )

    async def _limit(self, runtime: IntegrationRuntime, deadline: float) -> Lease | None:
        """Room for one request under the integration's rate limit and the upstream's own
        pause, waiting for it until `deadline` at most. Integrations with neither skip the
        store entirely."""
        config = runtime.config.rate_limit
        if config is None and not runtime.upstream_limited:
            return None
        try:
            return await self.limiter.acquire(
                runtime.integration_id, config or RateLimitConfig(), deadline
            )
        except RateLimitExceeded as exc:
            raise self._refused(runtime, exc) from None

    async def _take_upstream_slot(self, deadline: float) -> None:
        """One of this process's MAX_CONCURRENT_INTEGRATIONS upstream call slots, waiting
        until `deadline` at most."""
        slots = self._upstream_slots
        if not slots.locked():
            await slots.acquire()
            return
        try:
            await asyncio.wait_for(slots.acquire(), timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise LocalRefusal(
                ErrorCode.TIMEOUT,
                f"All {self.max_concurrent} upstream call slots of this process stayed busy "
                "until the deadline",
            ) from None

    async def _record_breaker(
        self, runtime: IntegrationRuntime, verdict: BreakerVerdict, permit: Permit
    ) -> None:
        if await runtime.breaker.record(verdict, permit):
            self.metrics.breaker_trips.labels(runtime.integration_id).inc()
            log.warning("executions.circuit_opened", integration_id=runtime.integration_id)
            self._circuit_changed(runtime, CIRCUIT_OPENED)
        elif permit.probe and verdict is BreakerVerdict.SUCCESS:
            self._circuit_changed(runtime, CIRCUIT_CLOSED)

    def _circuit_changed(self, runtime: IntegrationRuntime, event_type: str) -> None:
        """The open-circuit gauge and the circuit's event (written off the request path)."""
        opened = event_type == CIRCUIT_OPENED
        self.metrics.circuit(runtime.integration_id, open=opened)
        if self.outbox is not None:
            self.outbox.emit(
                event_type,
                runtime.integration_id,
                runtime.config.tenant_id,
                {"integration_id": runtime.integration_id, "state": "open" if opened else "closed"},
            )

    async def _note_upstream_limits(
        self,
        runtime: IntegrationRuntime,
        headers: dict[str, str],
        error: UpstreamStatusError | None,
        body: Any = None,
    ) -> None:
        """Pause calls on every replica when the upstream says its quota is spent: at
        X-RateLimit-Remaining 0 until its reset, or after a 429 for its Retry-After. A
        connector's own quota report (Shopify's query cost) counts like the headers."""
        remaining, reset_s = rate_limit_headers(headers)
        if runtime.quota is not None and error is None:
            reported = runtime.quota(body, headers)
            if reported is not None:
                remaining, reset_s = reported.remaining, reported.reset_s
        if not (remaining is not None and remaining <= 0 and reset_s):
            if error is None or error.code is not ErrorCode.RATE_LIMITED or not error.retry_after:
                return
            remaining, reset_s = 0, error.retry_after
        runtime.upstream_limited = True
        await self.limiter.note_upstream(runtime.integration_id, remaining, reset_s)

    async def _circuit_open(
        self, exc: CircuitOpenError, endpoint: EndpointRuntime, cache_key: str | None
    ) -> dict[str, Any]:
        """The spec's fallback: a cached response (a stale one will do), else the configured
        one, else the error."""
        if cache_key is not None:
            hit = await self.cache.get(cache_key) or await self.cache.get_stale(cache_key)
            if hit is not None and isinstance(hit.value, dict) and hit.value.get("success"):
                return {**hit.value, "_cached": True, "fallback": True}
        if endpoint.config.fallback_response is not None:
            return {
                "success": True,
                "data": endpoint.config.fallback_response,
                "fallback": True,
                "summary": "Served the configured fallback while the upstream recovers.",
            }
        return _failed(
            ExecutionFailure(
                ErrorCode.CIRCUIT_OPEN,
                "The upstream is failing; calls are paused until it recovers",
                retry_after=exc.retry_after_s,
            )
        )


_SIMPLE_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def input_location(endpoint: EndpointConfig, target: tuple[str | int, ...]) -> list[str | int]:
    """Where in the request body a request-mapping problem points: the input field the target
    reads when its expression is a plain dot path, else `input_data` itself."""
    location: list[str | int] = ["body", "input_data"]
    if len(target) < 2:
        return location
    section, rest = str(target[0]), target[1:]
    sources = getattr(endpoint.request_mapping, section, None)
    if isinstance(sources, dict):
        key = _dotted(rest) if section == "body" else str(rest[0])
        expression = sources.get(key)
        if isinstance(expression, str) and _SIMPLE_PATH.fullmatch(expression):
            return [*location, *expression.split(".")]
    return location


def _dotted(loc: tuple[str | int, ...]) -> str:
    return ".".join(map(str, loc))


def scrub_secrets(body: bytes, secrets: list[str]) -> bytes:
    """The body with any stored secret masked, should an upstream have echoed one back.

    A substring search per secret costs microseconds; the body is copied only on a match.
    """
    for secret in secrets:
        encoded = secret.encode()
        if len(encoded) >= 4 and encoded in body:
            body = body.replace(encoded, b"********")
    return body


def _serialise(result: dict[str, Any]) -> bytes:
    return orjson.dumps(result, default=to_jsonable_python, option=orjson.OPT_NON_STR_KEYS)


def input_document(input_data: dict[str, Any], context: dict[str, Any] | None) -> dict[str, Any]:
    """What mappings read: `input_data` with `context` merged in under `context`."""
    if not context:
        return input_data
    own = input_data.get("context")
    merged = {**own, **context} if isinstance(own, dict) else context
    return {**input_data, "context": merged}


def _map_response(endpoint: EndpointRuntime, outcome: CallOutcome) -> MappedResponse:
    """The response mapping on one upstream body; a mapping failure is `mapping_error`."""
    try:
        return endpoint.compiled.map_response(outcome.body)
    except MappingError as exc:
        raise ExecutionFailure(
            ErrorCode.MAPPING_ERROR,
            "The response could not be mapped: "
            + "; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in exc.problems),
            status_code=outcome.status_code,
            retries=outcome.retries,
        ) from None


def _concatenated(
    pages: list[tuple[CallOutcome, MappedResponse]],
) -> tuple[CallOutcome, MappedResponse]:
    """One outcome for every page read: sizes and retries summed, items concatenated (the
    first failed page, if any, is the answer)."""
    last, _ = pages[-1]
    outcome = CallOutcome(
        [page.body for page, _ in pages] if len(pages) > 1 else last.body,
        last.status_code,
        sum(page.request_size for page, _ in pages),
        sum(page.response_size for page, _ in pages),
        sum(page.retries for page, _ in pages),
        last.headers,
        len(pages),
    )
    failed = next((mapped for _, mapped in pages if not mapped.success), None)
    if failed is not None:
        return outcome, failed
    data: list[Any] = []
    warnings: list[tuple[tuple[str | int, ...], str]] = []
    for _, mapped in pages:
        offset = len(data)
        for loc, msg in mapped.warnings:
            shifted = list(loc)
            if len(shifted) > 1 and isinstance(shifted[1], int):
                shifted[1] += offset
            warnings.append((tuple(shifted), msg))
        if isinstance(mapped.data, list):
            data.extend(mapped.data)
        elif mapped.data is not None:
            data.append(mapped.data)
    return outcome, MappedResponse(success=True, data=data, warnings=warnings)


def _failed(exc: ExecutionFailure) -> dict[str, Any]:
    return {
        "success": False,
        "error": exc.detail().model_dump(mode="json", exclude_none=True),
        "status_code": exc.status_code,
        "retries": exc.retries,
    }
