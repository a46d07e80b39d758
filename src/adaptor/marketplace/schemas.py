"""Request and response bodies of the marketplace routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from adaptor.domain.integration import StrictModel
from adaptor.domain.marketplace import MarketplaceItemSummary


class CatalogPage(BaseModel):
    items: list[MarketplaceItemSummary]
    total: int


class CategoryCount(BaseModel):
    category: str
    count: int


class WizardFieldView(BaseModel):
    name: str
    label: str
    type: str
    secret: bool
    required: bool
    default: Any = None
    help_text: str | None = None


class WizardStepView(BaseModel):
    title: str
    fields: list[WizardFieldView]


class Wizard(BaseModel):
    steps: list[WizardStepView]


class InstallRequest(StrictModel):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    config_overrides: dict[str, Any] = Field(
        default_factory=dict, description="Wizard config fields by name (and a few overrides)."
    )
    credentials: dict[str, Any] = Field(
        default_factory=dict, description="Wizard credential fields by name."
    )
    test_mode: bool = Field(
        default=False,
        description="Install against the sandbox with the template's test credentials "
        "(only while ENABLE_TEST_MODE is on).",
    )


class RatingRequest(StrictModel):
    rating: int = Field(ge=1, le=5)


class RatingResult(BaseModel):
    item_id: str
    rating: int
    average: float
    count: int


class Install(BaseModel):
    install_id: str
    item_id: str
    version: int
    integration_id: str
    test_mode: bool
    created_at: datetime
    latest_version: int | None = None


class InstallPage(BaseModel):
    items: list[Install]
    next_cursor: str | None = None


class Window(BaseModel):
    executions: int
    success_rate: float | None


class Analytics(BaseModel):
    item_id: str
    installs: int
    active_installs: int
    last_7_days: Window
    last_30_days: Window
    p50_latency_ms: int | None
    popularity: int
