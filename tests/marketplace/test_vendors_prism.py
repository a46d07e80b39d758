"""Stripe, HubSpot and Jira installed from their templates and executed against Prism serving
the vendors' own OpenAPI descriptions (which enforce auth, parameters and content types)."""

from __future__ import annotations

import httpx

from tests.conftest import Tenant
from tests.marketplace.helpers import MARKETPLACE, execute, install

STRIPE_KEY = "sk_test_51Example0123456789abcdef"


async def test_stripe_wizard_test_connection_install_and_list_customers(
    app_client: httpx.AsyncClient, tenant: Tenant, stripe_prism: str
) -> None:
    wizard = await app_client.get(f"{MARKETPLACE}/items/stripe/wizard", headers=tenant.headers)
    assert wizard.status_code == 200
    [step] = wizard.json()["steps"]
    assert step["fields"][0]["name"] == "token"
    assert step["fields"][0]["secret"] is True

    body = {"credentials": {"token": STRIPE_KEY}, "config_overrides": {"base_url": stripe_prism}}
    checked = await app_client.post(
        f"{MARKETPLACE}/items/stripe/test-connection", json=body, headers=tenant.headers
    )
    assert checked.status_code == 200, checked.text
    assert checked.json()["success"] is True
    assert checked.json()["status_code"] == 200
    listed = await app_client.get("/api/v2/integrations", headers=tenant.headers)
    assert listed.json()["items"] == []  # test-connection stores nothing

    created = await install(app_client, tenant, "stripe", **body)
    assert created["auth_config"]["credentials"] == {"token": "********"}
    assert created["headers"]["Stripe-Version"]
    assert STRIPE_KEY not in str(created)

    result = await execute(
        app_client, tenant, created["integration_id"], "list_customers", {"limit": 3}
    )
    assert result["success"] is True, result
    assert isinstance(result["data"], list)
    assert set(result["data"][0]) >= {"id", "email", "balance"}
    assert result["metadata"]["pages"] >= 1


async def test_stripe_form_bodies_pass_prism_and_a_missing_amount_is_422(
    app_client: httpx.AsyncClient, tenant: Tenant, stripe_prism: str
) -> None:
    created = await install(
        app_client,
        tenant,
        "stripe",
        credentials={"token": STRIPE_KEY},
        config_overrides={"base_url": stripe_prism},
    )
    integration_id = created["integration_id"]
    intent = await execute(
        app_client,
        tenant,
        integration_id,
        "create_payment_intent",
        {"amount": 1999, "currency": "usd", "metadata": {"order": "A-1"}},
    )
    assert intent["success"] is True, intent
    assert intent["metadata"]["status_code"] == 200
    customer = await execute(
        app_client, tenant, integration_id, "create_customer", {"email": "ada@example.com"}
    )
    assert customer["success"] is True, customer
    refund = await execute(
        app_client, tenant, integration_id, "create_refund", {"payment_intent_id": "pi_1"}
    )
    assert refund["success"] is True, refund

    missing = await app_client.post(
        f"/api/v2/execute/{integration_id}/create_payment_intent",
        json={"input_data": {"currency": "usd"}},
        headers=tenant.headers,
    )
    assert missing.status_code == 422
    assert ["body", "input_data", "amount"] in [e["loc"] for e in missing.json()["errors"]]


async def test_stripe_test_connection_reports_a_bad_key(
    app_client: httpx.AsyncClient, tenant: Tenant, stripe_prism: str
) -> None:
    checked = await app_client.post(
        f"{MARKETPLACE}/items/stripe/test-connection",
        json={
            "credentials": {"token": "not-a-key"},
            "config_overrides": {"base_url": stripe_prism},
        },
        headers=tenant.headers,
    )
    assert checked.status_code == 422
    assert checked.json()["errors"] == [
        {
            "loc": ["body", "credentials", "token"],
            "msg": "must be a Stripe secret key (sk_test_…, sk_live_…) or restricted key (rk_…)",
        }
    ]


async def test_hubspot_list_search_and_create_through_prism(
    app_client: httpx.AsyncClient, tenant: Tenant, hubspot_prism: str
) -> None:
    body = {
        "credentials": {"token": "pat-na1-0000"},
        "config_overrides": {"base_url": hubspot_prism},
    }
    checked = await app_client.post(
        f"{MARKETPLACE}/items/hubspot/test-connection", json=body, headers=tenant.headers
    )
    assert checked.json()["success"] is True, checked.text
    created = await install(app_client, tenant, "hubspot", **body)
    integration_id = created["integration_id"]

    contacts = await execute(app_client, tenant, integration_id, "list_contacts", {"limit": 5})
    assert contacts["success"] is True, contacts
    assert {"id", "properties"} <= set(contacts["data"][0])

    found = await execute(app_client, tenant, integration_id, "search_deals", {"query": "renewal"})
    assert found["success"] is True, found
    assert found["metadata"]["pages"] >= 1

    company = await execute(
        app_client,
        tenant,
        integration_id,
        "create_company",
        {"properties": {"name": "Acme", "domain": "acme.example"}},
    )
    assert company["success"] is True, company
    assert company["metadata"]["status_code"] == 201

    one = await execute(app_client, tenant, integration_id, "get_contact", {"id": "51"})
    assert one["success"] is True, one


async def test_hubspot_without_a_token_is_refused_at_install(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await app_client.post(
        f"{MARKETPLACE}/items/hubspot/install", json={}, headers=tenant.headers
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"loc": ["body", "credentials", "token"], "msg": "Access token is required"}
    ]


async def test_jira_search_read_create_comment_and_transition_through_prism(
    app_client: httpx.AsyncClient, tenant: Tenant, jira_prism: str
) -> None:
    created = await install(
        app_client,
        tenant,
        "jira",
        credentials={"password": "ATATT-token"},
        config_overrides={
            "site": "acme.atlassian.net",
            "email": "ada@example.com",
            "base_url": jira_prism,
        },
    )
    assert created["auth_config"]["credentials"] == {
        "username": "ada@example.com",
        "password": "********",
    }
    integration_id = created["integration_id"]

    found = await execute(
        app_client, tenant, integration_id, "search_issues", {"jql": "project = SUP"}
    )
    assert found["success"] is True, found
    assert found["metadata"]["pages"] >= 1

    issue = await execute(app_client, tenant, integration_id, "get_issue", {"issue_key": "SUP-1"})
    assert issue["success"] is True, issue
    assert not isinstance(issue["data"]["description"], dict)  # ADF became text

    new = await execute(
        app_client,
        tenant,
        integration_id,
        "create_issue",
        {"project_key": "SUP", "summary": "Printer on fire", "description": "Line one\n\nTwo"},
    )
    assert new["success"] is True, new
    comment = await execute(
        app_client,
        tenant,
        integration_id,
        "add_comment",
        {"issue_key": "SUP-1", "body": "Looking into it"},
    )
    assert comment["success"] is True, comment
    assert isinstance(comment["data"]["body"], str)
    moved = await execute(
        app_client,
        tenant,
        integration_id,
        "transition_issue",
        {"issue_key": "SUP-1", "transition_id": "31"},
    )
    assert moved["success"] is True, moved
    assert moved["metadata"]["status_code"] == 204
