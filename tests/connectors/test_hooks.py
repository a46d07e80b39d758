"""Vendor hooks: Shopify's shop domain and query cost, HubSpot's rate-limit headers (through
the pipeline, against a loopback upstream), Stripe's idempotency keys."""

from __future__ import annotations

import httpx

from adaptor.connectors import (
    Connector,
    HubSpotConnector,
    Quota,
    ShopifyConnector,
    connector_factory,
)
from tests.conftest import Tenant
from tests.executions.upstream import Reply, Upstream
from tests.marketplace.helpers import execute, install

# The `extensions` of a Shopify Admin GraphQL answer, as shopify.dev documents it.
SHOPIFY_COST = {
    "cost": {
        "requestedQueryCost": 52,
        "actualQueryCost": 12,
        "throttleStatus": {
            "maximumAvailable": 2000.0,
            "currentlyAvailable": 1988.0,
            "restoreRate": 100.0,
        },
    }
}


def test_connector_factory_gives_the_vendor_hook_or_the_plain_connector() -> None:
    assert isinstance(connector_factory("shopify"), ShopifyConnector)
    assert isinstance(connector_factory("hubspot"), HubSpotConnector)
    plain = connector_factory("stripe")
    assert type(plain) is Connector
    assert plain.prepare({"a": 1}, {}) == {"a": 1}
    assert connector_factory(None).upstream_quota({}, {}) is None


def test_shopify_shop_names_are_tidied_to_their_myshopify_domain() -> None:
    hook = ShopifyConnector()
    for typed in ("My-Shop", "https://my-shop.myshopify.com/", "my-shop.myshopify.com"):
        assert hook.normalise({"shop": typed})["shop"] == "my-shop.myshopify.com"
    assert hook.normalise({"shop": "evil.example"})["shop"] == "evil.example"  # rule rejects it


def test_shopify_query_cost_says_how_many_queries_remain_and_when() -> None:
    hook = ShopifyConnector()
    data = {"data": {"shop": {"name": "x"}}, "extensions": SHOPIFY_COST}
    assert hook.upstream_quota(data, {}) == Quota(remaining=38, reset_s=0.01)
    drained = {
        "extensions": {
            "cost": {
                "requestedQueryCost": 200,
                "throttleStatus": {"currentlyAvailable": 50, "restoreRate": 100},
            }
        }
    }
    assert hook.upstream_quota(drained, {}) == Quota(remaining=0, reset_s=1.5)
    assert hook.upstream_quota({"data": {}}, {}) is None


async def test_hubspot_rate_limit_headers_pause_calls_before_a_429(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply(
        "GET",
        "/crm/v3/objects/contacts",
        Reply(
            json={"results": [{"id": "1", "properties": {}}]},
            headers={
                "X-HubSpot-RateLimit-Remaining": "0",
                "X-HubSpot-RateLimit-Interval-Milliseconds": "90000",
                "X-HubSpot-RateLimit-Max": "190",
            },
        ),
    )
    created = await install(
        app_client,
        tenant,
        "hubspot",
        credentials={"token": "pat-na1-x"},
        config_overrides={"base_url": upstream.url},
    )
    first = await execute(app_client, tenant, created["integration_id"], "list_contacts")
    assert first["success"] is True
    second = await execute(app_client, tenant, created["integration_id"], "list_contacts")
    assert second["error"]["code"] == "rate_limited"
    assert 1 <= second["error"]["retry_after"] <= 90  # longer than the call may wait
    assert upstream.count("/crm/v3/objects/contacts") == 1


async def test_stripe_posts_carry_one_idempotency_key_per_execution_kept_across_retries(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply(
        "POST",
        "/v1/refunds",
        Reply(500, {"error": {"message": "try again"}}),
        Reply(json={"id": "re_1", "status": "succeeded", "amount": 500}),
    )
    created = await install(
        app_client,
        tenant,
        "stripe",
        credentials={"token": "sk_test_abc123"},
        config_overrides={
            "base_url": upstream.url,
            "retry_config": {"max_retries": 1, "initial_delay_ms": 10, "max_delay_ms": 10},
        },
    )
    result = await execute(
        app_client,
        tenant,
        created["integration_id"],
        "create_refund",
        {"payment_intent_id": "pi_1"},
    )
    assert result["success"] is True
    assert result["retries"] == 1
    first, second = (s for s in upstream.seen if s.path == "/v1/refunds")
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert first.headers["idempotency-key"].startswith(result["request_id"])
    assert first.headers["content-type"] == "application/x-www-form-urlencoded"
    assert first.body == b"payment_intent=pi_1"
    assert first.headers["stripe-version"] == "2025-09-30.clover"

    upstream.reply("POST", "/v1/refunds", Reply(json={"id": "re_2"}))
    again = await execute(
        app_client,
        tenant,
        created["integration_id"],
        "create_refund",
        {"payment_intent_id": "pi_1"},
    )
    third = upstream.seen[-1]
    assert third.headers["idempotency-key"].startswith(again["request_id"])
    assert third.headers["idempotency-key"] != first.headers["idempotency-key"]
