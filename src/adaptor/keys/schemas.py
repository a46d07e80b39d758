"""API key shapes on the wire."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$"

Role = Literal["admin", "tenant"]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: resolved from the Authorization header on every request."""

    key_id: str
    role: Role
    tenant_id: str | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(pattern=TENANT_PATTERN, description="Tenant the key acts for.")
    name: str = Field(default="default", min_length=1, max_length=255)
    expires_at: AwareDatetime | None = Field(
        default=None, description="When the key stops working (RFC 3339); never when omitted."
    )

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= datetime.now(UTC):
            raise ValueError("must be in the future")
        return value


class ApiKeyCreated(BaseModel):
    key_id: str
    api_key: str = Field(description="The plain key. Shown only in this response.")
    tenant_id: str | None
    name: str
    role: Role
    created_at: datetime
    expires_at: datetime | None = None


class ApiKeyInfo(BaseModel):
    key_id: str
    tenant_id: str | None
    name: str
    role: Role
    key_prefix: str = Field(
        description="First characters of the key, to recognise it (at most a third of it)."
    )
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None = Field(default=None, description="Null: never expires.")


class ApiKeyPage(BaseModel):
    items: list[ApiKeyInfo]
    next_cursor: str | None
