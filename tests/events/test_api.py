"""Events through the running app: what the service publishes, its health, and no secrets."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
from redis.asyncio import Redis

from adaptor.app import create_app
from tests.conftest import ADMIN_KEY, Backend, Tenant, make_settings, new_tenant, serve_app
from tests.events.conftest import SinkCase, eventually
from tests.executions.upstream import Reply, Upstream
from tests.integrations.payloads import rest_integration

SECRET = "sk_live_SECRET_1234567890"


async def read_stream(redis_url: str, stream: str) -> list[dict[str, Any]]:
    """Every event document on `stream` of the machine's Redis, oldest first."""
    client = Redis.from_url(redis_url)
    try:
        return [orjson.loads(fields[b"event"]) for _, fields in await client.xrange(stream)]
    finally:
        await client.aclose()


async def test_changes_and_executions_arrive_as_cloudevents_without_secrets(
    tmp_path: Path, backend: Backend, sink_case: SinkCase, upstream: Upstream
) -> None:
    """Through the app, to each kind of sink: the events of a change, executions and a
    deletion, in order, carrying neither a secret nor a payload."""
    settings = make_settings(
        tmp_path,
        backend,
        events_url=sink_case.url,
        service_name=f"adaptor-test-{uuid.uuid4().hex[:6]}",
    )
    upstream.reply(
        "GET", "/customers/42", Reply(json={"data": {"id": 42, "email": "a@example.com"}})
    )
    service = create_app(settings)
    async with serve_app(service) as app:
        tenant: Tenant = await new_tenant(app)
        created = await app.post(
            "/api/v2/integrations",
            json=rest_integration(upstream.url),
            headers=tenant.headers,
        )
        assert created.status_code == 201, created.text
        integration = created.json()["integration_id"]
        url = f"/api/v2/integrations/{integration}"
        patched = await app.patch(url, json={"timeout_ms": 2000}, headers=tenant.headers)
        assert patched.status_code == 200, patched.text
        stale = await app.patch(
            url, json={"timeout_ms": 1000}, headers={**tenant.headers, "If-Match": '"1"'}
        )
        assert stale.status_code == 412  # no change, so no event
        for _ in range(3):
            executed = await app.post(
                f"/api/v2/execute/{integration}/get_customer",
                json={"input_data": {"variables": {"customer_id": "42"}}},
                headers=tenant.headers,
            )
            assert executed.status_code == 200, executed.text
            assert executed.json()["success"] is True
        # Events follow the order rows commit; logs are written in batches a moment later.
        await service.state.services.execution_logs.flush()
        assert (await app.delete(url, headers=tenant.headers)).status_code == 204
        ready = await app.get("/health/ready")
        assert ready.json()["checks"]["events"] == "ok"

        async def all_six() -> list[dict[str, Any]]:
            found = _mine(await sink_case.read(), tenant.tenant_id)
            return found if len(found) >= 6 else []

        events = await eventually(all_six, timeout_s=30)
    assert [event["type"] for event in events] == [
        "adaptor.integration.created",
        "adaptor.integration.updated",
        "adaptor.execution.completed",
        "adaptor.execution.completed",
        "adaptor.execution.completed",
        "adaptor.integration.deleted",
    ]
    for event in events:
        assert event["specversion"] == "1.0"
        assert event["source"] == f"/{settings.service_name}"
        assert event["subject"] == integration
        assert event["tenantid"] == tenant.tenant_id
        assert event["time"].endswith("Z")
    assert events[1]["data"]["version"] == 2
    execution = events[2]["data"]
    assert execution["integration_id"] == integration
    assert execution["endpoint_name"] == "get_customer"
    assert execution["success"] is True
    assert execution["status_code"] == 200
    assert "input_data" not in execution
    assert "data" not in execution
    everything = orjson.dumps(await sink_case.read())
    assert SECRET.encode() not in everything
    assert ADMIN_KEY.encode() not in everything
    assert tenant.key.encode() not in everything
    assert b"a@example.com" not in everything  # no payloads either


def _mine(events: list[dict[str, Any]], tenant_id: str) -> list[dict[str, Any]]:
    """The tenant's events in the order the sink holds them (Kafka: by partition, and every
    event of one integration is in one partition)."""
    return [event for event in events if event.get("tenantid") == tenant_id]


async def test_an_unreachable_sink_degrades_events_but_not_readiness(
    tmp_path: Path, backend: Backend
) -> None:
    settings = make_settings(tmp_path, backend, events_url="redis://127.0.0.1:1/0?stream=x")
    async with serve_app(create_app(settings)) as app:
        tenant = await new_tenant(app)  # writes go on

        async def degraded() -> httpx.Response | None:
            response = await app.get("/health/ready")
            return response if response.json()["checks"].get("events") == "degraded" else None

        ready = await eventually(degraded, timeout_s=15)
        assert ready is not None
        assert ready.status_code == 200
        assert ready.json()["status"] == "ok"
        metrics = (await app.get("/metrics")).text
        assert "adaptor_event_publish_failures_total" in metrics
        created = await app.post(
            "/api/v2/integrations", json=rest_integration(), headers=tenant.headers
        )
        assert created.status_code == 201


async def test_without_events_url_readiness_names_no_events(
    app_client: httpx.AsyncClient,
) -> None:
    ready = await app_client.get("/health/ready")
    assert ready.status_code == 200
    assert "events" not in ready.json()["checks"]


async def test_an_install_and_a_stored_webhook_event_each_publish_one_event(
    tmp_path: Path, backend: Backend, redis_url: str
) -> None:
    stream = f"adaptor-test-events-{uuid.uuid4().hex[:8]}"
    settings = make_settings(tmp_path, backend, events_url=f"{redis_url}?stream={stream}")
    webhook_secret = "shpss_" + uuid.uuid4().hex
    token = "ghp_INSTALL_SECRET_" + uuid.uuid4().hex[:8]
    try:
        async with serve_app(create_app(settings)) as app:
            tenant = await new_tenant(app)
            installed = await app.post(
                "/api/v2/marketplace/items/github/install",
                json={"credentials": {"token": token}},
                headers=tenant.headers,
            )
            assert installed.status_code == 201, installed.text
            github = installed.json()["integration_id"]
            [install] = (
                await app.get("/api/v2/marketplace/installs", headers=tenant.headers)
            ).json()["items"]

            created = await app.post(
                "/api/v2/integrations",
                json={
                    **rest_integration(),
                    "webhook": {"signature_scheme": "github", "secret": webhook_secret},
                },
                headers=tenant.headers,
            )
            assert created.status_code == 201, created.text
            receiver = created.json()["integration_id"]
            body = orjson.dumps({"ref": "refs/heads/main", "pusher": {"email": "a@example.com"}})
            digest = hmac.new(webhook_secret.encode(), body, hashlib.sha256).hexdigest()
            headers = {
                "X-Hub-Signature-256": f"sha256={digest}",
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": "delivery-" + uuid.uuid4().hex,
            }
            for duplicate in (False, True):  # the redelivery is stored and published once
                ack = await app.post(f"/api/v2/webhooks/{receiver}", content=body, headers=headers)
                assert ack.status_code == 200, ack.text
                assert ack.json()["duplicate"] is duplicate
            [stored] = (
                await app.get(
                    f"/api/v2/integrations/{receiver}/webhook-events", headers=tenant.headers
                )
            ).json()["items"]

            wanted = {"adaptor.marketplace.installed", "adaptor.webhook.received"}

            async def both() -> list[dict[str, Any]]:
                found = _mine(await read_stream(redis_url, stream), tenant.tenant_id)
                return found if wanted <= {e["type"] for e in found} else []

            events = await eventually(both)
            bodies = await read_stream(redis_url, stream)
    finally:
        client = Redis.from_url(redis_url)
        await client.delete(stream)
        await client.aclose()

    by_type: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_type.setdefault(event["type"], []).append(event)
    assert [e["subject"] for e in by_type["adaptor.integration.created"]] == [github, receiver]
    [installed_event] = by_type["adaptor.marketplace.installed"]
    assert installed_event["subject"] == github
    assert installed_event["data"] == {
        "install_id": install["install_id"],
        "item_id": "github",
        "version": 1,
        "integration_id": github,
        "test_mode": False,
    }
    [received] = by_type["adaptor.webhook.received"]
    assert received["subject"] == receiver
    assert received["tenantid"] == tenant.tenant_id
    assert received["data"] == {
        "id": stored["id"],
        "integration_id": receiver,
        "event_id": headers["X-GitHub-Delivery"],
        "event_type": "push",
    }
    everything = orjson.dumps(bodies)
    for secret in (token, webhook_secret, tenant.key, "a@example.com", "refs/heads/main"):
        assert secret.encode() not in everything
