"""Inbound webhooks through the app, on both storage backends, signed by the vendors' own
libraries (`stripe`, `standardwebhooks`) or their documented recipes (GitHub, Shopify)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import stripe
from standardwebhooks import Webhook

from adaptor.app import create_app
from tests.conftest import Backend, Tenant, make_settings, new_tenant, serve_app

STRIPE_SECRET = "whsec_test_" + secrets.token_hex(16)
STANDARD_SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
SHARED_SECRET = "shpss_" + secrets.token_hex(16)


def integration(scheme: str, secret: str, **webhook: Any) -> dict[str, Any]:
    return {
        "name": f"{scheme} events",
        "type": "rest_api",
        "category": "events",
        "base_url": "https://api.example.com",
        "webhook": {"signature_scheme": scheme, "secret": secret, **webhook},
    }


async def create(client: httpx.AsyncClient, tenant: Tenant, document: dict[str, Any]) -> str:
    response = await client.post("/api/v2/integrations", json=document, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["integration_id"])


def event(kind: str = "invoice.paid", event_id: str | None = None) -> bytes:
    return orjson.dumps(
        {
            "id": event_id or f"evt_{uuid.uuid4().hex[:16]}",
            "type": kind,
            "data": {"object": {"id": "in_1", "amount_paid": 4200}},
        }
    )


def stripe_headers(
    body: bytes, *, timestamp: int | None = None, secret: str = STRIPE_SECRET
) -> dict[str, str]:
    header = stripe.WebhookSignature.generate_signature_header(
        body.decode(), secret, timestamp=timestamp
    )
    return {"Stripe-Signature": header, "Content-Type": "application/json"}


def standard_headers(
    body: bytes, *, message_id: str = "msg_1", when: datetime | None = None
) -> dict[str, str]:
    when = when or datetime.now(UTC)
    signature = Webhook(STANDARD_SECRET).sign(message_id, when, body.decode())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
        "Content-Type": "application/json",
    }


def github_headers(body: bytes, secret: str = SHARED_SECRET) -> dict[str, str]:
    # GitHub's documented recipe: "sha256=" + HMAC-SHA256 hex digest of the payload.
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
    }


def shopify_headers(body: bytes, secret: str = SHARED_SECRET) -> dict[str, str]:
    # Shopify's documented recipe: base64 of the HMAC-SHA256 digest of the raw body.
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {
        "X-Shopify-Hmac-Sha256": digest,
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
    }


async def deliver(
    client: httpx.AsyncClient, integration_id: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    return await client.post(f"/api/v2/webhooks/{integration_id}", content=body, headers=headers)


async def events(client: httpx.AsyncClient, tenant: Tenant, integration_id: str) -> list[Any]:
    response = await client.get(
        f"/api/v2/integrations/{integration_id}/webhook-events", headers=tenant.headers
    )
    assert response.status_code == 200, response.text
    items: list[Any] = response.json()["items"]
    return items


async def test_a_stripe_signed_event_is_stored_and_acknowledged(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    integration_id = await create(app_client, tenant, integration("stripe", STRIPE_SECRET))
    body = event(event_id="evt_stripe_1")

    response = await deliver(app_client, integration_id, body, stripe_headers(body))

    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "event_id": "evt_stripe_1", "duplicate": False}
    # The signature is what the vendor's own verifier accepts, too.
    stripe.WebhookSignature.verify_header(
        body, stripe_headers(body)["Stripe-Signature"], STRIPE_SECRET, 300
    )
    [stored] = await events(app_client, tenant, integration_id)
    assert stored["event_id"] == "evt_stripe_1"
    assert stored["event_type"] == "invoice.paid"
    assert stored["payload"] == orjson.loads(body)


async def test_a_redelivered_event_is_a_duplicate_and_stored_once(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    integration_id = await create(app_client, tenant, integration("stripe", STRIPE_SECRET))
    body = event(event_id="evt_again")

    first = await deliver(app_client, integration_id, body, stripe_headers(body))
    second = await deliver(app_client, integration_id, body, stripe_headers(body))

    assert first.json()["duplicate"] is False
    assert second.status_code == 200
    assert second.json() == {"received": True, "event_id": "evt_again", "duplicate": True}
    assert len(await events(app_client, tenant, integration_id)) == 1


@pytest.mark.parametrize(
    ("scheme", "secret", "sign"),
    [
        ("stripe", STRIPE_SECRET, stripe_headers),
        ("standard", STANDARD_SECRET, standard_headers),
        ("github", SHARED_SECRET, github_headers),
        ("shopify", SHARED_SECRET, shopify_headers),
    ],
)
async def test_a_tampered_body_is_401_and_stores_nothing(
    app_client: httpx.AsyncClient, tenant: Tenant, scheme: str, secret: str, sign: Any
) -> None:
    integration_id = await create(app_client, tenant, integration(scheme, secret))
    body = event()
    headers = sign(body)
    tampered = body.replace(b"4200", b"9999")

    response = await deliver(app_client, integration_id, tampered, headers)

    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "does not match" in response.json()["detail"]
    assert secret not in response.text
    assert await events(app_client, tenant, integration_id) == []


@pytest.mark.parametrize(
    ("scheme", "secret", "sign"),
    [
        ("standard", STANDARD_SECRET, standard_headers),
        ("github", SHARED_SECRET, github_headers),
        ("shopify", SHARED_SECRET, shopify_headers),
    ],
)
async def test_each_scheme_accepts_its_senders_signature(
    app_client: httpx.AsyncClient, tenant: Tenant, scheme: str, secret: str, sign: Any
) -> None:
    integration_id = await create(app_client, tenant, integration(scheme, secret))
    body = orjson.dumps({"ref": "refs/heads/main", "zen": "Keep it logically awesome."})
    headers = sign(body)

    response = await deliver(app_client, integration_id, body, headers)

    assert response.status_code == 200, response.text
    # No `id` in the payload: the sender's delivery id names the event.
    delivery_header = {"standard": "webhook-id", "github": "X-GitHub-Delivery"}.get(
        scheme, "X-Shopify-Webhook-Id"
    )
    assert response.json()["event_id"] == headers[delivery_header]
    [stored] = await events(app_client, tenant, integration_id)
    assert stored["event_type"] == {"github": "push", "shopify": "orders/create"}.get(scheme)


async def test_generic_hmac_sha256_reads_the_configured_header(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    integration_id = await create(
        app_client,
        tenant,
        integration("hmac_sha256", SHARED_SECRET, signature_header="X-Acme-Signature"),
    )
    body = event(event_id="evt_acme")
    digest = hmac.new(SHARED_SECRET.encode(), body, hashlib.sha256).hexdigest()

    good = await deliver(app_client, integration_id, body, {"X-Acme-Signature": digest})
    wrong_header = await deliver(
        app_client, integration_id, body, {"X-Signature-256": f"sha256={digest}"}
    )

    assert good.status_code == 200, good.text
    assert good.json()["event_id"] == "evt_acme"
    assert wrong_header.status_code == 401
    assert wrong_header.json()["detail"].endswith("the X-Acme-Signature header is missing")


@pytest.mark.parametrize("age_s", [-400, 400])
async def test_a_stripe_timestamp_outside_the_tolerance_is_401(
    app_client: httpx.AsyncClient, tenant: Tenant, age_s: int
) -> None:
    integration_id = await create(app_client, tenant, integration("stripe", STRIPE_SECRET))
    body = event()

    response = await deliver(
        app_client, integration_id, body, stripe_headers(body, timestamp=int(time.time()) - age_s)
    )

    assert response.status_code == 401
    assert "outside the tolerance of 300 s" in response.json()["detail"]
    assert await events(app_client, tenant, integration_id) == []


async def test_a_stale_standard_webhook_is_401_within_a_configured_tolerance(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    integration_id = await create(
        app_client, tenant, integration("standard", STANDARD_SECRET, tolerance_seconds=60)
    )
    body = event()
    old = datetime.fromtimestamp(time.time() - 120, UTC)

    response = await deliver(app_client, integration_id, body, standard_headers(body, when=old))

    assert response.status_code == 401
    assert "webhook-timestamp is outside the tolerance of 60 s" in response.json()["detail"]


async def test_a_missing_signature_is_401(app_client: httpx.AsyncClient, tenant: Tenant) -> None:
    integration_id = await create(app_client, tenant, integration("stripe", STRIPE_SECRET))

    response = await deliver(app_client, integration_id, event(), {})

    assert response.status_code == 401
    assert response.json()["detail"].endswith("the Stripe-Signature header is missing")


async def test_a_signed_body_that_is_not_a_json_object_is_422(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    integration_id = await create(app_client, tenant, integration("stripe", STRIPE_SECRET))
    body = b"[1, 2, 3]"

    response = await deliver(app_client, integration_id, body, stripe_headers(body))

    assert response.status_code == 422
    assert response.json()["errors"] == [{"loc": ["body"], "msg": "must be a JSON object"}]


async def test_an_integration_without_webhook_config_or_unknown_is_404(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    document = integration("stripe", STRIPE_SECRET)
    del document["webhook"]
    integration_id = await create(app_client, tenant, document)
    body = event()

    plain = await deliver(app_client, integration_id, body, stripe_headers(body))
    unknown = await deliver(app_client, str(uuid.uuid4()), body, stripe_headers(body))

    assert plain.status_code == 404
    assert unknown.status_code == 404


async def test_webhook_events_are_tenant_scoped_and_paged_by_cursor(
    app_client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    integration_id = await create(app_client, tenant, integration("stripe", STRIPE_SECRET))
    for number in range(3):
        body = event(event_id=f"evt_page_{number}")
        assert (
            await deliver(app_client, integration_id, body, stripe_headers(body))
        ).status_code == 200

    url = f"/api/v2/integrations/{integration_id}/webhook-events"
    first = (await app_client.get(url, params={"limit": 2}, headers=tenant.headers)).json()
    rest = (
        await app_client.get(
            url, params={"limit": 2, "cursor": first["next_cursor"]}, headers=tenant.headers
        )
    ).json()
    foreign = await app_client.get(url, headers=other_tenant.headers)

    assert [e["event_id"] for e in first["items"] + rest["items"]] == [
        "evt_page_2",
        "evt_page_1",
        "evt_page_0",
    ]
    assert rest["next_cursor"] is None
    assert foreign.status_code == 404


@pytest.fixture
async def small_limit_client(tmp_path: Path, backend: Backend) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(tmp_path, backend, max_webhook_bytes=2048))
    async with serve_app(app) as client:
        yield client


async def test_a_body_over_the_webhook_limit_is_413_and_stores_nothing(
    small_limit_client: httpx.AsyncClient,
) -> None:
    client = small_limit_client
    tenant = await new_tenant(client)
    integration_id = await create(client, tenant, integration("stripe", STRIPE_SECRET))
    body = orjson.dumps({"id": "evt_big", "padding": "x" * 4096})

    declared = await deliver(client, integration_id, body, stripe_headers(body))

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 512):
            yield body[start : start + 512]

    streamed = await client.post(
        f"/api/v2/webhooks/{integration_id}", content=chunks(), headers=stripe_headers(body)
    )

    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert await events(client, tenant, integration_id) == []


@pytest.fixture
def postgres_backend(postgres_uri: str, redis_url: str) -> Backend:
    return Backend("real", postgres_uri, redis_url)


async def test_duplicate_deliveries_racing_on_two_replicas_store_one_event(
    tmp_path: Path, postgres_backend: Backend
) -> None:
    one = create_app(make_settings(tmp_path / "one", postgres_backend))
    two = create_app(make_settings(tmp_path / "two", postgres_backend))
    async with serve_app(one) as first, serve_app(two) as second:
        tenant = await new_tenant(first)
        integration_id = await create(first, tenant, integration("standard", STANDARD_SECRET))
        body = event(event_id="evt_race")
        headers = standard_headers(body, message_id="msg_race")

        replies = await asyncio.gather(
            *(deliver(client, integration_id, body, headers) for client in [first, second] * 8)
        )

        assert [r.status_code for r in replies] == [200] * 16
        assert sorted(r.json()["duplicate"] for r in replies) == [False] + [True] * 15
        assert {r.json()["event_id"] for r in replies} == {"evt_race"}
        assert len(await events(second, tenant, integration_id)) == 1
