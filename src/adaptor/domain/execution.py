"""Execution types: a request to run an endpoint, its result, its log and health."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from adaptor.domain.integration import RetryConfig, StrictModel
from adaptor.ids import new_time_ordered_uuid


class ErrorCode(StrEnum):
    """`ExecutionResult.error.code`: every way an execution can fail after validation."""

    UPSTREAM_ERROR = "upstream_error"
    TIMEOUT = "timeout"
    NETWORK_ERROR = "network_error"
    CIRCUIT_OPEN = "circuit_open"
    RATE_LIMITED = "rate_limited"
    AUTH_FAILED = "auth_failed"
    MAPPING_ERROR = "mapping_error"
    BLOCKED_DESTINATION = "blocked_destination"


class ExecutionOptions(StrictModel):
    timeout_override_ms: int | None = Field(default=None, ge=100, le=60000)
    skip_cache: bool = False
    debug_mode: bool = False
    mock_response: Any | None = Field(
        default=None, description="Skip the upstream call and map this body instead."
    )
    retry_override: RetryConfig | None = None
    include_raw_response: bool = Field(
        default=False,
        description="Return the upstream's parsed body in `raw_response` (always with debug).",
    )


class ExecutionRequest(StrictModel):
    """Body of `POST /api/v2/execute/{integration_id}/{endpoint_name}`."""

    input_data: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    options: ExecutionOptions = Field(default_factory=ExecutionOptions)


class ErrorDetail(BaseModel):
    code: ErrorCode
    message: str
    details: dict[str, Any] | None = None
    retry_after: int | None = None


class ExecutionResult(BaseModel):
    request_id: str
    success: bool
    data: Any | None = None
    raw_response: Any | None = None
    error: ErrorDetail | None = None
    execution_time_ms: int
    cached: bool = False
    retries: int = 0
    metadata: dict[str, Any] = Field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class IntegrationResponse:
    """What a protocol adapter returns for one upstream call.

    A plain dataclass, not a model: every execution builds one from values the adapter has
    already checked, and validating them again (each header among them) cost a few
    microseconds of every call."""

    success: bool
    status_code: int | None = None
    data: Any | None = None
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    execution_time_ms: int = 0
    request_size_bytes: int = 0
    response_size_bytes: int = 0
    retries: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    """Facts about the answer for `ExecutionResult.metadata` (e.g. `truncated`)."""


class ExecutionLog(BaseModel):
    log_id: str = Field(default_factory=new_time_ordered_uuid)
    tenant_id: str
    integration_id: str
    endpoint_name: str
    request_id: str
    timestamp: datetime
    duration_ms: int
    success: bool
    status_code: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    request_size_bytes: int = 0
    response_size_bytes: int = 0
    retry_count: int = 0
    cached: bool = False


class IntegrationHealth(BaseModel):
    integration_id: str
    status: Literal["healthy", "degraded", "unhealthy"]
    uptime_percentage: float
    average_latency_ms: int
    error_rate: float
    last_success: datetime | None = None
    last_error: datetime | None = None
    consecutive_failures: int = 0
    sample_size: int = 0
    auth_status: Literal["ok", "needs_authorization", "needs_reauthorization"] | None = Field(
        default=None, description="oauth2 integrations: whether a person must (re)connect it."
    )
