"""Execution shapes on the wire beyond the specification's types."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from adaptor.domain import ExecutionLog, ExecutionOptions, ExecutionResult

MAX_BATCH_ITEMS = 100


class ExecutionLogPage(BaseModel):
    items: list[ExecutionLog]
    next_cursor: str | None


class ConnectionTestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_data: dict[str, Any] = Field(
        default_factory=dict, description="Input for the test endpoint's request mapping."
    )


class ConnectionTestResult(BaseModel):
    success: bool
    status_code: int | None
    latency_ms: int
    error: str | None


class TestCaseResult(BaseModel):
    __test__ = False

    name: str
    passed: bool
    actual: Any
    differences: list[dict[str, Any]]


class BatchItem(BaseModel):
    """One execution of a batch."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        min_length=1, max_length=128, description="Names the item in `depends_on` and results."
    )
    integration_id: str
    endpoint_name: str
    input_data: dict[str, Any] = Field(
        default_factory=dict,
        description="`results` is set to the results of the items this one depends on.",
    )
    context: dict[str, Any] = Field(default_factory=dict)
    options: ExecutionOptions = Field(default_factory=ExecutionOptions)
    depends_on: list[str] = Field(
        default_factory=list,
        max_length=MAX_BATCH_ITEMS,
        description="Ids of items that must finish, successfully, before this one runs.",
    )


class BatchRequest(BaseModel):
    """Body of `POST /api/v2/execute/batch`."""

    model_config = ConfigDict(extra="forbid")

    executions: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)


class BatchResult(BaseModel):
    results: dict[str, ExecutionResult] = Field(
        description="Every item's result by id, in the order of the request."
    )
