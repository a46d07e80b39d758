"""Outbound webhooks end to end: deliveries to a loopback receiver that verifies them with the
`standardwebhooks` library, retried with the same `webhook-id`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from standardwebhooks import Webhook, WebhookVerificationError

from tests.conftest import Backend, Tenant

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
HMAC_SECRET = "hmac_test_secret_0f9e8d7c"


@pytest.fixture
def backend() -> Backend:
    """Adapter behaviour does not depend on the storage backend: the embedded one will do."""
    return Backend("embedded", None, None)


@dataclass
class Receiver:
    """A webhook receiver: verifies each delivery with `standardwebhooks`, answers 503 to the
    first `fail_first` ones."""

    server: TestServer
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    fail_first: int = 0

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state: dict[str, Receiver] = {}

    async def hook(request: web.Request) -> web.Response:
        me = state["receiver"]
        body = await request.read()
        headers = dict(request.headers)
        try:
            payload = Webhook(SECRET).verify(body, headers)
            verified: bool | str = True
        except WebhookVerificationError as exc:
            payload, verified = None, str(exc)
        me.deliveries.append(
            {"headers": headers, "body": body, "payload": payload, "verified": verified}
        )
        if len(me.deliveries) <= me.fail_first:
            return web.json_response({"error": "try again"}, status=503)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hooks/orders", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    state["receiver"] = Receiver(server)
    try:
        yield state["receiver"]
    finally:
        await server.close()


def webhook_integration(receiver: Receiver, **overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": "Order events",
        "type": "webhook",
        "category": "events",
        "base_url": receiver.url,
        "webhook": {"signature_scheme": "standard", "secret": SECRET},
        "retry_config": {
            "max_retries": 2,
            "initial_delay_ms": 10,
            "max_delay_ms": 20,
            "retry_on_status": [503],
        },
        "endpoints": {
            "order_paid": {
                "path": "/hooks/orders",
                "method": "POST",
                "request_mapping": {
                    "body": {
                        "type": "'order.paid'",
                        "data.order_id": "variables.order_id",
                        "data.amount": "variables.amount",
                    }
                },
            }
        },
    }
    document.update(overrides)
    return document


async def deliver(
    client: httpx.AsyncClient, tenant: Tenant, document: dict[str, Any], **headers: str
) -> dict[str, Any]:
    created = await client.post("/api/v2/integrations", json=document, headers=tenant.headers)
    assert created.status_code == 201, created.text
    integration_id = created.json()["integration_id"]
    response = await client.post(
        f"/api/v2/execute/{integration_id}/order_paid",
        json={"input_data": {"variables": {"order_id": "ord_1", "amount": 4200}}},
        headers={**tenant.headers, **headers},
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_a_delivery_is_signed_per_standard_webhooks(
    app_client: httpx.AsyncClient, tenant: Tenant, receiver: Receiver
) -> None:
    result = await deliver(
        app_client, tenant, webhook_integration(receiver), **{"X-Request-ID": "req-42"}
    )

    assert result["success"] is True, result
    [delivery] = receiver.deliveries
    assert delivery["verified"] is True
    assert delivery["payload"] == {
        "type": "order.paid",
        "data": {"order_id": "ord_1", "amount": 4200},
    }
    assert delivery["headers"]["webhook-id"] == "msg_req-42"
    assert delivery["headers"]["webhook-signature"].startswith("v1,")
    assert delivery["headers"]["Content-Type"] == "application/json"


async def test_failed_deliveries_are_retried_with_the_same_webhook_id(
    app_client: httpx.AsyncClient, tenant: Tenant, receiver: Receiver
) -> None:
    receiver.fail_first = 2

    result = await deliver(app_client, tenant, webhook_integration(receiver))

    assert result["success"] is True, result
    assert result["retries"] == 2
    assert len(receiver.deliveries) == 3
    assert all(d["verified"] is True for d in receiver.deliveries)
    ids = {d["headers"]["webhook-id"] for d in receiver.deliveries}
    assert ids == {f"msg_{result['request_id']}"}


async def test_a_delivery_that_keeps_failing_reports_the_receivers_answer(
    app_client: httpx.AsyncClient, tenant: Tenant, receiver: Receiver
) -> None:
    receiver.fail_first = 10

    result = await deliver(app_client, tenant, webhook_integration(receiver))

    assert result["success"] is False
    assert result["error"]["code"] == "upstream_error"
    assert result["metadata"]["status_code"] == 503
    assert len(receiver.deliveries) == 3


async def test_a_tampered_delivery_fails_the_receivers_verification(
    app_client: httpx.AsyncClient, tenant: Tenant, receiver: Receiver
) -> None:
    # Signed with another key than the receiver's: the library refuses it.
    other = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    document = webhook_integration(
        receiver, webhook={"signature_scheme": "standard", "secret": other}
    )

    await deliver(app_client, tenant, document)

    assert receiver.deliveries[0]["verified"] == "No matching signature found"


async def test_hmac_sha256_signs_the_body_in_x_signature_256(
    app_client: httpx.AsyncClient, tenant: Tenant, receiver: Receiver
) -> None:
    document = webhook_integration(
        receiver, webhook={"signature_scheme": "hmac_sha256", "secret": HMAC_SECRET}
    )

    result = await deliver(app_client, tenant, document)

    assert result["success"] is True, result
    [delivery] = receiver.deliveries
    expected = hmac.new(HMAC_SECRET.encode(), delivery["body"], hashlib.sha256).hexdigest()
    assert delivery["headers"]["X-Signature-256"] == f"sha256={expected}"
    assert orjson.loads(delivery["body"])["data"]["order_id"] == "ord_1"
    assert delivery["headers"]["webhook-id"].startswith("msg_")


async def test_the_signing_secret_is_masked_on_read(
    app_client: httpx.AsyncClient, tenant: Tenant, receiver: Receiver
) -> None:
    created = await app_client.post(
        "/api/v2/integrations", json=webhook_integration(receiver), headers=tenant.headers
    )

    assert created.json()["webhook"]["secret"] == "********"
    assert SECRET not in created.text


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        (
            {"webhook": {"signature_scheme": "stripe", "secret": "x"}},
            ["webhook", "signature_scheme"],
        ),
        ({"webhook": {"signature_scheme": "standard", "secret": "plain"}}, ["webhook", "secret"]),
        (
            {"endpoints": {"order_paid": {"path": "/hooks/orders", "method": "GET"}}},
            ["endpoints", "order_paid", "method"],
        ),
        ({"base_url": None}, ["base_url"]),
    ],
)
async def test_a_webhook_integration_that_cannot_deliver_is_a_422_at_save(
    app_client: httpx.AsyncClient,
    tenant: Tenant,
    receiver: Receiver,
    overrides: dict[str, Any],
    loc: list[str],
) -> None:
    document = webhook_integration(receiver, **overrides)

    response = await app_client.post("/api/v2/integrations", json=document, headers=tenant.headers)

    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["errors"]] == [["body", *loc]]


async def test_each_delivery_attempt_appears_in_the_debug_trace_without_the_secret(
    app_client: httpx.AsyncClient, tenant: Tenant, receiver: Receiver
) -> None:
    receiver.fail_first = 1
    created = await app_client.post(
        "/api/v2/integrations", json=webhook_integration(receiver), headers=tenant.headers
    )
    assert created.status_code == 201, created.text
    response = await app_client.post(
        f"/api/v2/execute/{created.json()['integration_id']}/order_paid",
        json={
            "input_data": {"variables": {"order_id": "ord_1", "amount": 4200}},
            "options": {"debug_mode": True},
        },
        headers=tenant.headers,
    )
    result = response.json()

    assert result["success"] is True, result
    call = next(stage for stage in result["metadata"]["trace"] if stage["stage"] == "call")
    attempts = call["input"]["attempts"]
    assert [a["response"]["status"] for a in attempts] == [503, 200]
    assert {a["url"] for a in attempts} == {f"{receiver.url}/hooks/orders"}
    ids = {a["headers"]["webhook-id"] for a in attempts}
    assert len(ids) == 1  # the retry is the same message
    assert all(a["headers"]["webhook-signature"].startswith("v1,") for a in attempts)
    assert SECRET not in response.text
    assert SECRET.removeprefix("whsec_") not in response.text
