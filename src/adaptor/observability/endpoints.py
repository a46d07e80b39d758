"""Operational routes: liveness, readiness, metrics."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Response

from adaptor.dependencies import ServicesDep
from adaptor.storage.kv_failover import FailoverStore

router = APIRouter(tags=["operations"])


@router.get("/health/live")
async def live() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get("/health/ready", responses={503: {"description": "A dependency is unreachable."}})
async def ready(services: ServicesDep) -> Response:
    """Database and cache reachable: 200, else 503 naming each failing dependency.

    An unreachable Redis is reported as `cache: degraded`: executions continue with limits and
    circuit breakers kept per process and no response cache until it answers again. With
    EVENTS_URL set, `events` is `ok`, or `degraded` while the sink refuses events (they wait in
    the database; readiness is not failed for it). While draining after a stop signal: 503
    with `status: draining`.
    """
    cache_up = await services.kv.ping()
    degraded = isinstance(services.kv, FailoverStore)
    checks = {
        "database": "ok" if await services.database.ping() else "unreachable",
        "cache": "ok" if cache_up else "degraded" if degraded else "unreachable",
    }
    if services.vault is not None:
        checks["vault"] = "ok" if await services.vault.ping() else "unreachable"
    failing = [name for name, state in checks.items() if state != "ok"]
    if services.relay is not None:
        checks["events"] = services.relay.state
    # Undecryptable stored secrets are reported, not a 503: every replica shares them, so
    # taking this one out of the load balancer would fix nothing.
    undecryptable = services.undecryptable_integrations
    checks["encryption"] = "degraded" if undecryptable else "ok"
    status = "unavailable" if failing else "degraded" if undecryptable else "ok"
    body: dict[str, object] = {
        "status": "draining" if services.draining else status,
        "checks": checks,
        "backends": {
            "database": "postgresql" if not services.database.is_sqlite else "sqlite",
            "cache": "redis" if services.settings.redis_url else "memory",
        },
    }
    if failing:
        detail = "unreachable: " + ", ".join(failing)
        if checks["cache"] == "degraded":
            detail += (
                " (cache degraded: executions continue with per-process rate limits and"
                " circuit breakers, and no response cache)"
            )
        body["detail"] = detail
    elif undecryptable:
        body["detail"] = (
            f"encryption degraded: the stored secrets of {undecryptable} integration(s) cannot "
            "be decrypted with any configured ENCRYPTION_KEY; their executions answer auth_failed"
        )
    unready = bool(failing) or services.draining
    return Response(
        orjson.dumps(body), status_code=503 if unready else 200, media_type="application/json"
    )


@router.get("/metrics", response_class=Response)
async def metrics(services: ServicesDep) -> Response:
    """Prometheus metrics in the text exposition format."""
    services.metrics.log_queue.set(services.execution_logs.pending)
    services.metrics.outbox_queue.set(services.outbox.pending)
    return Response(services.metrics.render(), media_type="text/plain; version=0.0.4")
