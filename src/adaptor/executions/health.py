"""Integration health derived from its most recent executions."""

from __future__ import annotations

from collections.abc import Sequence

from adaptor.domain import IntegrationHealth
from adaptor.storage.tables import ExecutionLogRow

WINDOW = 200
"""How many of the newest executions the health is computed from."""


def compute_health(
    integration_id: str, newest_first: Sequence[ExecutionLogRow]
) -> IntegrationHealth:
    """healthy: under 10 % errors and fewer than 3 failures in a row; unhealthy: half or more
    failing, or 5 in a row; degraded in between. No executions yet reads as healthy."""
    total = len(newest_first)
    if total == 0:
        return IntegrationHealth(
            integration_id=integration_id,
            status="healthy",
            uptime_percentage=100.0,
            average_latency_ms=0,
            error_rate=0.0,
            sample_size=0,
        )
    failures = sum(1 for row in newest_first if not row.success)
    consecutive = 0
    for row in newest_first:
        if row.success:
            break
        consecutive += 1
    error_rate = failures / total
    last_success = next((r.timestamp for r in newest_first if r.success), None)
    last_error = next((r.timestamp for r in newest_first if not r.success), None)
    if error_rate >= 0.5 or consecutive >= 5:
        status = "unhealthy"
    elif error_rate >= 0.1 or consecutive >= 3:
        status = "degraded"
    else:
        status = "healthy"
    return IntegrationHealth(
        integration_id=integration_id,
        status=status,
        uptime_percentage=round(100 * (1 - error_rate), 2),
        average_latency_ms=round(sum(r.duration_ms for r in newest_first) / total),
        error_rate=round(error_rate, 4),
        last_success=last_success,
        last_error=last_error,
        consecutive_failures=consecutive,
        sample_size=total,
    )
