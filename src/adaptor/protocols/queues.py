"""Message-queue integrations: publish and receive on RabbitMQ, NATS, Redis Streams and Kafka.

    base_url   amqp://mq.example.com:5672/vhost   RabbitMQ (aio-pika; metadata.exchange)
               nats://nats.example.com:4222       NATS (nats-py; JetStream when a stream
                                                   holds the subject)
               redis://cache.example.com:6379/0   Redis Streams (redis-py)
               kafka://kafka.example.com:9092     Kafka (aiokafka)
    path       the queue / routing key, subject, stream or topic (`{placeholders}` allowed)

`POST` publishes the mapped body as JSON with the mapped `headers` as message headers and
answers `{"destination", "message_id"}` plus the broker's receipt once the broker confirmed it.
`GET` receives up to `query_params.max_messages` (1 by default, at most 100) within the
timeout, acknowledges them, and answers `[{"message_id", "body", "headers"}]`. Receivers share
one consumer group / durable consumer per integration and endpoint, so replicas split the work.

The execution's request id is the message id, the same on every retry, so a retried publish is
deduplicated where the broker can:

    broker           confirmation                   deduplication            redelivery
    RabbitMQ         publisher confirms (mandatory)  none (message_id set)    unacked → requeued
    NATS JetStream   PubAck (stream, sequence)       Nats-Msg-Id window       ack_wait → redelivered
    NATS core        flush                           none                     none (no storage)
    Redis Streams    XADD id                         atomic id check (24 h)   XAUTOCLAIM after 60 s
    Kafka            acks=all, idempotent producer   producer retries only    uncommitted → again

(`metadata.kafka_idempotence: false` turns the idempotent producer off for Kafka-compatible
brokers without InitProducerId, such as tansu.)

Every client is configured to fail fast on an unreachable broker (`network_error` within a few
seconds) and each integration's connection is opened on first use, reopened after it broke (a
broker restart) and closed by `close()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, unquote, urlsplit

import orjson

from adaptor.domain import (
    AuthType,
    HttpMethod,
    IntegrationResponse,
    IntegrationSpec,
    RetryConfig,
)
from adaptor.protocols.base import BaseIntegration, CallContext
from adaptor.protocols.connections import (
    LazyResource,
    attempt_seconds,
    auth_problems,
    basic_credentials,
    guarded_address,
    url_problems,
)
from adaptor.protocols.errors import (
    NetworkError,
    RequestBuildError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeout,
)
from adaptor.protocols.files import fill_path
from adaptor.protocols.http import record_operation
from adaptor.resilience.guard import DestinationGuard

if TYPE_CHECKING:
    from adaptor.auth_handlers.base import BaseAuthHandler
    from adaptor.protocols.registry import AdapterContext, AdapterOptions, Problem

__all__ = ["QueueAdapterFactory", "QueueIntegration", "Received"]

_SCHEMES: dict[str, int | None] = {
    "amqp": 5672,
    "amqps": 5671,
    "nats": 4222,
    "redis": 6379,
    "rediss": 6379,
    "kafka": 9092,
}
CONNECT_TIMEOUT_S = 3.0
MAX_MESSAGES = 100
RECEIVE_MARGIN_S = 0.2
"""A receive returns this long before the attempt's timeout, with what it has."""
DEDUP_TTL_S = 86_400


@dataclass(slots=True)
class Received:
    """One received message, as answered: `{"message_id", "body", "headers"}`."""

    message_id: str | None
    body: Any
    headers: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "body": self.body, "headers": self.headers}


def _decode_body(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", errors="replace")


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _consumer_name() -> str:
    """This process's own member name within a group (host, pid, and a random part)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class Broker(ABC):
    """One broker connection of an integration."""

    def __init__(self, url: SplitResult, address: str, user: str | None, password: str | None):
        self.url = url
        self.address = address
        self.user = user
        self.password = password

    @abstractmethod
    async def publish(
        self,
        destination: str,
        body: bytes,
        headers: dict[str, str],
        message_id: str,
        seconds: float,
    ) -> dict[str, Any]:
        """Publish and wait for the broker's confirmation; the receipt's fields."""

    @abstractmethod
    async def receive(
        self, destination: str, group: str, max_messages: int, seconds: float
    ) -> list[Received]:
        """Up to `max_messages` within `seconds`, each acknowledged before it is returned."""

    @abstractmethod
    async def close(self) -> None: ...

    @property
    def broken(self) -> bool:
        """Whether the connection is gone for good (reopen it)."""
        return False


# RabbitMQ -----------------------------------------------------------------------------------


class RabbitBroker(Broker):
    """aio-pika's robust connection (reconnects by itself), a confirming channel."""

    def __init__(self, *args: Any, exchange: str = "") -> None:
        super().__init__(*args)
        self.exchange_name = exchange
        self._connection: Any = None
        self._channel: Any = None

    async def open(self) -> None:
        import aio_pika

        vhost = unquote(self.url.path.lstrip("/")) or "/"
        self._connection = await aio_pika.connect_robust(
            host=self.address,
            port=self.url.port or 5672,
            login=self.user or "guest",
            password=self.password or "guest",
            virtualhost=vhost,
            ssl=self.url.scheme == "amqps",
            timeout=CONNECT_TIMEOUT_S,
            client_properties={"connection_name": "adaptor-service"},
        )
        self._channel = await self._connection.channel(
            publisher_confirms=True, on_return_raises=True
        )

    async def _exchange(self) -> Any:
        if not self.exchange_name:
            return self._channel.default_exchange
        return await self._channel.get_exchange(self.exchange_name, ensure=False)

    async def publish(
        self,
        destination: str,
        body: bytes,
        headers: dict[str, str],
        message_id: str,
        seconds: float,
    ) -> dict[str, Any]:
        import aio_pika

        message = aio_pika.Message(
            body,
            headers=dict(headers),
            message_id=message_id,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        exchange = await self._exchange()
        await exchange.publish(message, routing_key=destination, mandatory=True, timeout=seconds)
        return {"exchange": self.exchange_name, "confirmed": True}

    async def receive(
        self, destination: str, group: str, max_messages: int, seconds: float
    ) -> list[Received]:
        # A queue is already shared: its consumers never get the same delivery.
        queue = await self._channel.get_queue(destination, ensure=True)
        received: list[Received] = []
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while len(received) < max_messages:
            message = await queue.get(no_ack=False, fail=False, timeout=seconds)
            if message is None:
                if received or loop.time() >= end:
                    break  # what the queue had now, or nothing within the time
                await asyncio.sleep(min(0.05, max(0.0, end - loop.time())))
                continue
            received.append(
                Received(
                    message.message_id,
                    _decode_body(message.body),
                    {str(k): _text(v) for k, v in (message.headers or {}).items()},
                )
            )
            await message.ack()
        return received

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    @property
    def broken(self) -> bool:
        """The connection, or the channel (the broker closes it on a refused operation)."""
        if self._connection is None or self._channel is None:
            return False
        return bool(self._connection.is_closed or self._channel.is_closed)


# NATS ---------------------------------------------------------------------------------------


class NatsBroker(Broker):
    """nats-py: JetStream publish with acknowledgement where a stream holds the subject."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._nc: Any = None
        self._js: Any = None
        self._streams: dict[str, str | None] = {}
        self._subscriptions: dict[tuple[str, str], Any] = {}

    async def open(self) -> None:
        from nats.aio.client import Client

        async def quiet(*_: Any) -> None:
            return None

        server = f"nats://{self.address}:{self.url.port or 4222}"
        client = Client()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await client.connect(
                    servers=[server],
                    user=self.user,
                    password=self.password,
                    name="adaptor-service",
                    connect_timeout=2,
                    reconnect_time_wait=1,
                    max_reconnect_attempts=60,
                    error_cb=quiet,
                    disconnected_cb=quiet,
                    reconnected_cb=quiet,
                    closed_cb=quiet,
                )
        except BaseException:
            with contextlib.suppress(Exception):
                await client.close()
            raise
        self._nc = client
        self._js = client.jetstream()

    async def _stream_of(self, subject: str) -> str | None:
        from nats.js.errors import NotFoundError

        if subject not in self._streams:
            try:
                self._streams[subject] = await self._js.find_stream_name_by_subject(subject)
            except NotFoundError:
                self._streams[subject] = None
        return self._streams[subject]

    async def publish(
        self,
        destination: str,
        body: bytes,
        headers: dict[str, str],
        message_id: str,
        seconds: float,
    ) -> dict[str, Any]:
        stream = await self._stream_of(destination)
        all_headers = {**headers, "Nats-Msg-Id": message_id}
        if stream is None:
            await self._nc.publish(destination, body, headers=all_headers)
            await self._nc.flush(timeout=max(seconds, 0.1))
            return {}
        ack = await self._js.publish(
            destination, body, timeout=seconds, stream=stream, headers=all_headers
        )
        return {"stream": ack.stream, "sequence": ack.seq, "duplicate": bool(ack.duplicate)}

    async def receive(
        self, destination: str, group: str, max_messages: int, seconds: float
    ) -> list[Received]:
        import nats.errors

        stream = await self._stream_of(destination)
        if stream is None:
            raise RequestBuildError(
                f"NATS subject {destination!r} is in no JetStream stream: there is nothing "
                "stored to receive (core NATS only delivers to subscribers listening)"
            )
        durable = re.sub(r"[^A-Za-z0-9_-]", "_", group)[:200]
        key = (destination, durable)
        subscription = self._subscriptions.get(key)
        if subscription is None:
            subscription = await self._js.pull_subscribe(
                destination, durable=durable, stream=stream
            )
            self._subscriptions[key] = subscription
        try:
            messages = await subscription.fetch(max_messages, timeout=seconds)
        except (nats.errors.TimeoutError, TimeoutError):
            # nats-py raises asyncio's own TimeoutError, not its subclass, when the time ran
            # out between its two pull requests: nothing came either way.
            return []
        received: list[Received] = []
        for message in messages:
            headers = dict(message.headers or {})
            message_id = headers.pop("Nats-Msg-Id", None)
            received.append(Received(message_id, _decode_body(message.data), headers))
            await message.ack_sync(timeout=max(seconds, 1.0))
        return received

    async def close(self) -> None:
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()

    @property
    def broken(self) -> bool:
        return self._nc is not None and self._nc.is_closed


# Redis Streams ------------------------------------------------------------------------------

# Atomic publish with deduplication: a message id seen in the last day answers its entry id.
_XADD_ONCE = """
local seen = redis.call('GET', KEYS[2])
if seen then return {seen, 1} end
local id = redis.call('XADD', KEYS[1], '*', 'message_id', ARGV[1], 'body', ARGV[2],
  'headers', ARGV[3])
redis.call('SET', KEYS[2], id, 'EX', tonumber(ARGV[4]))
return {id, 0}
"""
CLAIM_IDLE_MS = 60_000
"""Entries a consumer read and never acknowledged are taken over after this long."""


class RedisStreamsBroker(Broker):
    """redis-py: XADD (deduplicated by message id), XREADGROUP, XACK, XAUTOCLAIM."""

    def __init__(self, *args: Any, pool_size: int) -> None:
        super().__init__(*args)
        self._pool_size = pool_size
        self._client: Any = None
        self._script: Any = None
        self._groups: set[tuple[str, str]] = set()
        self._consumer = _consumer_name()

    async def open(self) -> None:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        db = self.url.path.lstrip("/") or "0"
        self._client = Redis(
            host=self.address,
            port=self.url.port or 6379,
            db=int(db) if db.isdigit() else 0,
            username=self.user,
            password=self.password,
            ssl=self.url.scheme == "rediss",
            socket_connect_timeout=2,
            retry=Retry(NoBackoff(), 0),
            max_connections=self._pool_size,
            client_name="adaptor-service",
        )
        self._script = self._client.register_script(_XADD_ONCE)
        await self._client.ping()

    async def publish(
        self,
        destination: str,
        body: bytes,
        headers: dict[str, str],
        message_id: str,
        seconds: float,
    ) -> dict[str, Any]:
        entry, duplicate = await self._script(
            keys=[destination, f"{destination}:adaptor-msgid:{message_id}"],
            args=[message_id, body, orjson.dumps(headers), DEDUP_TTL_S],
        )
        return {"id": _text(entry), "duplicate": bool(duplicate)}

    async def receive(
        self, destination: str, group: str, max_messages: int, seconds: float
    ) -> list[Received]:
        from redis.exceptions import ResponseError

        client = self._client
        if (destination, group) not in self._groups:
            try:
                # From the stream's start: what was published before the first receive counts.
                await client.xgroup_create(destination, group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._groups.add((destination, group))
        # First what another member read and never acknowledged (it died), then new entries.
        _, claimed, *_ = await client.xautoclaim(
            destination, group, self._consumer, CLAIM_IDLE_MS, "0-0", count=max_messages
        )
        entries = [entry for entry in claimed if entry and entry[1]]
        if not entries:
            block_ms = max(1, int(seconds * 1000))
            answer = await client.xreadgroup(
                group, self._consumer, {destination: ">"}, count=max_messages, block=block_ms
            )
            entries = [entry for _, stream_entries in answer or [] for entry in stream_entries]
        received: list[Received] = []
        for entry_id, fields in entries:
            fields = {_text(k): v for k, v in fields.items()}
            headers = orjson.loads(fields["headers"]) if fields.get("headers") else {}
            received.append(
                Received(
                    _text(fields["message_id"]) if "message_id" in fields else _text(entry_id),
                    _decode_body(fields.get("body", b"")),
                    {str(k): str(v) for k, v in headers.items()},
                )
            )
        if entries:
            await client.xack(destination, group, *[entry_id for entry_id, _ in entries])
        return received

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


# Kafka --------------------------------------------------------------------------------------


class KafkaBroker(Broker):
    """aiokafka: an idempotent producer with acks=all; long-lived group consumers per topic.

    A consumer stays a member of its group between calls: joining a group takes seconds, and
    a member that stays keeps its partitions, so each receive after the first answers at once
    from the committed offsets.
    """

    def __init__(self, *args: Any, idempotent: bool = True) -> None:
        super().__init__(*args)
        self._idempotent = idempotent
        self._producer: Any = None
        self._consumers: dict[tuple[str, str], Any] = {}
        self._starting: dict[tuple[str, str], asyncio.Task[Any]] = {}

    def _common(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "bootstrap_servers": f"{self.address}:{self.url.port or 9092}",
            "client_id": "adaptor-service",
            "request_timeout_ms": 10_000,
            "metadata_max_age_ms": 60_000,
        }
        if self.user:
            options.update(
                security_protocol="SASL_PLAINTEXT",
                sasl_mechanism="PLAIN",
                sasl_plain_username=self.user,
                sasl_plain_password=self.password or "",
            )
        return options

    async def open(self) -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(
            **self._common(), acks="all", enable_idempotence=self._idempotent
        )
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await producer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        self._producer = producer

    async def publish(
        self,
        destination: str,
        body: bytes,
        headers: dict[str, str],
        message_id: str,
        seconds: float,
    ) -> dict[str, Any]:
        record_headers = [("message_id", message_id.encode())]
        record_headers += [(name, value.encode()) for name, value in headers.items()]
        metadata = await self._producer.send_and_wait(
            destination, value=body, key=message_id.encode(), headers=record_headers
        )
        return {"partition": metadata.partition, "offset": metadata.offset}

    async def _consumer(self, topic: str, group: str) -> Any:
        from aiokafka import AIOKafkaConsumer

        key = (topic, group)
        if key in self._consumers:
            return self._consumers[key]
        task = self._starting.get(key)
        if task is None:

            async def start() -> Any:
                consumer = AIOKafkaConsumer(
                    topic,
                    **self._common(),
                    group_id=group,
                    enable_auto_commit=False,
                    auto_offset_reset="earliest",
                )
                await consumer.start()
                self._consumers[key] = consumer
                return consumer

            task = asyncio.create_task(start())
            self._starting[key] = task
            task.add_done_callback(lambda done: self._started(key, done))
        # The join goes on in the background when this call's time is up.
        return await asyncio.shield(task)

    def _started(self, key: tuple[str, str], task: asyncio.Task[Any]) -> None:
        self._starting.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved: a failed join is retried by the next receive

    async def receive(
        self, destination: str, group: str, max_messages: int, seconds: float
    ) -> list[Received]:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        try:
            async with asyncio.timeout(seconds):
                consumer = await self._consumer(destination, group)
        except TimeoutError:
            return []  # still joining the group: the next receive finds its partitions
        received: list[Received] = []
        while len(received) < max_messages:
            left_ms = int((end - loop.time()) * 1000)
            if left_ms <= 0:
                break
            batches = await consumer.getmany(
                timeout_ms=left_ms, max_records=max_messages - len(received)
            )
            for records in batches.values():
                for record in records:
                    headers = {name: _text(value) for name, value in record.headers or ()}
                    message_id = headers.pop("message_id", None)
                    received.append(Received(message_id, _decode_body(record.value), headers))
            if received:
                break
        if received:
            await consumer.commit()
        return received

    async def close(self) -> None:
        for task in list(self._starting.values()):
            task.cancel()
        for consumer in list(self._consumers.values()):
            with contextlib.suppress(Exception):
                await consumer.stop()
        self._consumers.clear()
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()


# errors -------------------------------------------------------------------------------------


def _error_classes() -> tuple[tuple[type[BaseException], ...], ...]:
    """(auth, timeout, network, unroutable, missing) exception classes of the four clients."""
    import aio_pika.exceptions as pika
    import aiokafka.errors as kafka
    import aiormq.exceptions as amqp
    import nats.errors as nats
    import nats.js.errors as nats_js
    import redis.exceptions as redis

    auth = (
        pika.ProbableAuthenticationError,
        amqp.AuthenticationError,
        amqp.ChannelAccessRefused,
        nats.AuthorizationError,
        redis.AuthenticationError,
        redis.AuthorizationError,
        kafka.SaslAuthenticationFailed,
        kafka.AuthenticationFailedError,
        kafka.TopicAuthorizationFailedError,
        kafka.GroupAuthorizationFailedError,
    )
    timeout = (
        TimeoutError,
        nats.TimeoutError,
        nats.FlushTimeoutError,
        redis.TimeoutError,
        kafka.KafkaTimeoutError,
        kafka.RequestTimedOutError,
    )
    network = (
        OSError,
        ConnectionError,
        amqp.AMQPConnectionError,
        nats.NoServersError,
        nats.ConnectionClosedError,
        nats.StaleConnectionError,
        redis.ConnectionError,
        kafka.KafkaConnectionError,
    )
    unroutable = (pika.DeliveryError, pika.PublishError)
    missing = (amqp.ChannelNotFoundEntity, nats_js.NotFoundError)
    return auth, timeout, network, unroutable, missing


def _classify(exc: BaseException, where: str) -> UpstreamError:
    """A client's exception as the `UpstreamError` the pipeline's policy table reads."""
    auth, timeout, network, unroutable, missing = _error_classes()
    name = type(exc).__name__
    if isinstance(exc, auth):
        return UpstreamAuthError(f"the {where} refused the credentials", status_code=None)
    if isinstance(exc, timeout):
        return UpstreamTimeout(f"the {where} did not confirm in time")
    if isinstance(exc, unroutable):
        return UpstreamStatusError(
            f"the {where} did not route the message: no queue is bound to that destination",
            status_code=None,
        )
    if isinstance(exc, missing):
        return UpstreamStatusError(
            f"the {where} has no queue, stream or consumer by that name", status_code=404
        )
    if isinstance(exc, network):
        return NetworkError(f"could not reach the {where} ({name})")
    return UpstreamStatusError(f"the {where} refused the operation ({name})", status_code=None)


# the adapter --------------------------------------------------------------------------------


class QueueIntegration(BaseIntegration):
    """Publishes to and receives from one broker."""

    def __init__(self, config: IntegrationSpec, *, pool_size: int, guard: DestinationGuard):
        super().__init__(config)
        url = urlsplit(config.base_url or "")
        self._url = url
        self._kind = {"amqps": "amqp", "rediss": "redis"}.get(url.scheme, url.scheme)
        self._where = {
            "amqp": "RabbitMQ broker",
            "nats": "NATS server",
            "redis": "Redis server",
            "kafka": "Kafka cluster",
        }[self._kind]
        self._user, self._password = basic_credentials(config.auth_config, url)
        self._pool_size = pool_size
        self._guard = guard
        self._broker: LazyResource[Broker] = LazyResource(self._open, self._close)
        integration_id = getattr(config, "integration_id", None) or config.name
        self._group_prefix = f"adaptor-{integration_id}"

    async def _open(self) -> Broker:
        url = self._url
        address = await guarded_address(
            self._guard, url.hostname or "", url.port or _SCHEMES[url.scheme] or 0
        )
        args = (url, address, self._user, self._password)
        broker: RabbitBroker | NatsBroker | RedisStreamsBroker | KafkaBroker
        if self._kind == "amqp":
            broker = RabbitBroker(*args, exchange=str(self.config.metadata.get("exchange") or ""))
        elif self._kind == "nats":
            broker = NatsBroker(*args)
        elif self._kind == "redis":
            broker = RedisStreamsBroker(*args, pool_size=self._pool_size)
        else:
            idempotent = self.config.metadata.get("kafka_idempotence", True)
            broker = KafkaBroker(*args, idempotent=idempotent is not False)
        await broker.open()
        return broker

    @staticmethod
    async def _close(broker: Broker) -> None:
        with contextlib.suppress(Exception):
            await broker.close()

    async def close(self) -> None:
        await self._broker.close()
        await self._guard.close()

    async def execute(
        self,
        endpoint: str,
        method: str,
        request_data: Mapping[str, Any] | None = None,
        timeout_ms: int | None = None,
        retry_config: RetryConfig | None = None,
        *,
        deadline: float | None = None,
        call: CallContext | None = None,
    ) -> IntegrationResponse:
        request_data = request_data or {}
        destination = fill_path(endpoint.removeprefix("/"), request_data.get("path_params") or {})
        if not destination:
            raise RequestBuildError("the endpoint's path names no queue, subject, stream or topic")
        seconds = attempt_seconds(timeout_ms, deadline, self.config.timeout_ms)
        verb = method.upper()
        message_id = call.request_id if call is not None else uuid.uuid4().hex
        endpoint_name = call.endpoint.name if call is not None else endpoint
        if verb not in (HttpMethod.GET, HttpMethod.POST, HttpMethod.PUT):
            raise RequestBuildError(
                f"method {verb} is neither a publish (POST) nor a receive (GET)"
            )
        max_messages = _max_messages(request_data.get("query_params") or {})
        where: dict[str, object] = {
            "action": "receive" if verb == HttpMethod.GET else "publish",
            "broker": self._kind,
            "destination": destination,
        }
        try:
            async with asyncio.timeout(seconds):
                broker = await self._usable_broker()
            if verb == HttpMethod.GET:
                wait = max(0.05, seconds - RECEIVE_MARGIN_S)
                group = f"{self._group_prefix}-{endpoint_name}"
                async with asyncio.timeout(seconds):
                    messages = await broker.receive(destination, group, max_messages, wait)
                data: Any = [message.as_dict() for message in messages]
            else:
                body = orjson.dumps(request_data.get("body") or {})
                headers = {str(k): str(v) for k, v in (request_data.get("headers") or {}).items()}
                async with asyncio.timeout(seconds):
                    receipt = await broker.publish(destination, body, headers, message_id, seconds)
                data = {"destination": destination, "message_id": message_id, **receipt}
        except UpstreamError as exc:
            record_operation("message", where, exc.message)
            raise
        except Exception as exc:
            error = _classify(exc, self._where)
            record_operation("message", where, error.message)
            if isinstance(error, NetworkError | UpstreamTimeout):
                await self._broker.reset()  # reopened by the next call (a broker restart)
            raise error from None
        record_operation(
            "message",
            {**where, "messages": len(data)} if isinstance(data, list) else where,
        )
        size = len(orjson.dumps(data))
        return IntegrationResponse(success=True, data=data, response_size_bytes=size)

    async def _usable_broker(self) -> Broker:
        broker = await self._broker.get()
        if broker.broken:
            await self._broker.reset()
            broker = await self._broker.get()
        return broker


def _max_messages(query: Mapping[str, Any]) -> int:
    raw = query.get("max_messages", 1)
    try:
        count = int(raw)
    except (TypeError, ValueError):
        raise RequestBuildError("query_params.max_messages must be a whole number") from None
    if not 1 <= count <= MAX_MESSAGES:
        raise RequestBuildError(f"query_params.max_messages must be 1 to {MAX_MESSAGES}")
    return count


# save-time checks and the factory -----------------------------------------------------------


class QueueAdapterFactory:
    """Builds `QueueIntegration`s (integration type `message_queue`)."""

    def validate(self, spec: IntegrationSpec, options: AdapterOptions) -> list[Problem]:
        _, problems = url_problems(spec, _SCHEMES)
        problems += auth_problems(spec, (AuthType.NONE, AuthType.BASIC_AUTH))
        exchange = spec.metadata.get("exchange")
        if exchange is not None and not isinstance(exchange, str):
            problems.append((("metadata", "exchange"), "must be an exchange name"))
        idempotence = spec.metadata.get("kafka_idempotence")
        if idempotence is not None and not isinstance(idempotence, bool):
            problems.append((("metadata", "kafka_idempotence"), "must be true or false"))
        for name, endpoint in spec.endpoints.items():
            where = ("endpoints", name)
            if not endpoint.path.strip("/"):
                problems.append(((*where, "path"), "names the queue, subject, stream or topic"))
            if endpoint.method not in (HttpMethod.GET, HttpMethod.POST, HttpMethod.PUT):
                problems.append(((*where, "method"), "POST publishes, GET receives"))
            for field in ("query", "max_rows", "format"):
                if getattr(endpoint, field) is not None:
                    problems.append(((*where, field), "does not apply to message queues"))
        return problems

    def create(
        self, spec: IntegrationSpec, auth: BaseAuthHandler, context: AdapterContext
    ) -> QueueIntegration:
        return QueueIntegration(
            spec,
            pool_size=context.options.pool_size,
            guard=DestinationGuard(allow_private=context.options.allow_private_networks),
        )
