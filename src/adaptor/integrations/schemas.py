"""Integration shapes on the wire (the configuration types live in adaptor.domain)."""

from __future__ import annotations

from pydantic import BaseModel

from adaptor.domain import IntegrationConfig


class IntegrationPage(BaseModel):
    items: list[IntegrationConfig]
    next_cursor: str | None
