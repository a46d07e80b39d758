"""Retry, circuit breaker, rate limits and the response cache, end to end through the API.

Every test runs on both stacks (SQLite + in-process store, PostgreSQL + Redis) against the
loopback upstream, which counts what reaches it.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from adaptor.app import create_app
from adaptor.services import Services
from tests.conftest import Backend, Tenant, make_settings, new_tenant, serve_app
from tests.executions.test_execute import CUSTOMERS, create, execute, integration
from tests.executions.upstream import Reply, Upstream

FAST_RETRIES = {"max_retries": 3, "initial_delay_ms": 10, "max_delay_ms": 50}
CUSTOMER = {"id": "cus_9", "email": "n@x.io"}


def gaps(upstream: Upstream, path: str) -> list[float]:
    """Seconds between consecutive requests the upstream received on `path`."""
    times = [seen.at for seen in upstream.seen if seen.path == path]
    return [later - earlier for earlier, later in itertools.pairwise(times)]


async def logs(client: httpx.AsyncClient, tenant: Tenant, integration_id: str) -> list[Any]:
    response = await client.get(
        f"/api/v2/integrations/{integration_id}/executions", headers=tenant.headers
    )
    assert response.status_code == 200
    items: list[Any] = response.json()["items"]
    return items


@asynccontextmanager
async def running_app(
    tmp_path: Path, backend: Backend, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, Tenant]]:
    """A service with its own settings, a client on it and a tenant."""
    async with serve_app(create_app(make_settings(tmp_path, backend, **overrides))) as client:
        yield client, await new_tenant(client)


# -- retry ----------------------------------------------------------------------------------


async def test_two_failures_then_success_is_a_success_after_two_retries(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply(
        "GET",
        "/v1/customers",
        Reply(503, {"message": "busy"}),
        Reply(502, {"message": "bad gateway"}),
        Reply(json=CUSTOMERS),
    )
    integration_id = await create(
        app_client, tenant, integration(upstream, retry_config=FAST_RETRIES)
    )
    result = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert result["success"] is True, result
    assert result["retries"] == 2
    assert upstream.count() == 3
    [entry] = await logs(app_client, tenant, integration_id)
    assert entry["retry_count"] == 2
    assert entry["success"] is True


async def test_a_post_is_not_retried_unless_the_endpoint_allows_it(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    body = {"user_data": {"email": "n@x.io"}}
    upstream.reply("POST", "/v1/customers", Reply(503, {"message": "busy"}), Reply(json=CUSTOMER))
    strict = await create(app_client, tenant, integration(upstream, retry_config=FAST_RETRIES))
    refused = (await execute(app_client, tenant, strict, "create_customer", body)).json()
    assert refused["success"] is False
    assert refused["retries"] == 0
    assert upstream.count() == 1

    upstream.reply("POST", "/v1/customers", Reply(503, {"message": "busy"}), Reply(json=CUSTOMER))
    document = integration(upstream, retry_config=FAST_RETRIES)
    document["endpoints"]["create_customer"]["retry_non_idempotent"] = True
    allowed = await create(app_client, tenant, document)
    retried = (await execute(app_client, tenant, allowed, "create_customer", body)).json()
    assert retried["success"] is True, retried
    assert retried["retries"] == 1
    assert upstream.count() == 3


@pytest.mark.parametrize(
    ("retry_on", "attempts"),
    [
        ({}, 2),
        ({"retry_on_errors": ["connection_error"]}, 1),
    ],
)
async def test_a_timeout_is_retried_only_when_retry_on_errors_names_it(
    app_client: httpx.AsyncClient,
    tenant: Tenant,
    upstream: Upstream,
    retry_on: dict[str, Any],
    attempts: int,
) -> None:
    slow, fast = Reply(json=CUSTOMERS, delay_s=0.5), Reply(json=CUSTOMERS)
    upstream.reply("GET", "/v1/customers", slow, fast)
    document = integration(upstream, timeout_ms=200, retry_config={**FAST_RETRIES, **retry_on})
    integration_id = await create(app_client, tenant, document)
    result = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert result["success"] is (attempts == 2)
    assert result["retries"] == attempts - 1
    assert upstream.count() == attempts


async def test_a_status_is_retried_only_when_retry_on_status_names_it(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(503, {"message": "busy"}), Reply(json=CUSTOMERS))
    document = integration(upstream, retry_config={**FAST_RETRIES, "retry_on_status": [500]})
    integration_id = await create(app_client, tenant, document)
    result = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert result["error"]["code"] == "upstream_error"
    assert result["metadata"]["status_code"] == 503
    assert upstream.count() == 1


async def test_retry_override_replaces_the_integrations_policy(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply(
        "GET", "/v1/customers", Reply(500, {"message": "x"}), Reply(500), Reply(json=CUSTOMERS)
    )
    integration_id = await create(app_client, tenant, integration(upstream))  # max_retries 0
    result = (
        await execute(
            app_client,
            tenant,
            integration_id,
            "list_customers",
            options={"retry_override": FAST_RETRIES},
        )
    ).json()
    assert result["success"] is True, result
    assert result["retries"] == 2


async def test_a_429_retry_waits_for_retry_after_in_seconds(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply(
        "GET",
        "/v1/customers",
        Reply(429, {"message": "slow down"}, headers={"Retry-After": "1"}),
        Reply(json=CUSTOMERS),
    )
    document = integration(upstream, retry_config={"max_retries": 1, "max_delay_ms": 5000})
    integration_id = await create(app_client, tenant, document)
    result = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert result["success"] is True, result
    assert result["retries"] == 1
    [gap] = gaps(upstream, "/v1/customers")
    assert 1.0 <= gap < 2.0


async def test_a_429_retry_waits_for_retry_after_as_an_http_date(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    def limited(_: Any) -> Reply:
        when = datetime.now(UTC) + timedelta(seconds=2)
        return Reply(
            429, {"message": "later"}, headers={"Retry-After": format_datetime(when, True)}
        )

    replies = iter([limited, lambda _: Reply(json=CUSTOMERS)])
    upstream.respond("GET", "/v1/customers", lambda seen: next(replies)(seen))
    document = integration(upstream, retry_config={"max_retries": 1, "max_delay_ms": 5000})
    integration_id = await create(app_client, tenant, document)
    result = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert result["success"] is True, result
    [gap] = gaps(upstream, "/v1/customers")
    # The date has whole seconds: "now + 2 s" rounded down is 1-2 s away.
    assert 1.0 <= gap < 3.0


async def test_a_retry_after_beyond_the_delay_cap_ends_the_run_at_once(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply(
        "GET",
        "/v1/customers",
        Reply(429, {"message": "come back later"}, headers={"Retry-After": "30"}),
    )
    document = integration(upstream, retry_config={"max_retries": 3, "max_delay_ms": 1000})
    integration_id = await create(app_client, tenant, document)
    started = time.monotonic()
    result = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert time.monotonic() - started < 1.0
    assert result["error"]["code"] == "rate_limited"
    assert result["error"]["retry_after"] == 30
    assert upstream.count() == 1


async def test_retry_after_reports_what_the_upstream_asked_not_our_jittered_wait(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply(
        "GET", "/v1/customers", Reply(429, {"message": "slow"}, headers={"Retry-After": "7"})
    )
    document = integration(upstream, retry_config={"max_retries": 0})
    integration_id = await create(app_client, tenant, document)
    result = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert result["error"]["code"] == "rate_limited"
    assert result["error"]["retry_after"] == 7


async def test_a_retry_never_sleeps_past_the_deadline(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(503, headers={"Retry-After": "1"}))
    document = integration(upstream, retry_config={"max_retries": 3, "max_delay_ms": 5000})
    integration_id = await create(app_client, tenant, document)
    result = (
        await execute(
            app_client,
            tenant,
            integration_id,
            "list_customers",
            options={"timeout_override_ms": 500},
        )
    ).json()
    assert result["error"]["code"] == "upstream_error"
    assert result["execution_time_ms"] < 500
    assert upstream.count() == 1


# -- circuit breaker ------------------------------------------------------------------------


def breaker(threshold: int, recovery_s: float) -> dict[str, Any]:
    return {"failure_threshold": threshold, "recovery_timeout_s": recovery_s}


async def test_five_failures_open_the_circuit_and_the_upstream_hears_nothing_until_recovery(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(503, {"message": "down"}))
    document = integration(upstream, circuit_breaker=breaker(5, 0.5))
    integration_id = await create(app_client, tenant, document)
    for _ in range(5):
        failed = (await execute(app_client, tenant, integration_id, "list_customers")).json()
        assert failed["error"]["code"] == "upstream_error"
    for _ in range(3):
        rejected = (await execute(app_client, tenant, integration_id, "list_customers")).json()
        assert rejected["success"] is False
        assert rejected["error"]["code"] == "circuit_open"
        assert rejected["error"]["retry_after"] == 1  # 0.5 s left at most, rounded up
    assert upstream.count() == 5

    await asyncio.sleep(0.55)
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    probe = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert probe["success"] is True, probe
    closed = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert closed["success"] is True
    assert upstream.count() == 7


async def test_a_failed_probe_opens_the_circuit_again(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(503, {"message": "down"}))
    integration_id = await create(
        app_client, tenant, integration(upstream, circuit_breaker=breaker(1, 0.3))
    )
    await execute(app_client, tenant, integration_id, "list_customers")
    await asyncio.sleep(0.35)
    probe = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    after = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert probe["error"]["code"] == "upstream_error"
    assert after["error"]["code"] == "circuit_open"
    assert upstream.count() == 2


async def test_an_open_circuit_spends_no_rate_limit_budget(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    # The breaker check and the rate limit are one store step: an open breaker takes nothing.
    upstream.reply("GET", "/v1/customers", Reply(503, {"message": "down"}))
    document = integration(
        upstream, rate_limit={"requests_per_minute": 3}, circuit_breaker=breaker(1, 0.3)
    )
    integration_id = await create(app_client, tenant, document)
    failed = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert failed["error"]["code"] == "upstream_error"
    for _ in range(3):
        rejected = (await execute(app_client, tenant, integration_id, "list_customers")).json()
        assert rejected["error"]["code"] == "circuit_open"
    await asyncio.sleep(0.35)
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    for _ in range(2):  # the probe, then a call on the closed circuit: hits 2 and 3 of 3
        result = (await execute(app_client, tenant, integration_id, "list_customers")).json()
        assert result["success"] is True, result
    refused = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert refused["error"]["code"] == "rate_limited"
    assert upstream.count() == 3


async def test_the_configured_fallback_is_served_while_the_circuit_is_open(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(503, {"message": "down"}))
    document = integration(upstream, circuit_breaker=breaker(1, 30))
    document["endpoints"]["list_customers"]["fallback_response"] = [{"id": "unknown"}]
    integration_id = await create(app_client, tenant, document)
    await execute(app_client, tenant, integration_id, "list_customers")
    result = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert result["success"] is True
    assert result["data"] == [{"id": "unknown"}]
    assert result["metadata"]["fallback"] is True
    assert result["cached"] is False
    assert upstream.count() == 1


async def test_the_last_cached_response_is_served_while_the_circuit_is_open(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    document = integration(upstream, circuit_breaker=breaker(2, 30))
    document["endpoints"]["list_customers"]["cache_config"] = {"ttl_seconds": 1}
    document["endpoints"]["list_customers"]["fallback_response"] = [{"id": "unknown"}]
    integration_id = await create(app_client, tenant, document)
    fresh = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert fresh["success"] is True

    upstream.reply("GET", "/v1/customers", Reply(503, {"message": "down"}))
    for _ in range(2):
        failed = (
            await execute(
                app_client, tenant, integration_id, "list_customers", options={"skip_cache": True}
            )
        ).json()
        assert failed["error"]["code"] == "upstream_error"
    await asyncio.sleep(1.1)  # the entry has expired; its stale copy is what is left
    result = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert result["success"] is True
    assert result["cached"] is True
    assert result["metadata"]["fallback"] is True
    assert result["data"] == fresh["data"]
    assert upstream.count() == 3


async def test_mapping_errors_never_trip_the_breaker(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream, services: Services
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json={"value": 5}))
    document = integration(upstream, circuit_breaker=breaker(1, 30))
    document["endpoints"]["list_customers"]["response_mapping"] = {"data_path": "length(value)"}
    integration_id = await create(app_client, tenant, document)
    for _ in range(3):
        result = (await execute(app_client, tenant, integration_id, "list_customers")).json()
        assert result["error"]["code"] == "mapping_error"
    unmappable = await execute(app_client, tenant, integration_id, "create_customer", {})
    assert unmappable.status_code == 422
    assert upstream.count() == 3
    runtime = await services.runtimes.get(tenant.tenant_id, integration_id)
    assert (await runtime.breaker.snapshot()).consecutive_failures == 0


async def test_client_errors_never_trip_the_breaker(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(404, {"message": "no such customer"}))
    integration_id = await create(
        app_client, tenant, integration(upstream, circuit_breaker=breaker(1, 30))
    )
    for _ in range(3):
        result = (await execute(app_client, tenant, integration_id, "list_customers")).json()
        assert result["error"]["code"] == "upstream_error"
        assert result["metadata"]["status_code"] == 404
    assert upstream.count() == 3


# -- rate limits ----------------------------------------------------------------------------


async def test_a_request_over_the_limit_waits_when_its_slot_opens_in_time(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    # 120 a minute with bursts of 1: one request every 0.5 s.
    limit = {"requests_per_minute": 120, "burst_size": 1}
    integration_id = await create(app_client, tenant, integration(upstream, rate_limit=limit))
    first = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    second = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert first["success"] is True
    assert second["success"] is True
    assert second["execution_time_ms"] >= 400
    [gap] = gaps(upstream, "/v1/customers")
    assert gap >= 0.45


async def test_a_request_whose_slot_opens_after_its_deadline_is_rate_limited(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    limit = {"requests_per_minute": 2}
    integration_id = await create(app_client, tenant, integration(upstream, rate_limit=limit))
    for _ in range(2):
        ok = (await execute(app_client, tenant, integration_id, "list_customers")).json()
        assert ok["success"] is True
    started = time.monotonic()
    refused = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert time.monotonic() - started < 1.0
    assert refused["success"] is False
    assert refused["error"]["code"] == "rate_limited"
    assert 50 <= refused["error"]["retry_after"] <= 60
    assert upstream.count() == 2


async def test_our_own_rate_limit_never_trips_the_breaker(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    document = integration(
        upstream, rate_limit={"requests_per_minute": 1}, circuit_breaker=breaker(1, 30)
    )
    integration_id = await create(app_client, tenant, document)
    codes = [
        (await execute(app_client, tenant, integration_id, "list_customers")).json().get("error")
        for _ in range(4)
    ]
    assert codes[0] is None
    assert [error["code"] for error in codes[1:]] == ["rate_limited"] * 3


async def test_retries_count_against_the_rate_limit(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(503, {"message": "busy"}))
    document = integration(
        upstream, retry_config=FAST_RETRIES, rate_limit={"requests_per_minute": 2}
    )
    integration_id = await create(app_client, tenant, document)
    result = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    # The limit stopped the second retry; what failed is still the upstream.
    assert result["error"]["code"] == "upstream_error"
    assert result["metadata"]["status_code"] == 503
    assert result["retries"] == 1
    assert upstream.count() == 2
    later = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert later["error"]["code"] == "rate_limited"
    assert upstream.count() == 2


async def test_an_exhausted_upstream_quota_pauses_calls_before_a_429(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    quota_spent = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1"}
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS, headers=quota_spent))
    integration_id = await create(app_client, tenant, integration(upstream))
    first = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    hurried = (
        await execute(
            app_client,
            tenant,
            integration_id,
            "list_customers",
            options={"timeout_override_ms": 300},
        )
    ).json()
    assert first["success"] is True
    assert hurried["error"]["code"] == "rate_limited"
    assert hurried["error"]["retry_after"] == 1
    assert upstream.count() == 1
    patient = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert patient["success"] is True
    [gap] = gaps(upstream, "/v1/customers")
    assert gap >= 0.9


async def test_concurrent_requests_limit_holds(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS, delay_s=0.1))
    limit = {"concurrent_requests": 2}
    integration_id = await create(app_client, tenant, integration(upstream, rate_limit=limit))
    results = await asyncio.gather(
        *(execute(app_client, tenant, integration_id, "list_customers") for _ in range(6))
    )
    assert all(response.json()["success"] for response in results)
    assert upstream.max_in_flight == 2


async def test_max_concurrent_integrations_caps_upstream_calls_in_a_process(
    tmp_path: Path, backend: Backend, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS, delay_s=0.1))
    async with running_app(tmp_path, backend, max_concurrent_integrations=2) as (client, tenant):
        first = await create(client, tenant, integration(upstream))
        second = await create(client, tenant, integration(upstream))
        results = await asyncio.gather(
            *(
                execute(client, tenant, integration_id, "list_customers")
                for integration_id in (first, second) * 3
            )
        )
    assert all(response.json()["success"] for response in results)
    assert upstream.max_in_flight == 2
    assert upstream.count() == 6


# -- response cache -------------------------------------------------------------------------


def cached_integration(upstream: Upstream, **cache: Any) -> dict[str, Any]:
    document = integration(upstream)
    document["endpoints"]["list_customers"]["cache_config"] = {"ttl_seconds": 60, **cache}
    return document


async def test_a_cache_hit_never_reaches_the_upstream(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    integration_id = await create(app_client, tenant, cached_integration(upstream))
    miss = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    hit = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert (miss["cached"], hit["cached"]) == (False, True)
    assert hit["data"] == miss["data"]
    assert upstream.count() == 1
    assert [entry["cached"] for entry in await logs(app_client, tenant, integration_id)] == [
        True,
        False,
    ]


async def test_skip_cache_calls_the_upstream_and_refreshes_the_entry(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    newer = {"data": [{"id": "cus_3", "email": "c@x.io", "balance": 1}]}
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS), Reply(json=newer))
    integration_id = await create(app_client, tenant, cached_integration(upstream))
    await execute(app_client, tenant, integration_id, "list_customers")
    skipped = (
        await execute(
            app_client, tenant, integration_id, "list_customers", options={"skip_cache": True}
        )
    ).json()
    after = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert skipped["cached"] is False
    assert skipped["data"] == [{"id": "cus_3", "email": "c@x.io", "balance": 1}]
    assert (after["cached"], after["data"]) == (True, skipped["data"])
    assert upstream.count() == 2


async def test_a_success_of_an_invalidating_endpoint_drops_cached_responses(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    upstream.reply("POST", "/v1/customers", Reply(json=CUSTOMER))
    document = cached_integration(upstream, invalidate_on=["create_customer"])
    integration_id = await create(app_client, tenant, document)
    await execute(app_client, tenant, integration_id, "list_customers")
    assert (await execute(app_client, tenant, integration_id, "list_customers")).json()["cached"]
    created = await execute(
        app_client, tenant, integration_id, "create_customer", {"user_data": {"email": "n@x.io"}}
    )
    assert created.json()["success"] is True
    after = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert after["cached"] is False
    assert upstream.count("/v1/customers") == 3  # two GETs and the POST


async def test_failures_are_not_cached(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(500, {"message": "boom"}), Reply(json=CUSTOMERS))
    integration_id = await create(app_client, tenant, cached_integration(upstream))
    outcomes = [
        (await execute(app_client, tenant, integration_id, "list_customers")).json()
        for _ in range(3)
    ]
    assert [(r["success"], r["cached"]) for r in outcomes] == [
        (False, False),
        (True, False),
        (True, True),
    ]
    assert upstream.count() == 2


async def test_cache_key_fields_decide_which_inputs_share_an_entry(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    document = cached_integration(upstream, cache_key_fields=["user_data.email"])
    integration_id = await create(app_client, tenant, document)

    async def cached(email: str, limit: int) -> bool:
        input_data = {"user_data": {"email": email}, "variables": {"limit": limit}}
        result = await execute(app_client, tenant, integration_id, "list_customers", input_data)
        return bool(result.json()["cached"])

    assert [await cached("a@x.io", 1), await cached("a@x.io", 2), await cached("b@x.io", 1)] == [
        False,
        True,
        False,
    ]
    assert upstream.count() == 2


async def test_without_key_fields_every_input_has_its_own_entry(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    integration_id = await create(app_client, tenant, cached_integration(upstream))
    for limit in (1, 2, 1, 2):
        await execute(
            app_client, tenant, integration_id, "list_customers", {"variables": {"limit": limit}}
        )
    assert upstream.count() == 2


async def test_entries_are_never_shared_between_integrations_or_tenants(
    app_client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    document = cached_integration(upstream, cache_key_fields=["user_data.email"])
    mine = await create(app_client, tenant, document)
    also_mine = await create(app_client, tenant, document)
    theirs = await create(app_client, other_tenant, document)
    same_input = {"user_data": {"email": "a@x.io"}}
    for caller, integration_id in ((tenant, mine), (tenant, also_mine), (other_tenant, theirs)):
        result = await execute(app_client, caller, integration_id, "list_customers", same_input)
        assert result.json()["cached"] is False
    assert upstream.count() == 3


async def test_changing_an_integration_drops_its_cached_responses(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    integration_id = await create(app_client, tenant, cached_integration(upstream))
    await execute(app_client, tenant, integration_id, "list_customers")
    patched = await app_client.patch(
        f"/api/v2/integrations/{integration_id}",
        json={"headers": {"X-Api-Version": "2"}},
        headers=tenant.headers,
    )
    assert patched.status_code == 200
    after = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert after["cached"] is False
    assert upstream.seen[-1].headers["x-api-version"] == "2"


async def test_concurrent_identical_misses_reach_the_upstream_once(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS, delay_s=0.1))
    integration_id = await create(app_client, tenant, cached_integration(upstream))
    results = await asyncio.gather(
        *(execute(app_client, tenant, integration_id, "list_customers") for _ in range(8))
    )
    assert sorted(response.json()["cached"] for response in results) == [False] + [True] * 7
    assert upstream.count() == 1


async def test_response_caching_can_be_switched_off(
    tmp_path: Path, backend: Backend, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    async with running_app(tmp_path, backend, enable_response_caching=False) as (client, tenant):
        integration_id = await create(client, tenant, cached_integration(upstream))
        results = [
            (await execute(client, tenant, integration_id, "list_customers")).json()
            for _ in range(2)
        ]
    assert [result["cached"] for result in results] == [False, False]
    assert upstream.count() == 2


@pytest.mark.parametrize("option", ["mock_response", "skip_cache"])
async def test_mocked_or_skipping_calls_never_read_the_cache(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream, option: str
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    integration_id = await create(app_client, tenant, cached_integration(upstream))
    await execute(app_client, tenant, integration_id, "list_customers")
    options = {"mock_response": {"data": []}} if option == "mock_response" else {option: True}
    result = (
        await execute(app_client, tenant, integration_id, "list_customers", options=options)
    ).json()
    assert result["cached"] is False


# -- without Redis --------------------------------------------------------------------------


async def test_with_redis_down_executions_go_on_with_per_process_limits_and_no_cache(
    tmp_path: Path, upstream: Upstream
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nobody_listens = probe.getsockname()[1]
    redis_down = Backend("redis-down", None, f"redis://127.0.0.1:{nobody_listens}/0")
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    document = cached_integration(upstream)
    document["rate_limit"] = {"requests_per_minute": 2}
    async with running_app(tmp_path, redis_down) as (client, tenant):
        ready = await client.get("/health/ready")
        integration_id = await create(client, tenant, document)
        results = [
            (await execute(client, tenant, integration_id, "list_customers")).json()
            for _ in range(3)
        ]
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": "ok", "cache": "degraded", "encryption": "ok"}
    assert "degraded" in ready.json()["detail"]
    assert [(r["success"], r["cached"]) for r in results] == [
        (True, False),
        (True, False),
        (False, False),
    ]
    assert results[2]["error"]["code"] == "rate_limited"
    assert upstream.count() == 2


async def test_a_hanging_upstream_is_held_no_longer_than_the_execution_budget(
    tmp_path: Path, backend: Backend, upstream: Upstream
) -> None:
    """With DEFAULT_EXECUTION_BUDGET_MS at 1 s, 400 ms attempts and 3 retries (1.6 s) stop at
    the budget; the message gives the attempt timeout rounded."""
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS, delay_s=3))
    app = create_app(make_settings(tmp_path, backend, default_execution_budget_ms=1000))
    async with serve_app(app) as client:
        tenant = await new_tenant(client)
        document = integration(
            upstream,
            timeout_ms=400,
            retry_config={**FAST_RETRIES, "max_retries": 3, "retry_on_errors": ["timeout"]},
        )
        integration_id = await create(client, tenant, document)
        started = time.monotonic()
        result = (await execute(client, tenant, integration_id, "list_customers")).json()
        elapsed = time.monotonic() - started
    assert result["error"]["code"] == "timeout"
    assert elapsed < 1.5
    assert re.search(r"did not answer within \d+(\.\d{1,2})? s$", result["error"]["message"])
