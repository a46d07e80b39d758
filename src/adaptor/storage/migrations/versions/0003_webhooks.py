"""Inbound webhook events, stored once per integration and event id.

Revision ID: 0003
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON().with_variant(JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(255), nullable=False),
        sa.Column("integration_id", sa.String(36), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("event_type", sa.String(255), nullable=True),
        sa.Column("payload", JSON_DOC, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.UniqueConstraint("integration_id", "event_id", name="uq_webhook_events_event"),
    )
    op.create_index(
        "ix_webhook_events_list",
        "webhook_events",
        ["tenant_id", "integration_id", "received_at", "id"],
    )


def downgrade() -> None:
    op.drop_table("webhook_events")
