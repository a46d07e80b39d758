"""Events: the outbox for configuration changes and the relay's positions.

Revision ID: 0006
Revises: 0001

Execution events come from `execution_logs` itself; its relay position starts now, so an
existing installation does not publish its history.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from adaptor.ids import time_ordered_floor

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON().with_variant(JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "event_outbox",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("tenant_id", sa.String(255), nullable=True),
        sa.Column("partition_key", sa.String(255), nullable=False),
        sa.Column("time", TS, nullable=False),
        sa.Column("data", JSON_DOC, nullable=False),
    )
    positions = op.create_table(
        "event_relay_positions",
        sa.Column("source", sa.String(32), primary_key=True),
        sa.Column("position", sa.String(36), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    now = datetime.now(UTC)
    start = time_ordered_floor(now.timestamp())
    if op.get_bind().dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # stored as naive UTC there, as the tables' type does
    op.bulk_insert(
        positions,
        [
            {"source": "executions", "position": start, "updated_at": now},
            {"source": "outbox", "position": "", "updated_at": now},
        ],
    )


def downgrade() -> None:
    op.drop_table("event_relay_positions")
    op.drop_table("event_outbox")
