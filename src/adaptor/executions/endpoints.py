"""Execution routes: execute an endpoint, read logs and health, test an integration."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Annotated

from fastapi import APIRouter, Body, Request, Response

from adaptor.dependencies import PageCursor, PageLimit, ServicesDep, TenantId
from adaptor.domain import (
    ExecutionLog,
    ExecutionOptions,
    ExecutionRequest,
    ExecutionResult,
    IntegrationHealth,
    TestCase,
)
from adaptor.errors import Forbidden, ValidationFailed
from adaptor.executions.batch import run_batch
from adaptor.executions.health import WINDOW, compute_health
from adaptor.executions.logs import ExecutionLogWriter
from adaptor.executions.repository import ExecutionLogRepository
from adaptor.executions.schemas import (
    MAX_BATCH_ITEMS,
    BatchRequest,
    BatchResult,
    ConnectionTestRequest,
    ConnectionTestResult,
    ExecutionLogPage,
    TestCaseResult,
)
from adaptor.executions.testing import run_case
from adaptor.pagination import (
    DEFAULT_LIMIT,
    decode_cursor,
    encode_cursor,
)

router = APIRouter(tags=["executions"])

JSON = "application/json"


@router.post(
    "/api/v2/execute/{integration_id}/{endpoint_name}",
    response_model=ExecutionResult,
    responses={
        404: {"description": "Unknown integration or endpoint (or another tenant's)."},
        409: {"description": "The integration is disabled."},
        422: {"description": "The input fails the endpoint's schema or a required mapping."},
    },
)
async def execute(
    integration_id: str,
    endpoint_name: str,
    body: ExecutionRequest,
    tenant_id: TenantId,
    services: ServicesDep,
    request: Request,
) -> Response:
    """Execute one endpoint of an integration with the conversation's input.

    Anything that happens after validation is a 200 `ExecutionResult`: `success` false with
    `error.code` one of upstream_error, timeout, network_error, circuit_open, rate_limited,
    auth_failed, mapping_error, blocked_destination, and `metadata.status_code` carrying the
    upstream status. `raw_response` is included with `options.include_raw_response` or
    `options.debug_mode`; debug mode also adds `metadata.trace` (secrets redacted).
    """
    payload = await services.executions.execute_serialised(
        tenant_id,
        integration_id,
        endpoint_name,
        body.input_data,
        body.options,
        context=body.context,
        request_id=request.scope["state"]["request_id"],
    )
    return Response(payload, media_type=JSON)


@router.post(
    "/api/v2/execute/batch",
    response_model=BatchResult,
    responses={
        422: {
            "description": f"More than {MAX_BATCH_ITEMS} items, a duplicate id, a dependency "
            "on an id not in the batch, or a dependency cycle; every offending item is named."
        },
    },
)
async def execute_batch(
    body: BatchRequest, tenant_id: TenantId, services: ServicesDep, request: Request
) -> BatchResult:
    """Run several executions, each after the items it `depends_on`, independent ones at once.

    At most MAX_CONCURRENT_INTEGRATIONS items run at a time. An item's mappings read its
    dependencies' results under `results.<id>` (its input document gets `results`: each direct
    dependency's `ExecutionResult` as JSON). An item never fails the batch; its result is
    `success: false` when:
    - a dependency did not succeed: `upstream_error`, "Not executed: dependency 'x' failed",
      `details.failed_dependencies`, `metadata.skipped: true`, and it is not called;
    - the single route would answer 404 or 409 (unknown integration or endpoint, another
      tenant's, disabled): `upstream_error` with that message and `details.status`;
    - it would answer 422 (input fails the schema or a required mapping): `mapping_error` with
      `details.status` 422 and `details.errors` naming every field.
    Otherwise the result is what the single route returns. Each result's `request_id` is
    `<X-Request-ID>:<item id>`.
    """
    results = await run_batch(
        services.executions,
        tenant_id,
        body.executions,
        request_id=request.scope["state"]["request_id"],
        max_concurrent=services.executions.max_concurrent,
    )
    return BatchResult(results=results)


@router.get("/api/v2/integrations/{integration_id}/executions")
async def list_executions(
    integration_id: str,
    tenant_id: TenantId,
    services: ServicesDep,
    limit: PageLimit = DEFAULT_LIMIT,
    cursor: PageCursor = None,
) -> ExecutionLogPage:
    """The integration's execution logs, newest first."""
    await services.integrations.get(tenant_id, integration_id)
    await _settle_logs(services.execution_logs)
    async with services.database.session() as session:
        rows = await ExecutionLogRepository(session).newest_first(
            tenant_id, integration_id, before=decode_cursor(cursor), limit=limit + 1
        )
    more = len(rows) > limit
    rows = rows[:limit]
    return ExecutionLogPage(
        items=[ExecutionLog.model_validate(row, from_attributes=True) for row in rows],
        next_cursor=encode_cursor(rows[-1].timestamp, rows[-1].log_id) if more else None,
    )


@router.get("/api/v2/integrations/{integration_id}/health")
async def integration_health(
    integration_id: str, tenant_id: TenantId, services: ServicesDep
) -> IntegrationHealth:
    """Health computed from the integration's most recent executions (and its OAuth2 state)."""
    config = await services.oauth.describe(
        await services.integrations.get(tenant_id, integration_id)
    )
    await _settle_logs(services.execution_logs)
    async with services.database.session() as session:
        rows = await ExecutionLogRepository(session).newest_first(
            tenant_id, integration_id, before=None, limit=WINDOW
        )
    health = compute_health(integration_id, rows)
    if config.auth_status is not None:
        health.auth_status = config.auth_status
        if config.auth_status != "ok":
            health.status = "unhealthy"  # nothing can succeed until a person connects it
    return health


@router.post("/api/v2/integrations/{integration_id}/test")
async def check_connection(
    integration_id: str,
    tenant_id: TenantId,
    services: ServicesDep,
    body: Annotated[ConnectionTestRequest | None, Body()] = None,
) -> ConnectionTestResult:
    """Call the integration's `test_endpoint` and report whether it answered successfully."""
    _test_mode(services)
    config = await services.integrations.get(tenant_id, integration_id)
    if config.test_endpoint is None:
        raise ValidationFailed.of(
            [(("test_endpoint",), "the integration has no test_endpoint to call")]
        )
    started = time.perf_counter()
    result = await services.executions.execute_integration(
        tenant_id,
        integration_id,
        config.test_endpoint,
        (body or ConnectionTestRequest()).input_data,
        ExecutionOptions(skip_cache=True),
    )
    return ConnectionTestResult(
        success=result.success,
        status_code=result.metadata.get("status_code"),
        latency_ms=round((time.perf_counter() - started) * 1000),
        error=result.error.message if result.error else None,
    )


@router.post("/api/v2/integrations/{integration_id}/test-cases")
async def run_test_cases(
    integration_id: str,
    cases: list[TestCase],
    tenant_id: TenantId,
    services: ServicesDep,
) -> list[TestCaseResult]:
    """Run each case through the pipeline and compare with its `expected_output`.

    `expected_output` is matched against the mapped data (objects on the keys it names, lists
    element by element), or against `{success, data, error, status_code}` when it names only
    those keys.
    """
    _test_mode(services)
    await services.integrations.get(tenant_id, integration_id)
    return list(
        await asyncio.gather(
            *(
                run_case(services.executions.execute_integration, tenant_id, integration_id, case)
                for case in cases
            )
        )
    )


def _test_mode(services: ServicesDep) -> None:
    if not services.settings.enable_test_mode:
        raise Forbidden("Integration tests are disabled (ENABLE_TEST_MODE=false)")


async def _settle_logs(writer: ExecutionLogWriter) -> None:
    """Give queued logs a moment to land, so a read right after an execution sees it."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(writer.flush(), timeout=1.0)
