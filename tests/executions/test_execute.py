"""`POST /api/v2/execute/...` end to end against a real upstream on loopback."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import Tenant
from tests.executions.upstream import Reply, Seen, Upstream

SECRET = "sk_test_EXEC_SECRET_987654"

CUSTOMERS = {
    "object": "list",
    "data": [
        {
            "id": "cus_1",
            "email": "ada@example.com",
            "name": "Ada",
            "created": 1700000000,
            "balance": 1250,
            "currency": "usd",
        },
        {
            "id": "cus_2",
            "email": "grace@example.com",
            "name": "Grace",
            "created": 1700086400,
            "balance": 0,
            "currency": "eur",
        },
    ],
}


def integration(upstream: Upstream, **overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": "Payments",
        "type": "rest_api",
        "category": "payments",
        "base_url": upstream.url,
        "auth_config": {"type": "bearer_token", "credentials": {"token": SECRET}},
        "timeout_ms": 2000,
        "retry_config": {"max_retries": 0},
        "endpoints": {
            "list_customers": {
                "path": "/v1/customers",
                "method": "GET",
                "request_mapping": {
                    "query_params": {"limit": "variables.limit", "email": "user_data.email"},
                    "headers": {"Accept-Language": "context.locale"},
                },
                "response_mapping": {
                    "data_path": "data",
                    "field_mappings": {"id": "id", "email": "email", "balance": "balance"},
                },
            },
            "get_customer": {
                "path": "/v1/customers/{id}",
                "method": "GET",
                "request_mapping": {"path_params": {"id": "variables.customer_id"}},
            },
            "create_customer": {
                "path": "/v1/customers",
                "method": "POST",
                "request_mapping": {
                    "headers": {"Content-Type": '`"application/x-www-form-urlencoded"`'},
                    "body": {
                        "email": "user_data.email",
                        "name": "user_data.name",
                        "metadata.plan": "variables.plan",
                    },
                    "required": ["body.email"],
                },
                "response_mapping": {"field_mappings": {"id": "id", "email": "email"}},
                "summary_template": "Created customer {{ data.id }}",
            },
        },
    }
    document.update(overrides)
    return document


async def create(client: httpx.AsyncClient, tenant: Tenant, document: dict[str, Any]) -> str:
    response = await client.post("/api/v2/integrations", json=document, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["integration_id"])


async def execute(
    client: httpx.AsyncClient,
    tenant: Tenant,
    integration_id: str,
    endpoint: str,
    input_data: dict[str, Any] | None = None,
    **extra: Any,
) -> httpx.Response:
    return await client.post(
        f"/api/v2/execute/{integration_id}/{endpoint}",
        json={"input_data": input_data or {}, **extra},
        headers=tenant.headers,
    )


async def test_get_maps_query_headers_and_response(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    integration_id = await create(app_client, tenant, integration(upstream))
    response = await execute(
        app_client,
        tenant,
        integration_id,
        "list_customers",
        {"variables": {"limit": 2}, "user_data": {"email": "ada@example.com"}},
        context={"locale": "fr"},
    )
    assert response.status_code == 200
    result = response.json()
    assert result["success"] is True, result
    assert result["data"] == [
        {"id": "cus_1", "email": "ada@example.com", "balance": 1250},
        {"id": "cus_2", "email": "grace@example.com", "balance": 0},
    ]
    assert result["metadata"]["status_code"] == 200
    assert result["metadata"]["summary"]
    assert result["raw_response"] is None
    seen = upstream.seen[0]
    assert ("limit", "2") in seen.query
    assert ("email", "ada@example.com") in seen.query
    assert seen.headers["accept-language"] == "fr"
    assert seen.headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in response.text


async def test_path_parameters_are_url_encoded(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.respond("GET", "/v1/customers/a b/c", lambda seen: Reply(json={"id": "x"}))
    integration_id = await create(app_client, tenant, integration(upstream))
    result = (
        await execute(
            app_client,
            tenant,
            integration_id,
            "get_customer",
            {"variables": {"customer_id": "a b/c"}},
        )
    ).json()
    assert result["success"] is True, result
    assert upstream.seen[0].path == "/v1/customers/a b/c"


async def test_post_sends_a_form_body_with_bracket_notation(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("POST", "/v1/customers", Reply(json={"id": "cus_9", "email": "n@x.io"}))
    integration_id = await create(app_client, tenant, integration(upstream))
    response = await execute(
        app_client,
        tenant,
        integration_id,
        "create_customer",
        {"user_data": {"email": "n@x.io", "name": "New"}, "variables": {"plan": "pro"}},
    )
    result = response.json()
    assert result["success"] is True, result
    assert result["data"] == {"id": "cus_9", "email": "n@x.io"}
    assert result["metadata"]["summary"] == "Created customer cus_9"
    seen = upstream.seen[0]
    assert seen.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert sorted(seen.body.decode().split("&")) == sorted(
        ["email=n%40x.io", "name=New", "metadata%5Bplan%5D=pro"]
    )


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
async def test_every_method_reaches_the_upstream(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream, method: str
) -> None:
    upstream.reply(method, "/things/7", Reply(json={"ok": True, "method": method}))
    document = integration(
        upstream,
        endpoints={
            "call": {
                "path": "/things/{id}",
                "method": method,
                "request_mapping": {
                    "path_params": {"id": "variables.id"},
                    **({"body": {"value": "variables.value"}} if method != "GET" else {}),
                },
            }
        },
    )
    integration_id = await create(app_client, tenant, document)
    result = (
        await execute(
            app_client, tenant, integration_id, "call", {"variables": {"id": 7, "value": 1}}
        )
    ).json()
    assert result["success"] is True, result
    assert result["data"]["method"] == method
    assert upstream.seen[0].method == method
    if method != "GET":
        assert orjson.loads(upstream.seen[0].body) == {"value": 1}


async def test_unknown_integration_or_endpoint_is_404(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    integration_id = await create(app_client, tenant, integration(upstream))
    missing_endpoint = await execute(app_client, tenant, integration_id, "nope")
    missing_integration = await execute(
        app_client, tenant, "00000000-0000-0000-0000-000000000000", "list_customers"
    )
    assert missing_endpoint.status_code == 404
    assert missing_integration.status_code == 404


async def test_another_tenants_integration_is_404(
    app_client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, upstream: Upstream
) -> None:
    integration_id = await create(app_client, tenant, integration(upstream))
    response = await execute(app_client, other_tenant, integration_id, "list_customers")
    logs = await app_client.get(
        f"/api/v2/integrations/{integration_id}/executions", headers=other_tenant.headers
    )
    assert response.status_code == 404
    assert logs.status_code == 404
    assert upstream.count() == 0


async def test_disabled_integration_is_409(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    integration_id = await create(app_client, tenant, integration(upstream, enabled=False))
    response = await execute(app_client, tenant, integration_id, "list_customers")
    assert response.status_code == 409
    assert upstream.count() == 0


async def test_disabling_takes_effect_at_once(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    integration_id = await create(app_client, tenant, integration(upstream))
    assert (await execute(app_client, tenant, integration_id, "list_customers")).status_code == 200
    patched = await app_client.patch(
        f"/api/v2/integrations/{integration_id}", json={"enabled": False}, headers=tenant.headers
    )
    assert patched.status_code == 200
    assert (await execute(app_client, tenant, integration_id, "list_customers")).status_code == 409


async def test_input_failing_the_schema_names_every_field(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    document = integration(upstream)
    document["endpoints"]["create_customer"]["validation_schema"] = {
        "type": "object",
        "properties": {
            "user_data": {
                "type": "object",
                "properties": {
                    "email": {"type": "string", "format": "email", "minLength": 3},
                    "age": {"type": "integer", "minimum": 18},
                },
                "required": ["email", "age"],
            }
        },
        "required": ["user_data"],
    }
    integration_id = await create(app_client, tenant, document)
    response = await execute(
        app_client, tenant, integration_id, "create_customer", {"user_data": {"age": 3}}
    )
    assert response.status_code == 422
    locs = sorted(e["loc"] for e in response.json()["errors"])
    assert locs == [
        ["body", "input_data", "user_data", "age"],
        ["body", "input_data", "user_data", "email"],
    ]
    assert upstream.count() == 0


async def test_missing_required_mapping_is_422(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    integration_id = await create(app_client, tenant, integration(upstream))
    response = await execute(app_client, tenant, integration_id, "create_customer", {})
    assert response.status_code == 422
    assert any("email" in str(e["loc"]) for e in response.json()["errors"])
    missing_path = await execute(app_client, tenant, integration_id, "get_customer", {})
    assert missing_path.status_code == 422
    assert upstream.count() == 0


async def test_upstream_error_carries_status_and_message(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply(
        "GET", "/v1/customers", Reply(402, {"error": {"message": "Your card was declined."}})
    )
    integration_id = await create(app_client, tenant, integration(upstream))
    response = await execute(app_client, tenant, integration_id, "list_customers")
    assert response.status_code == 200
    result = response.json()
    assert result["success"] is False
    assert result["error"]["code"] == "upstream_error"
    assert "Your card was declined." in result["error"]["message"]
    assert result["metadata"]["status_code"] == 402


async def test_upstream_401_is_auth_failed_without_the_token(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(401, {"message": f"bad key {SECRET}"}))
    integration_id = await create(app_client, tenant, integration(upstream))
    response = await execute(app_client, tenant, integration_id, "list_customers")
    result = response.json()
    assert result["error"]["code"] == "auth_failed"
    assert result["metadata"]["status_code"] == 401
    assert SECRET not in response.text


async def test_error_inside_a_200_via_success_and_error_paths(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json={"ok": False, "error": "quota exhausted"}))
    document = integration(upstream)
    document["endpoints"]["list_customers"]["response_mapping"] = {
        "success_path": "ok",
        "error_path": "error",
        "data_path": "data",
    }
    integration_id = await create(app_client, tenant, document)
    result = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert result["success"] is False
    assert result["error"]["code"] == "upstream_error"
    assert result["error"]["message"] == "quota exhausted"
    assert result["metadata"]["status_code"] == 200


async def test_timeout_is_reported_as_timeout(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS, delay_s=1.0))
    integration_id = await create(app_client, tenant, integration(upstream, timeout_ms=200))
    result = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert result["success"] is False
    assert result["error"]["code"] == "timeout"
    assert result["execution_time_ms"] < 900


async def test_timeout_override_bounds_the_execution(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS, delay_s=1.0))
    integration_id = await create(app_client, tenant, integration(upstream, timeout_ms=5000))
    result = (
        await execute(
            app_client,
            tenant,
            integration_id,
            "list_customers",
            options={"timeout_override_ms": 150},
        )
    ).json()
    assert result["error"]["code"] == "timeout"


async def test_refused_connection_is_network_error(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    document = integration(Upstream(), base_url=f"http://127.0.0.1:{port}")
    integration_id = await create(app_client, tenant, document)
    result = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    assert result["error"]["code"] == "network_error"


async def test_mock_response_skips_the_upstream_and_maps(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    integration_id = await create(app_client, tenant, integration(upstream))
    result = (
        await execute(
            app_client,
            tenant,
            integration_id,
            "list_customers",
            options={"mock_response": CUSTOMERS},
        )
    ).json()
    assert result["success"] is True
    assert [c["id"] for c in result["data"]] == ["cus_1", "cus_2"]
    assert result["metadata"]["mocked"] is True
    assert upstream.count() == 0


async def test_debug_trace_shows_each_stage_and_no_secret(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    def echo_secret(seen: Seen) -> Reply:
        return Reply(json={**CUSTOMERS, "echo": seen.headers["authorization"]})

    upstream.respond("GET", "/v1/customers", echo_secret)
    integration_id = await create(app_client, tenant, integration(upstream))
    response = await execute(
        app_client,
        tenant,
        integration_id,
        "list_customers",
        {"variables": {"limit": 1}},
        options={"debug_mode": True},
    )
    result = response.json()
    stages = [stage["stage"] for stage in result["metadata"]["trace"]]
    assert stages == ["map_request", "call", "map_response", "summary"]
    for stage in result["metadata"]["trace"]:
        assert stage["ms"] >= 0
    assert result["raw_response"]["data"][0]["id"] == "cus_1"
    assert SECRET not in response.text


async def test_debug_trace_call_stage_shows_what_was_sent_and_received(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("POST", "/v1/customers", Reply(json={"id": "cus_9", "email": "a@b.c"}))
    document = integration(
        upstream,
        auth_config={
            "type": "api_key",
            "api_key_param": "key",
            "credentials": {"api_key": SECRET},
        },
    )
    document["endpoints"]["create_customer"]["request_mapping"]["query_params"] = {
        "expand": '`"plan"`'
    }
    integration_id = await create(app_client, tenant, document)
    response = await execute(
        app_client,
        tenant,
        integration_id,
        "create_customer",
        {"user_data": {"email": "a@b.c", "name": "Ada"}, "variables": {"plan": "pro"}},
        options={"debug_mode": True},
    )
    result = response.json()
    assert SECRET not in response.text
    call = next(stage for stage in result["metadata"]["trace"] if stage["stage"] == "call")
    [attempt] = call["input"]["attempts"]
    assert attempt["method"] == "POST"
    assert attempt["url"] == f"{upstream.url}/v1/customers?expand=plan&key=********"
    assert attempt["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert sorted(attempt["body"].split("&")) == [
        "email=a%40b.c",
        "metadata%5Bplan%5D=pro",
        "name=Ada",
    ]
    assert attempt["body_bytes"] == len(attempt["body"])
    assert attempt["response"]["status"] == 200
    assert attempt["response"]["headers"]["content-type"].startswith("application/json")
    assert attempt["response"]["size_bytes"] > 0
    # The upstream body is the result's raw_response, not repeated in the trace.
    assert result["raw_response"] == {"id": "cus_9", "email": "a@b.c"}
    stages = {stage["stage"]: stage for stage in result["metadata"]["trace"]}
    assert stages["map_response"]["input"] == "(the upstream body: see raw_response)"


async def test_a_failed_call_is_traced_with_its_attempts(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(503, {"message": "down"}))
    integration_id = await create(app_client, tenant, integration(upstream))
    result = (
        await execute(
            app_client, tenant, integration_id, "list_customers", options={"debug_mode": True}
        )
    ).json()
    assert result["success"] is False
    call = next(stage for stage in result["metadata"]["trace"] if stage["stage"] == "call")
    assert call["input"]["attempts"][0]["response"]["status"] == 503
    assert call["input"]["attempts"][0]["headers"]["Authorization"] != f"Bearer {SECRET}"
    assert call["output"]["status_code"] == 503


async def test_private_destination_is_blocked_by_default(
    tmp_path: Any, backend: Any, upstream: Upstream
) -> None:
    from adaptor.app import create_app
    from tests.conftest import make_settings, new_tenant, serve_app

    app = create_app(make_settings(tmp_path, backend, allow_private_networks=False))
    async with serve_app(app) as client:
        tenant = await new_tenant(client)
        integration_id = await create(client, tenant, integration(upstream))
        result = (await execute(client, tenant, integration_id, "list_customers")).json()
    assert result["success"] is False
    assert result["error"]["code"] == "blocked_destination"
    assert upstream.count() == 0


async def test_executions_are_logged_newest_first(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS), Reply(500, {"message": "boom"}))
    integration_id = await create(app_client, tenant, integration(upstream))
    first = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    second = (await execute(app_client, tenant, integration_id, "list_customers")).json()
    response = await app_client.get(
        f"/api/v2/integrations/{integration_id}/executions", headers=tenant.headers
    )
    assert response.status_code == 200
    items = response.json()["items"]
    assert [item["request_id"] for item in items] == [second["request_id"], first["request_id"]]
    assert items[0]["success"] is False
    assert items[0]["status_code"] == 500
    assert items[0]["error_message"]
    assert items[1]["success"] is True
    assert items[1]["response_size_bytes"] == len(orjson.dumps(CUSTOMERS))
    assert SECRET not in response.text


async def test_request_id_of_the_call_is_the_result_id(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    integration_id = await create(app_client, tenant, integration(upstream))
    response = await app_client.post(
        f"/api/v2/execute/{integration_id}/list_customers",
        json={"input_data": {}},
        headers={**tenant.headers, "X-Request-ID": "conv-42-turn-3"},
    )
    assert response.json()["request_id"] == "conv-42-turn-3"


async def test_health_reflects_recent_failures(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(503, {"message": "down"}))
    integration_id = await create(app_client, tenant, integration(upstream))
    for _ in range(5):
        await execute(app_client, tenant, integration_id, "list_customers")
    health = (
        await app_client.get(
            f"/api/v2/integrations/{integration_id}/health", headers=tenant.headers
        )
    ).json()
    assert health["status"] == "unhealthy"
    assert health["consecutive_failures"] == 5
    assert health["error_rate"] == 1.0


async def test_connection_test_uses_the_test_endpoint(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    integration_id = await create(
        app_client, tenant, integration(upstream, test_endpoint="list_customers")
    )
    response = await app_client.post(
        f"/api/v2/integrations/{integration_id}/test", headers=tenant.headers
    )
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["status_code"] == 200
    assert body["latency_ms"] >= 0
    assert body["error"] is None


async def test_connection_test_without_test_endpoint_is_422(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    integration_id = await create(app_client, tenant, integration(upstream))
    response = await app_client.post(
        f"/api/v2/integrations/{integration_id}/test", headers=tenant.headers
    )
    assert response.status_code == 422


async def test_test_cases_report_differences(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    integration_id = await create(app_client, tenant, integration(upstream))
    cases = [
        {
            "name": "first customer",
            "endpoint": "list_customers",
            "input_data": {},
            "expected_output": {"success": True, "data": [{"id": "cus_1"}, {"id": "cus_2"}]},
        },
        {
            "name": "wrong expectation",
            "endpoint": "list_customers",
            "input_data": {},
            "expected_output": {"data": [{"id": "cus_1"}, {"id": "cus_3"}]},
        },
    ]
    response = await app_client.post(
        f"/api/v2/integrations/{integration_id}/test-cases", json=cases, headers=tenant.headers
    )
    assert response.status_code == 200
    first, second = response.json()
    assert first["passed"] is True
    assert first["differences"] == []
    assert second["passed"] is False
    assert second["differences"] == [{"path": "data[1].id", "expected": "cus_3", "actual": "cus_2"}]


async def test_missing_required_input_is_located_at_the_input_field(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    integration_id = await create(app_client, tenant, integration(upstream))
    response = await execute(
        app_client, tenant, integration_id, "create_customer", {"user_data": {"name": "x"}}
    )
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["loc"] == ["body", "input_data", "user_data", "email"]
    assert "request body.email" in error["msg"]


async def test_log_timestamps_are_utc(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    integration_id = await create(app_client, tenant, integration(upstream))
    await execute(app_client, tenant, integration_id, "list_customers")
    items = (
        await app_client.get(
            f"/api/v2/integrations/{integration_id}/executions", headers=tenant.headers
        )
    ).json()["items"]
    assert items[0]["timestamp"].endswith(("Z", "+00:00"))


async def test_a_graceful_shutdown_loses_no_log(
    tmp_path: Any, backend: Any, upstream: Upstream
) -> None:
    from sqlalchemy import func, select

    from adaptor.app import create_app
    from adaptor.storage.database import Database
    from adaptor.storage.tables import ExecutionLogRow
    from tests.conftest import make_settings, new_tenant, serve_app

    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    settings = make_settings(tmp_path, backend)
    app = create_app(settings)
    async with serve_app(app) as client:
        tenant = await new_tenant(client)
        integration_id = await create(client, tenant, integration(upstream))
        writer = app.state.services.execution_logs
        writer.flush_interval_s = 60  # nothing is written until shutdown
        for _ in range(25):
            await execute(client, tenant, integration_id, "list_customers")
        await asyncio.sleep(0)
        assert writer.written == 0
    database = Database(settings.database_url)
    try:
        async with database.session() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(ExecutionLogRow)
                .where(ExecutionLogRow.integration_id == integration_id)
            )
    finally:
        await database.close()
    assert count == 25
