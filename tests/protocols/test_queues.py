"""Message-queue integrations through the HTTP API, against real brokers: the machine's
RabbitMQ, NATS (JetStream) and Redis, and Kafka on tansu; each checked with the broker's own
client too."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import nats
import orjson
import pytest
import redis.asyncio as redis_async
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from adaptor.domain import IntegrationConfig
from adaptor.protocols.base import CallContext
from adaptor.protocols.queues import QueueIntegration
from adaptor.resilience.guard import DestinationGuard
from tests.conftest import REDIS_URL
from tests.kafka_server import run_tansu
from tests.protocols.data_app import create, data_service, execute, refused
from tests.protocols.data_servers import OwnRabbitMQ, free_port, own_rabbitmq, wait_for_port

RABBIT = "amqp://127.0.0.1:5672/"
NATS = "nats://127.0.0.1:4222"

__all__ = ["own_rabbitmq"]


def queue_document(base_url: str, destination: str, **overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": "Order events",
        "type": "message_queue",
        "category": "events",
        "base_url": base_url,
        "timeout_ms": 3000,
        "retry_config": {"max_retries": 0},
        "endpoints": {
            "publish": {
                "method": "POST",
                "path": destination,
                "request_mapping": {
                    "body": {"order_id": "order.id", "total": "order.total"},
                    "headers": {"x-tenant-region": "region"},
                },
            },
            "receive": {
                "method": "GET",
                "path": destination,
                "request_mapping": {"query_params": {"max_messages": "max"}},
            },
        },
    }
    document.update(overrides)
    return document


ORDER = {"order": {"id": "ord_1", "total": 42.5}, "region": "eu"}


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Any]:
    async with data_service(tmp_path) as pair:
        yield pair


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def publish(client: Any, tenant: Any, integration_id: str, request_id: str) -> Any:
    response = await client.post(
        f"/api/v2/execute/{integration_id}/publish",
        json={"input_data": ORDER},
        headers={**tenant.headers, "X-Request-ID": request_id},
    )
    assert response.status_code == 200, response.text
    return response.json()


# RabbitMQ -----------------------------------------------------------------------------------


@pytest.fixture
async def rabbit_queue() -> AsyncIterator[tuple[str, Any]]:
    connection = await aio_pika.connect(RABBIT, timeout=5)
    channel = await connection.channel()
    name = unique("adaptor-test")
    queue = await channel.declare_queue(name, durable=True, auto_delete=False)
    try:
        yield name, channel
    finally:
        await queue.delete(if_unused=False, if_empty=False)
        await connection.close()


async def test_rabbitmq_publish_is_confirmed_and_received_by_a_pika_consumer(
    service: Any, rabbit_queue: tuple[str, Any]
) -> None:
    client, tenant = service
    name, channel = rabbit_queue
    integration_id = await create(client, tenant, queue_document(RABBIT, name))
    result = await publish(client, tenant, integration_id, "req-rabbit-1")
    assert result["success"] is True, result
    assert result["data"] == {
        "destination": name,
        "message_id": "req-rabbit-1",
        "exchange": "",
        "confirmed": True,
    }
    queue = await channel.get_queue(name)
    message = await queue.get(timeout=5)
    await message.ack()
    assert orjson.loads(message.body) == {"order_id": "ord_1", "total": 42.5}
    assert message.message_id == "req-rabbit-1"
    assert message.headers["x-tenant-region"] == "eu"


async def test_rabbitmq_receive_acknowledges_what_it_returns(
    service: Any, rabbit_queue: tuple[str, Any]
) -> None:
    client, tenant = service
    name, channel = rabbit_queue
    for n in range(3):
        await channel.default_exchange.publish(
            aio_pika.Message(orjson.dumps({"n": n}), message_id=f"m{n}", headers={"k": "v"}),
            routing_key=name,
        )
    integration_id = await create(client, tenant, queue_document(RABBIT, name))
    first = await execute(client, tenant, integration_id, "receive", {"max": 2})
    assert first["data"] == [
        {"message_id": "m0", "body": {"n": 0}, "headers": {"k": "v"}},
        {"message_id": "m1", "body": {"n": 1}, "headers": {"k": "v"}},
    ]
    second = await execute(client, tenant, integration_id, "receive", {"max": 5})
    assert [m["message_id"] for m in second["data"]] == ["m2"]
    empty = await execute(client, tenant, integration_id, "receive", {})
    assert empty["success"] is True
    assert empty["data"] == []
    declared = await channel.declare_queue(name, passive=True)
    assert declared.declaration_result.message_count == 0


async def test_rabbitmq_unroutable_publish_is_an_error(service: Any) -> None:
    client, tenant = service
    integration_id = await create(client, tenant, queue_document(RABBIT, unique("no-queue")))
    result = await publish(client, tenant, integration_id, "req-unroutable")
    assert result["success"] is False
    assert result["error"]["code"] == "upstream_error"
    assert "no queue" in result["error"]["message"]


# NATS ---------------------------------------------------------------------------------------


@pytest.fixture
async def nats_stream() -> AsyncIterator[tuple[str, Any]]:
    nc = await nats.connect(NATS, connect_timeout=3, max_reconnect_attempts=1)
    js = nc.jetstream()
    stream = unique("ADAPTOR").replace("-", "_")
    subject = f"orders.{stream.lower()}"
    await js.add_stream(name=stream, subjects=[subject], duplicate_window=120)
    try:
        yield subject, js
    finally:
        await js.delete_stream(stream)
        await nc.close()


async def test_nats_jetstream_publish_is_acknowledged_and_deduplicated(
    service: Any, nats_stream: tuple[str, Any]
) -> None:
    client, tenant = service
    subject, js = nats_stream
    integration_id = await create(client, tenant, queue_document(NATS, subject))
    first = await publish(client, tenant, integration_id, "req-nats-1")
    assert first["success"] is True, first
    assert first["data"]["sequence"] == 1
    assert first["data"]["duplicate"] is False
    again = await publish(client, tenant, integration_id, "req-nats-1")
    assert again["data"]["sequence"] == 1
    assert again["data"]["duplicate"] is True
    subscription = await js.pull_subscribe(subject, durable="checker")
    (message,) = await subscription.fetch(5, timeout=2)
    assert orjson.loads(message.data) == {"order_id": "ord_1", "total": 42.5}
    assert message.headers["Nats-Msg-Id"] == "req-nats-1"
    assert message.headers["x-tenant-region"] == "eu"


async def test_nats_receive_through_a_durable_consumer(
    service: Any, nats_stream: tuple[str, Any]
) -> None:
    client, tenant = service
    subject, js = nats_stream
    for n in range(3):
        await js.publish(subject, orjson.dumps({"n": n}), headers={"Nats-Msg-Id": f"m{n}"})
    integration_id = await create(client, tenant, queue_document(NATS, subject))
    first = await execute(client, tenant, integration_id, "receive", {"max": 2})
    assert first["data"] == [
        {"message_id": "m0", "body": {"n": 0}, "headers": {}},
        {"message_id": "m1", "body": {"n": 1}, "headers": {}},
    ]
    rest = await execute(client, tenant, integration_id, "receive", {"max": 10})
    assert [m["message_id"] for m in rest["data"]] == ["m2"]


async def test_nats_core_subject_publishes_to_listening_subscribers(service: Any) -> None:
    client, tenant = service
    subject = f"adaptor.core.{uuid.uuid4().hex[:8]}"
    nc = await nats.connect(NATS, connect_timeout=3, max_reconnect_attempts=1)
    try:
        subscription = await nc.subscribe(subject)
        integration_id = await create(client, tenant, queue_document(NATS, subject))
        result = await publish(client, tenant, integration_id, "req-core")
        assert result["data"] == {"destination": subject, "message_id": "req-core"}
        message = await subscription.next_msg(timeout=2)
        assert orjson.loads(message.data)["order_id"] == "ord_1"
    finally:
        await nc.close()


# Redis Streams ------------------------------------------------------------------------------


@pytest.fixture
async def redis_stream() -> AsyncIterator[tuple[str, Any]]:
    r = redis_async.Redis.from_url(REDIS_URL)
    name = unique("adaptor-test-stream")
    try:
        yield name, r
    finally:
        keys = [name, *[key async for key in r.scan_iter(f"{name}:adaptor-msgid:*")]]
        await r.delete(*keys)
        await r.aclose()


async def test_redis_streams_publish_deduplicates_and_a_redis_consumer_reads_it(
    service: Any, redis_stream: tuple[str, Any]
) -> None:
    client, tenant = service
    name, r = redis_stream
    url = REDIS_URL.rsplit("/", 1)[0] + "/0"
    integration_id = await create(client, tenant, queue_document(url, name))
    first = await publish(client, tenant, integration_id, "req-redis-1")
    assert first["success"] is True, first
    entry = first["data"]["id"]
    assert first["data"]["duplicate"] is False
    again = await publish(client, tenant, integration_id, "req-redis-1")
    assert again["data"] == {**first["data"], "duplicate": True}
    entries = await r.xrange(name)
    assert len(entries) == 1
    entry_id, fields = entries[0]
    assert entry_id.decode() == entry
    assert fields[b"message_id"] == b"req-redis-1"
    assert orjson.loads(fields[b"body"]) == {"order_id": "ord_1", "total": 42.5}
    assert orjson.loads(fields[b"headers"]) == {"x-tenant-region": "eu"}


async def test_redis_streams_receive_in_a_consumer_group(
    service: Any, redis_stream: tuple[str, Any]
) -> None:
    client, tenant = service
    name, r = redis_stream
    for n in range(3):
        await r.xadd(name, {"message_id": f"m{n}", "body": orjson.dumps({"n": n})})
    integration_id = await create(client, tenant, queue_document(REDIS_URL, name))
    first = await execute(client, tenant, integration_id, "receive", {"max": 2})
    assert first["data"] == [
        {"message_id": "m0", "body": {"n": 0}, "headers": {}},
        {"message_id": "m1", "body": {"n": 1}, "headers": {}},
    ]
    rest = await execute(client, tenant, integration_id, "receive", {"max": 10})
    assert [m["message_id"] for m in rest["data"]] == ["m2"]
    (group,) = await r.xinfo_groups(name)
    assert group["name"].decode() == f"adaptor-{integration_id}-receive"
    assert group["pending"] == 0  # every returned entry acknowledged


# Kafka (tansu) ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kafka() -> Iterator[str]:
    with run_tansu() as bootstrap:
        yield bootstrap


@pytest.fixture
async def kafka_topic(kafka: str) -> str:
    name = unique("adaptor-orders")
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    return name


async def test_kafka_publish_then_consume_both_ways(
    service: Any, kafka: str, kafka_topic: str
) -> None:
    client, tenant = service
    # tansu has no InitProducerId: the idempotent producer is for real Kafka clusters.
    document = queue_document(
        f"kafka://{kafka}", kafka_topic, metadata={"kafka_idempotence": False}
    )
    document["endpoints"]["receive"]["timeout_ms"] = 10_000
    integration_id = await create(client, tenant, document)
    published = await publish(client, tenant, integration_id, "req-kafka-1")
    assert published["success"] is True, published
    assert published["data"] == {
        "destination": kafka_topic,
        "message_id": "req-kafka-1",
        "partition": 0,
        "offset": 0,
    }
    producer = AIOKafkaProducer(bootstrap_servers=kafka)
    await producer.start()
    try:
        await producer.send_and_wait(
            kafka_topic, orjson.dumps({"n": 2}), headers=[("message_id", b"theirs-2")]
        )
    finally:
        await producer.stop()

    # The first receive joins the group (seconds on tansu); the member then stays.
    received: list[dict[str, Any]] = []
    end = time.monotonic() + 20
    while len(received) < 2 and time.monotonic() < end:
        result = await execute(client, tenant, integration_id, "receive", {"max": 10})
        assert result["success"] is True, result
        received += result["data"]
    assert received == [
        {
            "message_id": "req-kafka-1",
            "body": {"order_id": "ord_1", "total": 42.5},
            "headers": {"x-tenant-region": "eu"},
        },
        {"message_id": "theirs-2", "body": {"n": 2}, "headers": {}},
    ]
    started = time.monotonic()
    empty = await execute(
        client,
        tenant,
        integration_id,
        "receive",
        {"max": 1},
        options={"timeout_override_ms": 1000},
    )
    assert empty["data"] == []
    assert time.monotonic() - started < 3  # a member already: no rejoin

    consumer = AIOKafkaConsumer(
        kafka_topic,
        bootstrap_servers=kafka,
        group_id=unique("checker"),
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=15_000, max_records=10)
        records = [record for records in batch.values() for record in records]
    finally:
        await consumer.stop()
    assert orjson.loads(records[0].value) == {"order_id": "ord_1", "total": 42.5}
    assert dict(records[0].headers)["message_id"] == b"req-kafka-1"


# every broker -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scheme", ["amqp", "nats", "redis", "kafka"], ids=["rabbitmq", "nats", "redis", "kafka"]
)
async def test_an_unreachable_broker_fails_fast(service: Any, scheme: str) -> None:
    client, tenant = service
    port = free_port()
    integration_id = await create(
        client,
        tenant,
        queue_document(
            f"{scheme}://127.0.0.1:{port}", "orders", metadata={"kafka_idempotence": False}
        ),
    )
    started = time.monotonic()
    result = await publish(client, tenant, integration_id, f"req-down-{scheme}")
    assert result["success"] is False
    assert result["error"]["code"] in ("network_error", "timeout"), result
    assert time.monotonic() - started < 4


async def test_broker_urls_are_checked_at_save(service: Any) -> None:
    client, tenant = service
    problems = await refused(
        client,
        tenant,
        queue_document(
            "mqtt://broker.example.com",
            "",
            auth_config={"type": "api_key", "credentials": {"api_key": "k-123456"}},
        ),
    )
    assert "mqtt" in problems["body.base_url"]
    assert "body.auth_config.type" in problems
    assert "body.endpoints.publish.path" in problems


async def test_broker_hosts_pass_the_destination_guard(tmp_path: Path) -> None:
    async with data_service(tmp_path, allow_private_networks=False) as (client, tenant):
        integration_id = await create(client, tenant, queue_document(REDIS_URL, "orders"))
        result = await publish(client, tenant, integration_id, "req-guarded")
    assert result["error"]["code"] == "blocked_destination"


def adapter(base_url: str, destination: str, integration_id: str) -> QueueIntegration:
    config = IntegrationConfig.model_validate(
        {
            **queue_document(base_url, destination),
            "integration_id": integration_id,
            "tenant_id": "t-queues",
        }
    )
    return QueueIntegration(config, pool_size=4, guard=DestinationGuard(allow_private=True))


async def receive_all(integration: QueueIntegration, destination: str, rounds: int) -> list[str]:
    config = integration.config
    call = CallContext(config.endpoints["receive"], "r")
    seen: list[str] = []
    for _ in range(rounds):
        response = await integration.execute(
            destination,
            "GET",
            {"query_params": {"max_messages": 7}},
            timeout_ms=3000,  # the machine's brokers are shared: 1 s is not always enough
            call=call,
        )
        seen += [m["message_id"] for m in response.data]
    return seen


IDS = [f"m{n}" for n in range(40)]


async def share_the_work(url: str, name: str) -> None:
    """Two adapters (two connections, as two service processes have) on one queue/group
    receive every message once between them."""
    integration_id = str(uuid.uuid4())
    one, two = adapter(url, name, integration_id), adapter(url, name, integration_id)
    try:
        first, second = await asyncio.gather(receive_all(one, name, 5), receive_all(two, name, 5))
    finally:
        await one.close()
        await two.close()
    assert first, "the first consumer got nothing"
    assert second, "the second consumer got nothing"
    assert not set(first) & set(second)
    assert sorted(first + second, key=lambda m: int(m[1:])) == IDS


async def test_two_rabbitmq_consumers_never_get_the_same_message(
    rabbit_queue: tuple[str, Any],
) -> None:
    name, channel = rabbit_queue
    for message_id in IDS:
        await channel.default_exchange.publish(
            aio_pika.Message(b"{}", message_id=message_id), routing_key=name
        )
    await share_the_work(RABBIT, name)


async def test_two_nats_consumers_never_get_the_same_message(
    nats_stream: tuple[str, Any],
) -> None:
    name, js = nats_stream
    for message_id in IDS:
        await js.publish(name, b"{}", headers={"Nats-Msg-Id": message_id})
    await share_the_work(NATS, name)


async def test_two_redis_consumers_never_get_the_same_message(
    redis_stream: tuple[str, Any],
) -> None:
    name, r = redis_stream
    for message_id in IDS:
        await r.xadd(name, {"message_id": message_id, "body": b"{}"})
    await share_the_work(REDIS_URL, name)


# redelivery across a broker restart ------------------------------------------------------------


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A NATS server with JetStream of our own (restartable), on a free port."""
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    port = free_port()
    store = tmp_path / "jetstream"
    command = [binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)]
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(process)
        wait_for_port(port, process, "nats-server", 15)

    def stop() -> None:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=10)

    start()
    try:
        yield f"nats://127.0.0.1:{port}", (start, stop)
    finally:
        stop()


async def test_nats_messages_survive_a_server_restart(
    service: Any, own_nats: tuple[str, Any]
) -> None:
    client, tenant = service
    url, (start, stop) = own_nats
    nc = await nats.connect(url, connect_timeout=3, max_reconnect_attempts=1)
    await nc.jetstream().add_stream(name="ORDERS", subjects=["orders.created"])
    await nc.close()
    integration_id = await create(client, tenant, queue_document(url, "orders.created"))
    assert (await publish(client, tenant, integration_id, "before-restart"))["success"]
    stop()
    down = await publish(client, tenant, integration_id, "while-down")
    assert down["error"]["code"] in ("network_error", "timeout")
    start()
    end = time.monotonic() + 15
    result = await publish(client, tenant, integration_id, "after-restart")
    while not result["success"] and time.monotonic() < end:
        await asyncio.sleep(0.5)
        result = await publish(client, tenant, integration_id, "after-restart")
    assert result["success"] is True, result
    received = await execute(client, tenant, integration_id, "receive", {"max": 10})
    assert [m["message_id"] for m in received["data"]] == ["before-restart", "after-restart"]


async def test_rabbitmq_messages_survive_a_broker_restart(
    service: Any, own_rabbitmq: OwnRabbitMQ
) -> None:
    client, tenant = service
    connection = await aio_pika.connect(own_rabbitmq.url, timeout=5)
    channel = await connection.channel()
    await channel.declare_queue("orders", durable=True)
    await connection.close()
    integration_id = await create(client, tenant, queue_document(own_rabbitmq.url, "orders"))
    assert (await publish(client, tenant, integration_id, "before-restart"))["success"]
    own_rabbitmq.stop()
    down = await publish(client, tenant, integration_id, "while-down")
    assert down["error"]["code"] in ("network_error", "timeout")
    own_rabbitmq.start()
    end = time.monotonic() + 20
    result = await publish(client, tenant, integration_id, "after-restart")
    while not result["success"] and time.monotonic() < end:
        await asyncio.sleep(0.5)
        result = await publish(client, tenant, integration_id, "after-restart")
    assert result["success"] is True, result
    received = await execute(client, tenant, integration_id, "receive", {"max": 10})
    assert [m["message_id"] for m in received["data"]] == ["before-restart", "after-restart"]


async def test_refused_broker_credentials_are_auth_failed(service: Any) -> None:
    client, tenant = service
    document = queue_document(
        RABBIT,
        "orders",
        auth_config={
            "type": "basic_auth",
            "credentials": {"username": "guest", "password": "Not-The-Password-7"},
        },
    )
    integration_id = await create(client, tenant, document)
    result = await publish(client, tenant, integration_id, "req-bad-credentials")
    assert result["error"]["code"] == "auth_failed", result
    assert "Not-The-Password-7" not in str(result)


async def test_receiving_from_a_missing_rabbitmq_queue_is_an_error_then_recovers(
    service: Any,
) -> None:
    client, tenant = service
    name = unique("adaptor-later")
    integration_id = await create(client, tenant, queue_document(RABBIT, name))
    missing = await execute(client, tenant, integration_id, "receive", {})
    assert missing["error"]["code"] == "upstream_error"
    assert "no queue" in missing["error"]["message"]
    connection = await aio_pika.connect(RABBIT, timeout=5)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, durable=True)
        published = await publish(client, tenant, integration_id, "req-after-missing")
        assert published["success"] is True, published
        received = await execute(client, tenant, integration_id, "receive", {})
        assert [m["message_id"] for m in received["data"]] == ["req-after-missing"]
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()


async def test_the_debug_trace_names_the_destination_not_the_message(
    service: Any, redis_stream: tuple[str, Any]
) -> None:
    client, tenant = service
    name, _ = redis_stream
    integration_id = await create(client, tenant, queue_document(REDIS_URL, name))

    def call_stage(result: dict[str, Any]) -> dict[str, Any]:
        stage: dict[str, Any] = next(s for s in result["metadata"]["trace"] if s["stage"] == "call")
        return stage

    sent = await execute(
        client, tenant, integration_id, "publish", ORDER, options={"debug_mode": True}
    )
    assert sent["success"] is True, sent
    stage = call_stage(sent)
    assert stage["input"]["attempts"] == [
        {"operation": "message", "action": "publish", "broker": "redis", "destination": name}
    ]
    assert "ord_1" not in str(stage)

    taken = await execute(
        client, tenant, integration_id, "receive", {"max": 5}, options={"debug_mode": True}
    )
    assert [m["body"] for m in taken["data"]] == [{"order_id": "ord_1", "total": 42.5}]
    stage = call_stage(taken)
    assert stage["input"]["attempts"] == [
        {
            "operation": "message",
            "action": "receive",
            "broker": "redis",
            "destination": name,
            "messages": 1,
        }
    ]
    assert "ord_1" not in str(stage)
