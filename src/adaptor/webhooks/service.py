"""Receiving inbound webhooks: verify the raw bytes, then parse, then store the event once.

    receive ─► size ─► integration and its `webhook` ─► signature (raw bytes) ─► parse JSON
            ─► event id, type ─► insert once ─► {"received", "event_id", "duplicate"}

A delivery that fails any step before the insert stores nothing: over the size limit 413,
unknown integration (or one without `webhook`) 404, bad, missing or stale signature 401, a
body that is not a JSON object 422. The event id is read from the payload by
`webhook.event_id_path` (JMESPath, default `id`); when the payload has none, from the sender's
delivery id header (GitHub `X-GitHub-Delivery`, Shopify `X-Shopify-Webhook-Id`, Standard
Webhooks `webhook-id`); failing both, the SHA-256 of the body, so a redelivery of the same
bytes is still a duplicate.

Publishing stored events belongs to the event outbox, not to this module: the
`adaptor.webhook.received` outbox row goes in the session of `receive` that inserted the event,
only when the insert stored it (a duplicate delivery writes none). Its data names the row, the
integration, the sender's event id and type; never the payload.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import jmespath
import orjson
import structlog
from jmespath.exceptions import JMESPathError

from adaptor.errors import AdaptorError, NotFound, PayloadTooLarge, ValidationFailed
from adaptor.events.outbox import WEBHOOK_RECEIVED, OutboxWriter
from adaptor.ids import new_time_ordered_uuid
from adaptor.integrations.service import IntegrationService
from adaptor.pagination import decode_cursor, encode_cursor
from adaptor.storage.database import Database
from adaptor.webhooks.repository import WebhookEventRepository
from adaptor.webhooks.schemas import WebhookAck, WebhookEvent, WebhookEventPage
from adaptor.webhooks.signatures import (
    DELIVERY_ID_HEADERS,
    EVENT_TYPE_HEADERS,
    SignatureInvalid,
    verify_signature,
)

log = structlog.get_logger("adaptor.webhooks")

MAX_ID_CHARS = 255


class SignatureRejected(AdaptorError):
    """401: the delivery is not signed by the integration's webhook secret."""

    status_code = 401
    title = "Unauthorized"


class WebhookService:
    """Inbound deliveries for any integration with a `webhook` configuration."""

    def __init__(
        self,
        database: Database,
        integrations: IntegrationService,
        *,
        max_body_bytes: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.database = database
        self.integrations = integrations
        self.max_body_bytes = max_body_bytes
        self._clock = clock

    async def receive(
        self, integration_id: str, body: bytes, headers: Mapping[str, str]
    ) -> WebhookAck:
        """Verify and store one delivery; see the module docstring for every outcome."""
        if len(body) > self.max_body_bytes:
            raise self.too_large()
        loaded = await self.integrations.load_anywhere(integration_id)
        config = loaded.config if loaded is not None else None
        if config is None or config.webhook is None:
            raise NotFound(f"Integration {integration_id} does not receive webhooks")
        webhook = config.webhook
        lowered = {name.lower(): value for name, value in headers.items()}
        try:
            verify_signature(webhook, body, lowered, now=self._clock())
        except SignatureInvalid as exc:
            log.info(
                "webhooks.rejected",
                integration_id=integration_id,
                scheme=webhook.signature_scheme,
                reason=str(exc),
            )
            raise SignatureRejected(f"The webhook signature was refused: {exc}") from None
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            raise ValidationFailed.of([(("body",), "must be a JSON object")])
        event_id = _event_id(
            webhook.event_id_path, payload, lowered, webhook.signature_scheme, body
        )
        event_type = _event_type(payload, lowered, webhook.signature_scheme)
        row_id = new_time_ordered_uuid()
        async with self.database.session() as session:
            stored = await WebhookEventRepository(session).add_once(
                {
                    "id": row_id,
                    "tenant_id": config.tenant_id,
                    "integration_id": config.integration_id,
                    "event_id": event_id,
                    "event_type": event_type,
                    "payload": payload,
                    "received_at": datetime.now(UTC),
                }
            )
            if stored:
                OutboxWriter.add(
                    session,
                    WEBHOOK_RECEIVED,
                    config.integration_id,
                    config.tenant_id,
                    {
                        "id": row_id,
                        "integration_id": config.integration_id,
                        "event_id": event_id,
                        "event_type": event_type,
                    },
                )
        log.info(
            "webhooks.received",
            integration_id=integration_id,
            event_type=event_type,
            duplicate=not stored,
        )
        return WebhookAck(event_id=event_id, duplicate=not stored)

    def too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"The webhook body exceeds the limit of {self.max_body_bytes} bytes")

    async def page(
        self, tenant_id: str, integration_id: str, *, cursor: str | None, limit: int
    ) -> WebhookEventPage:
        """The integration's stored events, newest first (NotFound for another tenant's)."""
        await self.integrations.get(tenant_id, integration_id)
        async with self.database.session() as session:
            rows = await WebhookEventRepository(session).newest_first(
                tenant_id, integration_id, before=decode_cursor(cursor), limit=limit + 1
            )
        more = len(rows) > limit
        rows = rows[:limit]
        return WebhookEventPage(
            items=[WebhookEvent.model_validate(row, from_attributes=True) for row in rows],
            next_cursor=encode_cursor(rows[-1].received_at, rows[-1].id) if more else None,
        )


def _event_id(
    path: str, payload: dict[str, Any], headers: Mapping[str, str], scheme: str, body: bytes
) -> str:
    found: Any = None
    try:
        found = jmespath.search(path, payload)
    except JMESPathError:
        found = None
    if isinstance(found, bool) or not isinstance(found, str | int) or found == "":
        header = DELIVERY_ID_HEADERS.get(scheme)
        found = headers.get(header) if header else None
    if not found:
        return "sha256:" + hashlib.sha256(body).hexdigest()
    text = str(found)
    if len(text) > MAX_ID_CHARS:
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return text


def _event_type(payload: dict[str, Any], headers: Mapping[str, str], scheme: str) -> str | None:
    header = EVENT_TYPE_HEADERS.get(scheme)
    value = headers.get(header) if header else None
    if value is None and isinstance(payload.get("type"), str):
        value = payload["type"]
    return value[:MAX_ID_CHARS] if value else None
