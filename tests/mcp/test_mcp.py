"""`/mcp` through the official MCP SDK client over Streamable HTTP, against the running app
(uvicorn on loopback) and Prism serving Stripe's description as the upstream."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import mcp_types as types
import orjson
import pytest
from fastapi import FastAPI
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import ToolsListChanged

from tests.conftest import ADMIN_KEY, Tenant, new_tenant
from tests.mcp.conftest import mcp_client


def payments(prism: str, **overrides: Any) -> dict[str, Any]:
    """A hand-written integration over three of Stripe's operations (served by Prism)."""
    document: dict[str, Any] = {
        "name": "Payments (Stripe)",
        "description": "customers and charges",
        "type": "rest_api",
        "category": "payments",
        "base_url": prism,
        "auth_config": {"type": "bearer_token", "credentials": {"token": "sk_test_4eC39HqLyjW"}},
        "retry_config": {"max_retries": 0},
        "endpoints": {
            "get_customer": {
                "path": "/v1/customers/{customer}",
                "method": "GET",
                "description": "Look up one customer by id",
                "request_mapping": {
                    "path_params": {"customer": "variables.customer_id"},
                    "required": ["path_params.customer"],
                },
                "response_mapping": {
                    "field_mappings": {"id": "id", "email": "email", "kind": "object"}
                },
                "summary_template": "Customer {{ data.id }} ({{ data.kind }})",
            },
            "delete_customer": {
                "path": "/v1/customers/{customer}",
                "method": "DELETE",
                "request_mapping": {"path_params": {"customer": "variables.customer_id"}},
            },
            "create_customer": {
                "path": "/v1/customers",
                "method": "POST",
                "description": "Create a customer",
                "request_mapping": {
                    "headers": {"Content-Type": "'application/x-www-form-urlencoded'"},
                    "body": {"email": "variables.email", "name": "variables.name"},
                },
                "validation_schema": {
                    "type": "object",
                    "required": ["variables"],
                    "properties": {
                        "variables": {
                            "type": "object",
                            "required": ["email"],
                            "properties": {
                                "email": {"type": "string", "format": "email"},
                                "name": {"type": "string"},
                            },
                        }
                    },
                },
            },
        },
    }
    document.update(overrides)
    return document


async def create(api: httpx.AsyncClient, tenant: Tenant, document: dict[str, Any]) -> str:
    response = await api.post("/api/v2/integrations", json=document, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["integration_id"])


def by_name(result: types.ListToolsResult) -> dict[str, types.Tool]:
    return {tool.name: tool for tool in result.tools}


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_initialize_list_and_call(
    api: httpx.AsyncClient, base_url: str, stripe_prism: str, mode: str
) -> None:
    tenant = await new_tenant(api)
    await create(api, tenant, payments(stripe_prism))
    async with mcp_client(base_url, tenant.headers, mode=mode) as client:
        # 'auto' speaks the stateless 2026-07-28 protocol; 'legacy' the initialize handshake.
        assert client.protocol_version >= "2025-06-18"
        if mode == "auto":
            assert client.protocol_version == "2026-07-28"
        tools = by_name(await client.list_tools())
        assert set(tools) == {
            "payments-stripe__get_customer",
            "payments-stripe__delete_customer",
            "payments-stripe__create_customer",
        }
        get = tools["payments-stripe__get_customer"]
        assert "Look up one customer by id" in (get.description or "")
        assert "Payments (Stripe)" in (get.description or "")
        assert "variables.customer_id" in (get.description or "")
        assert get.input_schema["properties"]["variables"]["required"] == ["customer_id"]
        assert get.output_schema is not None
        assert {"id", "email", "kind"} <= set(get.output_schema["properties"])
        assert get.annotations is not None
        assert get.annotations.read_only_hint is True
        assert get.annotations.destructive_hint is False
        delete = tools["payments-stripe__delete_customer"]
        assert delete.annotations is not None
        assert delete.annotations.destructive_hint is True
        assert delete.annotations.idempotent_hint is True
        create_tool = tools["payments-stripe__create_customer"]
        assert create_tool.annotations is not None
        assert create_tool.annotations.idempotent_hint is False
        assert create_tool.input_schema["properties"]["variables"]["required"] == ["email"]

        result = await client.call_tool(
            "payments-stripe__get_customer", {"variables": {"customer_id": "cus_123"}}
        )
        assert result.is_error is False
        assert isinstance(result.structured_content, dict)
        assert result.structured_content["kind"] == "customer"  # Prism answers Stripe's shape
        assert set(result.structured_content) == {"id", "email", "kind"}
        text = result.content[0]
        assert isinstance(text, types.TextContent)
        assert text.text == f"Customer {result.structured_content['id']} (customer)"

        created = await client.call_tool(
            "payments-stripe__create_customer", {"variables": {"email": "ada@example.com"}}
        )
        assert created.is_error is False, created.content


async def test_error_shapes(api: httpx.AsyncClient, base_url: str, stripe_prism: str) -> None:
    tenant = await new_tenant(api)
    limited = payments(stripe_prism, rate_limit={"requests_per_minute": 1})
    await create(api, tenant, limited)
    async with mcp_client(base_url, tenant.headers) as client:
        missing = await client.call_tool("payments-stripe__get_customer", {"variables": {}})
        assert missing.is_error is True
        error = missing.structured_content["error"]
        assert error["code"] == "validation_failed"
        assert error["errors"] == [
            {"argument": "variables.customer_id", "msg": error["errors"][0]["msg"]}
        ]
        assert "variables.customer_id" in missing.content[0].text

        bad_email = await client.call_tool(
            "payments-stripe__create_customer", {"variables": {"email": 5}}
        )
        assert bad_email.is_error is True
        arguments = [e["argument"] for e in bad_email.structured_content["error"]["errors"]]
        assert arguments == ["variables.email"]

        first = await client.call_tool(
            "payments-stripe__get_customer", {"variables": {"customer_id": "cus_1"}}
        )
        assert first.is_error is False
        second = await client.call_tool(
            "payments-stripe__get_customer", {"variables": {"customer_id": "cus_2"}}
        )
        assert second.is_error is True
        error = second.structured_content["error"]
        assert error["code"] == "rate_limited"
        assert isinstance(error["retry_after"], int)
        assert error["retry_after"] > 0
        assert second.structured_content["request_id"]
        assert f"retry after {error['retry_after']} s" in second.content[0].text

        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool("payments-stripe__no_such_endpoint", {})


async def test_upstream_failure_is_an_error_result(
    api: httpx.AsyncClient, base_url: str, stripe_prism: str
) -> None:
    tenant = await new_tenant(api)
    # Prism checks the described auth: a basic-auth header without a password is refused.
    document = payments(stripe_prism)
    document["auth_config"] = {"type": "none"}
    await create(api, tenant, document)
    async with mcp_client(base_url, tenant.headers) as client:
        result = await client.call_tool(
            "payments-stripe__get_customer", {"variables": {"customer_id": "cus_1"}}
        )
    assert result.is_error is True
    error = result.structured_content["error"]
    assert error["code"] in ("auth_failed", "upstream_error")
    assert error["status_code"] == 401
    assert error["message"]


async def test_keys_and_tenants(api: httpx.AsyncClient, base_url: str, stripe_prism: str) -> None:
    owner = await new_tenant(api)
    other = await new_tenant(api)
    await create(api, owner, payments(stripe_prism))
    init = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    accept = {"Accept": "application/json, text/event-stream"}
    response = await api.post("/mcp", json=init, headers=accept)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["status"] == 401
    wrong = await api.post(
        "/mcp", json=init, headers={**accept, "Authorization": "Bearer adk_not_a_key"}
    )
    assert wrong.status_code == 401
    crossing = await api.post(
        "/mcp",
        json=init,
        headers={**accept, "Authorization": f"Bearer {other.key}", "X-Tenant-ID": owner.tenant_id},
    )
    assert crossing.status_code == 403

    async with mcp_client(base_url, other.headers) as client:
        assert (await client.list_tools()).tools == []
        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool(
                "payments-stripe__get_customer", {"variables": {"customer_id": "cus_1"}}
            )
    admin = {"Authorization": f"Bearer {ADMIN_KEY}", "X-Tenant-ID": owner.tenant_id}
    async with mcp_client(base_url, admin) as client:
        assert len((await client.list_tools()).tools) == 3


async def test_a_disabled_or_deleted_integration_has_no_tools(
    api: httpx.AsyncClient, base_url: str, stripe_prism: str
) -> None:
    tenant = await new_tenant(api)
    integration_id = await create(api, tenant, payments(stripe_prism))
    second = await create(api, tenant, payments(stripe_prism, name="Billing"))
    async with mcp_client(base_url, tenant.headers) as client:
        assert len((await client.list_tools()).tools) == 6
        response = await api.patch(
            f"/api/v2/integrations/{integration_id}",
            json={"enabled": False},
            headers=tenant.headers,
        )
        assert response.status_code == 200
        names = set(by_name(await client.list_tools()))
        assert names == {
            "billing__get_customer",
            "billing__delete_customer",
            "billing__create_customer",
        }
        with pytest.raises(MCPError, match="Unknown tool"):  # the listing is fresh
            await client.call_tool(
                "payments-stripe__get_customer", {"variables": {"customer_id": "cus_1"}}
            )
        assert (
            await api.delete(f"/api/v2/integrations/{second}", headers=tenant.headers)
        ).status_code == 204
        assert (await client.list_tools()).tools == []


async def test_list_changed_is_sent_on_a_change(
    api: httpx.AsyncClient, base_url: str, stripe_prism: str
) -> None:
    tenant = await new_tenant(api)
    other = await new_tenant(api)
    async with (
        mcp_client(base_url, tenant.headers) as client,
        client.listen(tools_list_changed=True) as events,
    ):
        assert (await client.list_tools()).tools == []
        await create(api, other, payments(stripe_prism))  # another tenant: not ours to hear
        await create(api, tenant, payments(stripe_prism))
        event = await asyncio.wait_for(anext(aiter(events)), timeout=10)
        assert isinstance(event, ToolsListChanged)
        assert len((await client.list_tools()).tools) == 3


async def test_a_tool_call_is_logged_with_the_callers_request_id(
    api: httpx.AsyncClient, base_url: str, stripe_prism: str
) -> None:
    tenant = await new_tenant(api)
    integration_id = await create(api, tenant, payments(stripe_prism))
    headers = {**tenant.headers, "X-Request-ID": "req-mcp-0001"}
    async with mcp_client(base_url, headers) as client:
        result = await client.call_tool(
            "payments-stripe__get_customer", {"variables": {"customer_id": "cus_9"}}
        )
    assert result.is_error is False
    for _ in range(100):
        logs = await api.get(
            f"/api/v2/integrations/{integration_id}/executions", headers=tenant.headers
        )
        items = logs.json()["items"]
        if items:
            break
        await asyncio.sleep(0.1)
    assert [(i["request_id"], i["endpoint_name"], i["success"]) for i in items] == [
        ("req-mcp-0001", "get_customer", True)
    ]
    metrics = await api.get("/metrics")
    assert integration_id in metrics.text


def canonical(answer: Any) -> str:
    text = orjson.dumps(answer, option=orjson.OPT_SORT_KEYS).decode()
    return re.sub(r"\d", "#", text)


async def test_the_direct_path_answers_exactly_as_the_sdk(
    app: FastAPI, api: httpx.AsyncClient, stripe_prism: str
) -> None:
    service = app.state.services.mcp

    async def call(tenant: Tenant, arguments: dict[str, Any], request_id: str) -> tuple[int, Any]:
        body = {
            "jsonrpc": "2.0",
            "id": 7,
            "method": "tools/call",
            "params": {
                "name": "payments-stripe__get_customer",
                "arguments": arguments,
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                    "io.modelcontextprotocol/clientCapabilities": {},
                    "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
                },
            },
        }
        headers = {
            **tenant.headers,
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2026-07-28",
            "Mcp-Method": "tools/call",
            "Mcp-Name": "payments-stripe__get_customer",
            "X-Request-ID": request_id,
        }
        response = await api.post("/mcp", json=body, headers=headers)
        assert response.headers["content-type"] == "application/json"
        assert response.headers["x-request-id"] == request_id
        return response.status_code, response.json()

    cases = [
        ({"variables": {"customer_id": "cus_1"}}, "req-ok"),
        ({"variables": {}}, "req-invalid"),
        ({"variables": {"customer_id": "cus_2"}}, "req-limited"),
    ]
    answers = {}
    for direct in (True, False):
        service.direct_calls = direct
        tenant = await new_tenant(api)  # each round with a rate limit of its own
        await create(api, tenant, payments(stripe_prism, rate_limit={"requests_per_minute": 1}))
        for arguments, request_id in cases:
            answers[(direct, request_id)] = await call(tenant, arguments, request_id)
    for _, request_id in cases:
        # The same JSON (keys in any order); the limiter words its wait to a tenth of a second,
        # so digits are compared as "#".
        direct, sdk = (canonical(answers[(d, request_id)]) for d in (True, False))
        assert direct == sdk, request_id
    status, ok = answers[(True, "req-ok")]
    assert status == 200
    assert ok["result"]["isError"] is False
    assert ok["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "adaptor-service"
    assert answers[(True, "req-limited")][1]["result"]["isError"] is True


async def test_an_mcp_post_gets_a_request_id_a_problem_for_a_bad_key_and_the_body_limit(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    unauthorized = await api.post(
        "/mcp", content=b"{}", headers={"Content-Type": "application/json"}
    )
    assert unauthorized.status_code == 401
    assert unauthorized.headers["content-type"] == "application/problem+json"
    assert unauthorized.headers["www-authenticate"].startswith("Bearer")
    assert unauthorized.headers["x-request-id"]
    limit = app.state.services.settings.max_request_body_bytes
    too_large = await api.post(
        "/mcp",
        content=b" " * (limit + 1),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert too_large.status_code == 413
    assert too_large.json()["status"] == 413
    assert too_large.headers["x-request-id"]
