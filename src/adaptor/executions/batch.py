"""Batch execution: several executions in one request, ordered by their dependencies.

    check_plan(items)                      422 naming every duplicate id, unknown dependency
                                           and item caught in a dependency cycle
    await run_batch(service, tenant, items) {id: ExecutionResult}, in request order

Each item runs as soon as every item it `depends_on` has finished, so independent items run
concurrently, at most `max_concurrent` at a time (MAX_CONCURRENT_INTEGRATIONS). An item's input
document is its `input_data` with `results` set to `{dependency id: that dependency's
ExecutionResult as JSON}` (its direct dependencies only, secrets already scrubbed), so its
mappings can read `results.<id>.data...`; a `results` key in `input_data` is replaced.

Nothing an item does fails the batch. Its result is `success: false` with:
- a dependency that did not succeed: `upstream_error`, "dependency 'x' failed", the item is
  not called (`details.failed_dependencies`, `metadata.skipped: true`);
- what the single execution route answers with 404 or 409 (unknown or another tenant's
  integration or endpoint, disabled integration): `upstream_error` with the same message and
  `details.status` 404 or 409;
- what it answers with 422 (input fails the endpoint's schema or a required mapping):
  `mapping_error` with `details.status` 422 and `details.errors` naming every field.
Everything else is the item's own `ExecutionResult`, exactly as the single route returns it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import structlog

from adaptor.domain import ErrorCode, ErrorDetail, ExecutionResult
from adaptor.errors import AdaptorError, Loc, ValidationFailed
from adaptor.executions.schemas import BatchItem
from adaptor.executions.service import ExecutionService

log = structlog.get_logger("adaptor.executions.batch")

__all__ = ["check_plan", "run_batch"]


def check_plan(items: Sequence[BatchItem]) -> None:
    """Raise `ValidationFailed` naming every duplicate id, every dependency on an id not in
    the batch and every item in a dependency cycle (an item depending on itself included)."""
    problems: list[tuple[Loc, str]] = []
    index: dict[str, int] = {}
    for position, item in enumerate(items):
        if item.id in index:
            problems.append(
                (
                    ("body", "executions", position, "id"),
                    f"duplicate id {item.id!r} (also item {index[item.id]})",
                )
            )
        else:
            index[item.id] = position
    for position, item in enumerate(items):
        for slot, dependency in enumerate(item.depends_on):
            if dependency not in index:
                problems.append(
                    (
                        ("body", "executions", position, "depends_on", slot),
                        f"item {item.id!r} depends on {dependency!r}, which is not in the batch",
                    )
                )
    if problems:
        raise ValidationFailed.of(problems)
    graph = {item.id: list(dict.fromkeys(item.depends_on)) for item in items}
    for cycle in _cycles(graph):
        if len(cycle) == 1:
            message = f"item {cycle[0]!r} depends on itself"
        else:
            members = ", ".join(repr(member) for member in cycle)
            message = f"dependency cycle between items {members}"
        for member in cycle:
            problems.append((("body", "executions", index[member], "depends_on"), message))
    if problems:
        raise ValidationFailed.of(problems)


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """The strongly connected components that contain a cycle (Tarjan), members in the order
    the graph lists them."""
    order = {node: position for position, node in enumerate(graph)}
    low: dict[str, int] = {}
    number: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        number[node] = low[node] = len(number)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in number:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], number[successor])
        if low[node] == number[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component, key=order.__getitem__))

    for node in graph:  # at most MAX_BATCH_ITEMS deep: recursion is fine
        if node not in number:
            visit(node)
    return sorted(found, key=lambda component: order[component[0]])


async def run_batch(
    service: ExecutionService,
    tenant_id: str,
    items: Sequence[BatchItem],
    *,
    request_id: str,
    max_concurrent: int,
) -> dict[str, ExecutionResult]:
    """Run a checked batch (see `check_plan`) and return every item's result by id."""
    check_plan(items)
    loop = asyncio.get_running_loop()
    finished: dict[str, asyncio.Future[ExecutionResult]] = {
        item.id: loop.create_future() for item in items
    }
    slots = asyncio.Semaphore(max_concurrent)

    async def run(item: BatchItem) -> None:
        future = finished[item.id]
        try:
            dependencies = list(dict.fromkeys(item.depends_on))
            results = {dependency: await finished[dependency] for dependency in dependencies}
            failed = [dependency for dependency, result in results.items() if not result.success]
            if failed:
                result = _skipped(item, failed, f"{request_id}:{item.id}")
            else:
                async with slots:
                    result = await _execute(service, tenant_id, item, results, request_id)
            future.set_result(result)
        finally:
            if not future.done():  # cancelled: release anything still waiting on this item
                future.cancel()

    await asyncio.gather(*(run(item) for item in items))
    return {item.id: finished[item.id].result() for item in items}


async def _execute(
    service: ExecutionService,
    tenant_id: str,
    item: BatchItem,
    dependencies: dict[str, ExecutionResult],
    request_id: str,
) -> ExecutionResult:
    item_request_id = f"{request_id}:{item.id}"
    input_data = item.input_data
    if item.depends_on:
        input_data = {
            **input_data,
            "results": {
                dependency: result.model_dump(mode="json")
                for dependency, result in dependencies.items()
            },
        }
    started = time.perf_counter()
    try:
        return await service.execute_integration(
            tenant_id,
            item.integration_id,
            item.endpoint_name,
            input_data,
            item.options,
            context=item.context,
            request_id=item_request_id,
        )
    except AdaptorError as exc:
        code = ErrorCode.MAPPING_ERROR if exc.status_code == 422 else ErrorCode.UPSTREAM_ERROR
        details: dict[str, Any] = {"status": exc.status_code}
        if exc.errors:
            details["errors"] = exc.errors
        error = ErrorDetail(code=code, message=exc.message, details=details)
    except Exception as exc:  # a defect in one item must not fail the others
        log.error(
            "executions.batch_item_failed",
            integration_id=item.integration_id,
            endpoint=item.endpoint_name,
            error_type=type(exc).__name__,
        )
        error = ErrorDetail(
            code=ErrorCode.UPSTREAM_ERROR, message="The execution failed unexpectedly"
        )
    return ExecutionResult(
        request_id=item_request_id,
        success=False,
        error=error,
        execution_time_ms=round((time.perf_counter() - started) * 1000),
        metadata=_metadata(item),
    )


def _skipped(item: BatchItem, failed: list[str], request_id: str) -> ExecutionResult:
    names = ", ".join(repr(dependency) for dependency in failed)
    plural = "dependencies" if len(failed) > 1 else "dependency"
    return ExecutionResult(
        request_id=request_id,
        success=False,
        error=ErrorDetail(
            code=ErrorCode.UPSTREAM_ERROR,
            message=f"Not executed: {plural} {names} failed",
            details={"failed_dependencies": failed},
        ),
        execution_time_ms=0,
        metadata={**_metadata(item), "skipped": True},
    )


def _metadata(item: BatchItem) -> dict[str, Any]:
    return {
        "status_code": None,
        "integration_id": item.integration_id,
        "endpoint": item.endpoint_name,
    }
