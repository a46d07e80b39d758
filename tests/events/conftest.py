"""Real sinks for the event tests, and readers that take back what reached them.

Redis Streams and NATS JetStream run as processes of the test's own (a `redis-server` and a
`nats-server -js` on free loopback ports), so a test can stop one and start it again; Kafka is
the `tansu` broker (tests/kafka_server.py). The machine's own servers are never stopped.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import nats
import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from redis.asyncio import Redis

from adaptor.events.sinks import EventSink, KafkaSink, NatsSink, RedisStreamSink
from adaptor.storage.database import Database
from tests.conftest import Backend, make_settings
from tests.executions.upstream import Upstream, serve_upstream
from tests.kafka_server import Tansu, free_port, run_tansu_broker


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    give_up = time.monotonic() + 30
    while time.monotonic() < give_up:
        if process.poll() is not None:
            pytest.fail(f"{log.name} exited:\n{log.read_text()[-2000:]}")
        with socket.socket() as probe:
            probe.settimeout(0.2)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail(f"nothing listens on {port} after 30 s ({log})")


class Server(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class ProcessServer:
    """A server binary of the machine, run by the test on a port of its own."""

    name: str
    command: list[str]
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which(self.command[0])
        if binary is None:
            pytest.fail(f"{self.command[0]} is not installed")
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [binary, *self.command[1:]], stdout=output, stderr=subprocess.STDOUT
            )
        _wait_listening(self.port, self.process, self.log)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


class Reader(Protocol):
    async def __call__(self) -> list[dict[str, Any]]: ...


@dataclass
class SinkCase:
    """One kind of sink on a server the test controls."""

    kind: str
    server: Server
    make_sink: Any
    read: Reader
    after_start: Any = None
    url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def redis_case(tmp_path: Path) -> SinkCase:
    port = free_port()
    server = ProcessServer(
        "redis",
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(tmp_path),
            "--appendonly",
            "no",
        ],
        port,
        tmp_path / "redis.log",
    )
    stream = f"events-{uuid.uuid4().hex[:8]}"
    url = f"redis://127.0.0.1:{port}/0"

    async def read() -> list[dict[str, Any]]:
        client = Redis.from_url(url)
        try:
            entries = await client.xrange(stream)
        finally:
            await client.aclose()
        return [orjson.loads(fields[b"event"]) for _, fields in entries]

    return SinkCase(
        "redis",
        server,
        lambda: RedisStreamSink(url, stream, timeout_s=1.0),
        read,
        url=f"{url}?stream={stream}",
    )


def nats_case(tmp_path: Path) -> SinkCase:
    port = free_port()
    store = tmp_path / "nats"
    server = ProcessServer(
        "nats",
        ["nats-server", "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)],
        port,
        tmp_path / "nats.log",
    )
    subject = f"adaptor.events.{uuid.uuid4().hex[:8]}"
    url = f"nats://127.0.0.1:{port}"

    async def read() -> list[dict[str, Any]]:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            stream = await js.find_stream_name_by_subject(subject)
            info = await js.stream_info(stream)
            found: list[dict[str, Any]] = []
            if not info.state.messages:
                return found
            for seq in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
                message = await js.get_msg(stream, seq)
                assert message.data is not None
                found.append(orjson.loads(message.data))
            return found
        finally:
            await nc.close()

    return SinkCase(
        "nats", server, lambda: NatsSink(url, subject, timeout_s=2.0), read, url=f"{url}/{subject}"
    )


class TansuServer:
    def __init__(self, broker: Tansu) -> None:
        self.broker = broker

    def start(self) -> None:
        self.broker.start()

    def stop(self) -> None:
        self.broker.stop()


def kafka_case(broker: Tansu) -> SinkCase:
    topic = f"events-{uuid.uuid4().hex[:8]}"

    async def create_topic() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
        finally:
            await admin.close()

    async def read() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=broker.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        found: list[dict[str, Any]] = []
        try:
            idle = 0
            while idle < 3:
                batch = await consumer.getmany(timeout_ms=500)
                idle = 0 if batch else idle + 1
                for messages in batch.values():
                    found += [orjson.loads(message.value) for message in messages]
        finally:
            await consumer.stop()
        # Partitions interleave arbitrarily: order within one integration is what counts.
        return found

    return SinkCase(
        "kafka",
        TansuServer(broker),
        lambda: KafkaSink(broker.bootstrap, topic, timeout_s=3.0),
        read,
        after_start=create_topic,
        url=f"kafka://{broker.bootstrap}/{topic}",
    )


@pytest.fixture(scope="session")
def tansu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tansu]:
    with run_tansu_broker(tmp_path_factory.mktemp("tansu")) as broker:
        yield broker


@pytest.fixture(params=["redis", "nats", "kafka"])
async def sink_case(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SinkCase]:
    """A sink of each kind on a server the test owns (started; stopped at the end)."""
    if request.param == "redis":
        case = redis_case(tmp_path)
        case.server.start()
    elif request.param == "nats":
        case = nats_case(tmp_path)
        case.server.start()
    else:
        case = kafka_case(request.getfixturevalue("tansu"))
    if case.after_start is not None:
        await case.after_start()
    try:
        yield case
    finally:
        if case.kind != "kafka":  # the broker is the session's
            case.server.stop()


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with serve_upstream() as server:
        yield server


@pytest.fixture
async def database(tmp_path: Path, backend: Backend) -> AsyncIterator[Database]:
    db = Database(make_settings(tmp_path, backend).database_url)
    await db.migrate()
    yield db
    await db.close()


async def eventually(check: Any, timeout_s: float = 20.0, interval_s: float = 0.1) -> Any:
    """Poll the async `check` until it returns something truthy."""
    give_up = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value or time.monotonic() > give_up:
            return value
        await asyncio.sleep(interval_s)


__all__ = ["EventSink", "SinkCase", "eventually"]
