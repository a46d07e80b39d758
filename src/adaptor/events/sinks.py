"""Where events go: Kafka, Redis Streams or NATS JetStream, chosen by `EVENTS_URL`.

    kafka://host:9092[,host2:9092]/topic   aiokafka, message key = the event's partition key
    redis://host:6379/0?stream=name        XADD name * id <id> key <key> event <json>
    nats://host:4222/subject               JetStream publish, Nats-Msg-Id = the event id

`publish` returns once the sink has acknowledged every event of the batch, in order; any
failure raises, and the relay publishes the batch again later (consumers deduplicate by the
CloudEvents `id`, which Kafka's and NATS's own deduplication windows also use where they can).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import NamedTuple, Protocol
from urllib.parse import parse_qs, urlsplit

import nats
from aiokafka import AIOKafkaProducer
from nats.aio.client import Client as NatsClient
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError
from redis.asyncio import Redis

SCHEMES = ("kafka", "redis", "rediss", "nats", "tls")


class Event(NamedTuple):
    """One CloudEvents JSON document ready to send."""

    id: str
    key: str
    body: bytes


class EventSink(Protocol):
    """A broker events are published to."""

    description: str
    """Where events go, without credentials (for logs and health)."""

    async def start(self) -> None: ...

    async def publish(self, events: Sequence[Event]) -> None: ...

    async def close(self) -> None: ...


class EventsUrlError(ValueError):
    """EVENTS_URL does not name a sink this service can publish to."""


def parse_events_url(url: str) -> tuple[str, str, str]:
    """(scheme, connection URL, topic/stream/subject) from EVENTS_URL, or `EventsUrlError`."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "kafka":
        topic = parts.path.strip("/")
        if not parts.netloc or not topic or "/" in topic:
            raise EventsUrlError("expects kafka://host:9092/topic")
        return scheme, parts.netloc, topic
    if scheme in ("redis", "rediss"):
        stream = parse_qs(parts.query).get("stream", [""])[0]
        if not parts.hostname or not stream:
            raise EventsUrlError("expects redis://host:6379/0?stream=name")
        return "redis", parts._replace(query="").geturl(), stream
    if scheme in ("nats", "tls"):
        subject = parts.path.strip("/")
        if not parts.hostname or not subject or "/" in subject:
            raise EventsUrlError("expects nats://host:4222/subject")
        return "nats", parts._replace(path="").geturl(), subject
    raise EventsUrlError(
        "expects kafka://host:9092/topic, redis://host:6379/0?stream=name "
        "or nats://host:4222/subject"
    )


def sink_for(url: str) -> EventSink:
    """The sink EVENTS_URL names (not yet connected)."""
    scheme, target, name = parse_events_url(url)
    if scheme == "kafka":
        return KafkaSink(target, name)
    if scheme == "redis":
        return RedisStreamSink(target, name)
    return NatsSink(target, name)


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=netloc).geturl()


class KafkaSink:
    """Kafka through aiokafka; every event of one integration lands in one partition."""

    def __init__(self, bootstrap_servers: str, topic: str, *, timeout_s: float = 10.0) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.timeout_s = timeout_s
        self.description = f"kafka://{bootstrap_servers}/{topic}"
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        await self._connected()

    async def _connected(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap_servers.split(","),
                acks="all",
                request_timeout_ms=int(self.timeout_s * 1000),
                linger_ms=5,
            )
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def publish(self, events: Sequence[Event]) -> None:
        producer = await self._connected()
        try:
            sent = [
                await producer.send(
                    self.topic,
                    event.body,
                    key=event.key.encode(),
                    headers=[("ce_id", event.id.encode())],
                )
                for event in events
            ]
            await asyncio.wait_for(asyncio.gather(*sent), self.timeout_s)
        except BaseException:
            # A producer that failed mid-batch may hold half of it: start afresh next time.
            self._producer = None
            await producer.stop()
            raise

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()


class RedisStreamSink:
    """A Redis stream: one XADD per event, a batch in one pipeline."""

    def __init__(self, url: str, stream: str, *, timeout_s: float = 5.0) -> None:
        self.stream = stream
        self.description = f"{_without_credentials(url)}?stream={stream}"
        self._redis = Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )

    async def start(self) -> None:
        await self._redis.ping()

    async def publish(self, events: Sequence[Event]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for event in events:
            pipe.xadd(self.stream, {"id": event.id, "key": event.key, "event": event.body})
        await pipe.execute()

    async def close(self) -> None:
        await self._redis.aclose()


class NatsSink:
    """A JetStream subject; the stream holding it is created when none does."""

    def __init__(self, url: str, subject: str, *, timeout_s: float = 5.0) -> None:
        self.url = url
        self.subject = subject
        self.timeout_s = timeout_s
        self.description = f"{_without_credentials(url)}/{subject}"
        self._nc: NatsClient | None = None

    async def start(self) -> None:
        await self._jetstream()

    async def _jetstream(self) -> JetStreamContext:
        if self._nc is None:
            nc = await nats.connect(
                self.url,
                connect_timeout=self.timeout_s,
                allow_reconnect=False,
                max_reconnect_attempts=0,
            )
            try:
                js = nc.jetstream(timeout=self.timeout_s)
                try:
                    await js.find_stream_name_by_subject(self.subject)
                except NotFoundError:
                    name = "ADAPTOR_" + "".join(c if c.isalnum() else "_" for c in self.subject)
                    await js.add_stream(name=name, subjects=[self.subject])
            except BaseException:
                await nc.close()
                raise
            self._nc = nc
        return self._nc.jetstream(timeout=self.timeout_s)

    async def publish(self, events: Sequence[Event]) -> None:
        js = await self._jetstream()
        try:
            acks = [
                await js.publish_async(self.subject, event.body, headers={"Nats-Msg-Id": event.id})
                for event in events
            ]
            await asyncio.wait_for(asyncio.gather(*acks), self.timeout_s)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None and not nc.is_closed:
            await nc.close()


__all__ = [
    "SCHEMES",
    "Event",
    "EventSink",
    "EventsUrlError",
    "KafkaSink",
    "NatsSink",
    "RedisStreamSink",
    "parse_events_url",
    "sink_for",
]
