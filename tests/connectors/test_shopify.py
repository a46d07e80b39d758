"""Shopify end to end through the HTTP API, against a Shopify-like Admin GraphQL API served by
Ariadne (tests/servers/ariadne/shopify.py): install from the marketplace, test-connection,
products and orders read page by page from `pageInfo { hasNextPage endCursor }`, and the query
cost in `extensions.cost.throttleStatus` pausing calls before the shop would throttle them."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import httpx

from tests.conftest import Tenant
from tests.marketplace.helpers import MARKETPLACE, execute, install


def access_token() -> str:
    return f"shpat_{uuid.uuid4().hex}"  # a bucket of its own on the shop


def answers(shopify_url: str, token: str) -> dict[str, Any]:
    return {
        "credentials": {"api_key": token},
        "config_overrides": {"shop": "loopback", "base_url": shopify_url},
    }


async def seen(shopify_url: str, token: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{shopify_url}/_seen")
    return [entry for entry in response.json() if entry["token"] == token]


async def test_test_connection_runs_the_shop_query_and_names_a_bad_token(
    app_client: httpx.AsyncClient, tenant: Tenant, shopify_url: str
) -> None:
    token = access_token()
    checked = await app_client.post(
        f"{MARKETPLACE}/items/shopify/test-connection",
        json=answers(shopify_url, token),
        headers=tenant.headers,
    )
    assert checked.status_code == 200, checked.text
    assert checked.json()["success"] is True
    assert len(await seen(shopify_url, token)) == 1

    refused = await app_client.post(
        f"{MARKETPLACE}/items/shopify/test-connection",
        json=answers(shopify_url, "not-a-token"),
        headers=tenant.headers,
    )
    assert refused.json()["success"] is False
    assert refused.json()["status_code"] == 401


async def test_products_are_read_page_by_page_within_the_query_cost_budget(
    app_client: httpx.AsyncClient, tenant: Tenant, shopify_url: str
) -> None:
    token = access_token()
    created = await install(app_client, tenant, "shopify", **answers(shopify_url, token))
    assert created["type"] == "graphql"
    assert created["auth_config"]["credentials"] == {"api_key": "********"}
    integration_id = created["integration_id"]

    # 100 products, 25 a page: each page costs 27 of the bucket's 100 points (restoring 20
    # a second), so after the third the shop reports too little left for a fourth; the pause
    # that report starts is what keeps the fourth from being throttled.
    result = await execute(app_client, tenant, integration_id, "list_products", {"first": 25})
    assert result["success"] is True, result
    assert [p["id"] for p in result["data"]] == [
        f"gid://shopify/Product/{1000 + n}" for n in range(1, 101)
    ]
    assert result["data"][0] == {
        "id": "gid://shopify/Product/1001",
        "title": "Product 1",
        "handle": "product-1",
        "status": "ACTIVE",
        "inventory": 10,
    }
    assert result["metadata"]["pages"] == 4
    requests = await seen(shopify_url, token)
    assert [r["variables"].get("after") is None for r in requests] == [True, False, False, False]
    assert [r["variables"]["first"] for r in requests] == [25, 25, 25, 25]
    gaps = [later["at"] - earlier["at"] for earlier, later in itertools.pairwise(requests)]
    assert gaps[2] >= 0.15, gaps  # paused until the bucket held a page's cost again


async def test_orders_search_and_one_order(
    app_client: httpx.AsyncClient, tenant: Tenant, shopify_url: str
) -> None:
    token = access_token()
    created = await install(app_client, tenant, "shopify", **answers(shopify_url, token))
    integration_id = created["integration_id"]

    paid = await execute(
        app_client,
        tenant,
        integration_id,
        "list_orders",
        {"search": "financial_status:paid", "first": 2},
    )
    assert paid["success"] is True, paid
    assert [o["name"] for o in paid["data"]] == ["#1005", "#1003", "#1001"]
    assert paid["data"][0]["total"] == "50.00"
    assert paid["data"][0]["customer"] == "Ada Lovelace"
    assert paid["metadata"]["pages"] == 2
    requests = await seen(shopify_url, token)
    assert [r["variables"]["query"] for r in requests] == ["financial_status:paid"] * 2

    one = await execute(
        app_client, tenant, integration_id, "get_order", {"order_id": "gid://shopify/Order/5003"}
    )
    assert one["data"]["name"] == "#1003"
    assert one["data"]["lineItems"]["edges"] == [
        {"node": {"title": "Product 3", "quantity": 1, "sku": "SKU-3"}}
    ]
    assert one["metadata"]["summary"] == "Order #1003: PAID"
