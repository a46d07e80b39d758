"""SQLAlchemy tables: one schema for PostgreSQL and the embedded SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JSONDocument = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class ApiKeyRow(Base):
    """A caller's API key; only its SHA-256 digest is stored."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class IntegrationRow(Base):
    """An integration: its configuration with secrets removed, and the secrets encrypted."""

    __tablename__ = "integrations"
    __table_args__ = (
        Index("ix_integrations_tenant_order", "tenant_id", "created_at", "integration_id"),
    )

    integration_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean)
    version: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    secrets: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ExecutionLogRow(Base):
    """One execution of one endpoint (no payloads, only sizes and outcome)."""

    __tablename__ = "execution_logs"
    __table_args__ = (
        Index("ix_execution_logs_integration_time", "tenant_id", "integration_id", "timestamp"),
    )

    log_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(255))
    integration_id: Mapped[str] = mapped_column(String(36))
    endpoint_name: Mapped[str] = mapped_column(String(255))
    request_id: Mapped[str] = mapped_column(String(64))
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_ms: Mapped[int] = mapped_column(Integer)
    success: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    request_size_bytes: Mapped[int] = mapped_column(Integer)
    response_size_bytes: Mapped[int] = mapped_column(Integer)
    retry_count: Mapped[int] = mapped_column(Integer)
    cached: Mapped[bool] = mapped_column(Boolean)


class WebhookEventRow(Base):
    """An inbound webhook event, verified and stored once per (integration, event id)."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("integration_id", "event_id", name="uq_webhook_events_event"),
        Index("ix_webhook_events_list", "tenant_id", "integration_id", "received_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(255))
    integration_id: Mapped[str] = mapped_column(String(36))
    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str | None] = mapped_column(String(255))
    payload: Mapped[Any] = mapped_column(JSONDocument)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OAuthTokenRow(Base):
    """An integration's OAuth2 tokens: expiry, scopes and tokens encrypted in `tokens`;
    `version` is the compare-and-set counter every save checks."""

    __tablename__ = "oauth_tokens"

    integration_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32))
    tokens: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OutboxRow(Base):
    """An event written in the same transaction as the change it tells of (see
    `adaptor.events.outbox`); executions need none: their log rows are their outbox."""

    __tablename__ = "event_outbox"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(128))
    subject: Mapped[str] = mapped_column(String(255))
    tenant_id: Mapped[str | None] = mapped_column(String(255))
    partition_key: Mapped[str] = mapped_column(String(255))
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    data: Mapped[dict[str, Any]] = mapped_column(JSONDocument)


class RelayPositionRow(Base):
    """How far the event relay has published each of its sources (a row id in it)."""

    __tablename__ = "event_relay_positions"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[str] = mapped_column(String(36))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MarketplaceItemRow(Base):
    """One published version of a marketplace template (built-in templates live in files)."""

    __tablename__ = "marketplace_items"

    item_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MarketplaceInstallRow(Base):
    """An integration a tenant installed from a template, with the version it installed."""

    __tablename__ = "marketplace_installs"
    __table_args__ = (
        Index("ix_marketplace_installs_item", "item_id", "created_at"),
        Index("ix_marketplace_installs_tenant", "tenant_id", "created_at", "install_id"),
    )

    install_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(255))
    item_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    integration_id: Mapped[str] = mapped_column(String(36), unique=True)
    test_mode: Mapped[bool] = mapped_column(Boolean)
    config: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    """The wizard's non-secret answers, to rebuild the integration on an upgrade."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MarketplaceRatingRow(Base):
    """A tenant's rating of an item: one per tenant per item, a new one replaces it."""

    __tablename__ = "marketplace_ratings"

    item_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    rating: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
