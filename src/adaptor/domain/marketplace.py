"""Marketplace types: a connector is a `MarketplaceItem` whose `IntegrationTemplate` is data.

A template holds what an installed integration will be (`base_config`, `endpoints`), the wizard
that asks a tenant for what it cannot know (credentials, a shop domain, an API version), and the
material that helps a person set it up (instructions, samples, test credentials, a sandbox).
Installing fills the wizard's values into the template and saves an ordinary integration.

Wizard values reach the configuration in two ways: a `credentials` field becomes
`auth_config.credentials.<name>`; a `config` field is written as `{{name}}` in any string of
`base_config` or in an endpoint `path`, and is substituted there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from adaptor.domain.integration import (
    EndpointConfig,
    IntegrationType,
    StrictModel,
    ValidationRule,
)

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
FIELD_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
CATEGORIES = (
    "crm",
    "ecommerce",
    "payments",
    "support",
    "productivity",
    "communication",
    "developer_tools",
    "marketing",
)


class WizardField(StrictModel):
    """One value the wizard asks for."""

    name: str = Field(pattern=FIELD_PATTERN)
    label: str = Field(min_length=1, max_length=255)
    type: Literal["string", "integer", "number", "boolean"] = "string"
    secret: bool = False
    required: bool = True
    default: Any = None
    help_text: str | None = None
    target: Literal["credentials", "config"] = Field(
        default="config",
        description="`credentials`: goes to `auth_config.credentials.<name>`; `config`: "
        "substituted for `{{name}}` in the template.",
    )


class WizardStep(StrictModel):
    title: str = Field(min_length=1, max_length=255)
    fields: list[WizardField] = Field(default_factory=list)


class EndpointTemplate(EndpointConfig):
    """An endpoint of a template: an `EndpointConfig` plus what documents it."""

    name: str = Field(min_length=1, max_length=255)
    description: str = Field(min_length=1)
    required_params: list[str] = Field(default_factory=list)
    optional_params: list[str] = Field(default_factory=list)
    sample_request: dict[str, Any] | None = None
    sample_response: Any | None = None

    def endpoint_config(self) -> dict[str, Any]:
        """The endpoint as an integration stores it (the documentation fields left out)."""
        return self.model_dump(
            mode="json",
            exclude={"required_params", "optional_params", "sample_request", "sample_response"},
            exclude_none=True,
        )


class IntegrationTemplate(StrictModel):
    base_config: dict[str, Any] = Field(
        description="An integration's fields (name, type, base_url, auth_config, headers, "
        "rate_limit, test_endpoint...) without `endpoints`."
    )
    endpoints: list[EndpointTemplate] = Field(min_length=1)
    setup_instructions: list[str] = Field(default_factory=list)
    wizard: list[WizardStep] = Field(default_factory=list)
    validation_rules: list[ValidationRule] = Field(default_factory=list)
    test_credentials: dict[str, Any] | None = None
    sandbox_base_url: str | None = None
    sample_requests: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("base_config")
    @classmethod
    def _no_endpoints(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "endpoints" in value:
            raise ValueError("endpoints belong in template.endpoints, not in base_config")
        return value

    def fields(self) -> list[WizardField]:
        return [field for step in self.wizard for field in step.fields]


class MarketplaceItemSpec(StrictModel):
    """What a connector author writes (a template file) or an admin publishes."""

    item_id: str = Field(pattern=SLUG_PATTERN, description="A slug such as `stripe`.")
    name: str = Field(min_length=1, max_length=255)
    description: str = Field(min_length=1, max_length=4000)
    category: str = Field(min_length=1, max_length=64)
    type: IntegrationType
    provider: str = Field(min_length=1, max_length=255)
    logo_url: str | None = None
    documentation_url: str | None = None
    pricing: Literal["Free", "Paid", "Freemium"] | None = None
    tags: list[str] = Field(default_factory=list)
    requirements: list[str] = Field(default_factory=list)
    template: IntegrationTemplate

    @model_validator(mode="after")
    def _category_matches(self) -> MarketplaceItemSpec:
        configured = self.template.base_config.get("category")
        if configured is not None and configured != self.category:
            raise ValueError(
                f"template.base_config.category {configured!r} differs from category "
                f"{self.category!r}"
            )
        return self


class MarketplaceItem(MarketplaceItemSpec):
    """A catalogue entry as read: the specification's `MarketplaceItem`."""

    version: int = 1
    popularity: int = 0
    rating: float | None = Field(default=None, ge=0, le=5)
    rating_count: int = 0
    source: Literal["builtin", "published"] = "builtin"
    created_at: datetime | None = None
    updated_at: datetime | None = None


class MarketplaceItemSummary(StrictModel):
    """A catalogue list entry: the item without its template."""

    item_id: str
    name: str
    description: str
    category: str
    type: IntegrationType
    provider: str
    logo_url: str | None = None
    documentation_url: str | None = None
    pricing: str | None = None
    tags: list[str] = Field(default_factory=list)
    version: int
    popularity: int
    rating: float | None = None
    rating_count: int = 0
    endpoints: int
    test_mode_available: bool
