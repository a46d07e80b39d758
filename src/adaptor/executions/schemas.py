"""Execution shapes on the wire beyond the specification's types."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from adaptor.domain import ExecutionLog


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
