"""Service processes receiving from one queue share the work: no message reaches two of them.

Real `adaptor serve` processes (the replicas fixture) receive concurrently through the HTTP API
from the machine's Redis (a stream with a consumer group), RabbitMQ (a queue) and NATS (a
JetStream durable consumer); what they answer is acknowledged work.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aio_pika
import httpx
import nats
import orjson
import pytest
import redis.asyncio as redis_async

from tests.conftest import REDIS_URL, Tenant
from tests.replicas.conftest import Measure
from tests.replicas.test_replicas import create, new_tenant

pytestmark = pytest.mark.replicas

MESSAGES = [f"m{n}" for n in range(60)]


def document(base_url: str, destination: str) -> dict[str, Any]:
    return {
        "name": "Shared queue",
        "type": "message_queue",
        "category": "events",
        "base_url": base_url,
        "timeout_ms": 3000,  # the machine's brokers are shared: 1 s is not always enough
        "retry_config": {"max_retries": 0},
        "endpoints": {
            "receive": {
                "method": "GET",
                "path": destination,
                "request_mapping": {"query_params": {"max_messages": "`4`"}},
            }
        },
    }


async def drain(
    clients: list[httpx.AsyncClient], headers: dict[str, str], integration_id: str
) -> list[list[str]]:
    """Every replica receiving in a loop until a round brings nothing: ids per replica."""
    seen: list[list[str]] = [[] for _ in clients]
    answered = [asyncio.Event() for _ in clients]

    async def consume(index: int, client: httpx.AsyncClient) -> None:
        if index == 0:
            # The first replica created the integration and has it loaded; the others load it
            # on their first call. On a busy machine that head start let it take every message
            # before they answered, so it starts once they have.
            await asyncio.gather(*(event.wait() for event in answered[1:]))
        empty = 0
        while empty < 2:
            try:
                response = await client.post(
                    f"/api/v2/execute/{integration_id}/receive", json={}, headers=headers
                )
            finally:
                answered[index].set()
            result = response.json()
            assert result["success"] is True, result["error"]
            ids = [message["message_id"] for message in result["data"]]
            seen[index] += ids
            empty = 0 if ids else empty + 1

    await asyncio.gather(*(consume(n, client) for n, client in enumerate(clients)))
    return seen


def check(seen: list[list[str]], measure: Measure) -> None:
    every = [message for ids in seen for message in ids]
    measure("per_replica", [len(ids) for ids in seen])
    assert sorted(every, key=lambda m: int(m[1:])) == MESSAGES  # each once, none lost
    assert sum(1 for ids in seen if ids) >= 2, seen  # the work was shared


@pytest.fixture
async def tenant(clients: list[httpx.AsyncClient]) -> Tenant:
    return await new_tenant(clients[0])


async def test_replicas_share_a_redis_stream(
    clients: list[httpx.AsyncClient], tenant: Tenant, measure: Measure
) -> None:
    stream = f"adaptor-replicas-{uuid.uuid4().hex[:8]}"
    client = redis_async.Redis.from_url(REDIS_URL)
    try:
        for message_id in MESSAGES:
            await client.xadd(stream, {"message_id": message_id, "body": b"{}"})
        integration_id = await create(clients[0], tenant, document(REDIS_URL, stream))
        check(await drain(clients, tenant.headers, integration_id), measure)
        (group,) = await client.xinfo_groups(stream)
        assert group["pending"] == 0
    finally:
        await client.delete(stream)
        await client.aclose()


async def test_replicas_share_a_rabbitmq_queue(
    clients: list[httpx.AsyncClient], tenant: Tenant, measure: Measure
) -> None:
    name = f"adaptor-replicas-{uuid.uuid4().hex[:8]}"
    connection = await aio_pika.connect("amqp://127.0.0.1:5672/", timeout=5)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, durable=True)
        for message_id in MESSAGES:
            await channel.default_exchange.publish(
                aio_pika.Message(orjson.dumps({}), message_id=message_id), routing_key=name
            )
        integration_id = await create(clients[0], tenant, document("amqp://127.0.0.1:5672/", name))
        check(await drain(clients, tenant.headers, integration_id), measure)
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()


async def test_replicas_share_a_nats_durable_consumer(
    clients: list[httpx.AsyncClient], tenant: Tenant, measure: Measure
) -> None:
    stream = f"REPLICAS_{uuid.uuid4().hex[:8]}"
    subject = f"replicas.{stream.lower()}"
    nc = await nats.connect("nats://127.0.0.1:4222", connect_timeout=3, max_reconnect_attempts=1)
    js = nc.jetstream()
    try:
        await js.add_stream(name=stream, subjects=[subject])
        for message_id in MESSAGES:
            await js.publish(subject, b"{}", headers={"Nats-Msg-Id": message_id})
        integration_id = await create(
            clients[0], tenant, document("nats://127.0.0.1:4222", subject)
        )
        check(await drain(clients, tenant.headers, integration_id), measure)
    finally:
        await js.delete_stream(stream)
        await nc.close()
