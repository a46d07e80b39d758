"""Inbound webhook routes: the delivery (no API key, verified by signature) and the list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from adaptor.dependencies import ServicesDep, TenantId
from adaptor.pagination import CURSOR_DESCRIPTION, CURSOR_PATTERN, DEFAULT_LIMIT, MAX_LIMIT
from adaptor.webhooks.schemas import WebhookAck, WebhookEventPage

router = APIRouter(tags=["webhooks"])

_DELIVERY_BODY = {
    "requestBody": {
        "required": True,
        "description": "The sender's event, exactly as signed (a JSON object).",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


@router.post(
    "/api/v2/webhooks/{integration_id}",
    responses={
        401: {"description": "Missing, bad or stale signature; nothing is stored."},
        404: {"description": "No such integration, or it has no `webhook` configuration."},
        413: {"description": "The body is over the webhook size limit; nothing is stored."},
    },
    openapi_extra=_DELIVERY_BODY,
)
async def receive_webhook(
    integration_id: str, request: Request, services: ServicesDep
) -> WebhookAck:
    """Receive a webhook delivery (no API key: verified by the integration's signature scheme)."""
    webhooks = services.webhooks
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > webhooks.max_body_bytes:
        raise webhooks.too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > webhooks.max_body_bytes:
            raise webhooks.too_large()
        chunks.append(chunk)
    return await webhooks.receive(integration_id, b"".join(chunks), request.headers)


@router.get("/api/v2/integrations/{integration_id}/webhook-events")
async def list_webhook_events(
    integration_id: str,
    tenant_id: TenantId,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(pattern=CURSOR_PATTERN, description=CURSOR_DESCRIPTION)
    ] = None,
) -> WebhookEventPage:
    """The integration's stored inbound webhook events, newest first."""
    return await services.webhooks.page(tenant_id, integration_id, cursor=cursor, limit=limit)
