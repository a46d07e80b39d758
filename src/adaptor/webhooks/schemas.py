"""Inbound webhook shapes on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class WebhookAck(BaseModel):
    """The reply to a verified delivery (a duplicate is acknowledged, not stored again)."""

    received: bool = True
    event_id: str
    duplicate: bool


class WebhookEvent(BaseModel):
    """A stored inbound event."""

    id: str = Field(description="This service's id of the stored event.")
    integration_id: str
    event_id: str = Field(description="The sender's event id (by `webhook.event_id_path`).")
    event_type: str | None = Field(
        description="The sender's event type (`type` in the payload, or its topic header)."
    )
    received_at: datetime
    payload: Any


class WebhookEventPage(BaseModel):
    items: list[WebhookEvent]
    next_cursor: str | None
