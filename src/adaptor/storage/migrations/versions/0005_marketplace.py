"""Marketplace: published template versions, installs, ratings.

Revision ID: 0005
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON().with_variant(JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "marketplace_items",
        sa.Column("item_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("document", JSON_DOC, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "marketplace_installs",
        sa.Column("install_id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(255), nullable=False),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("integration_id", sa.String(36), nullable=False, unique=True),
        sa.Column("test_mode", sa.Boolean, nullable=False),
        sa.Column("config", JSON_DOC, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index(
        "ix_marketplace_installs_item", "marketplace_installs", ["item_id", "created_at"]
    )
    op.create_index(
        "ix_marketplace_installs_tenant",
        "marketplace_installs",
        ["tenant_id", "created_at", "install_id"],
    )
    op.create_table(
        "marketplace_ratings",
        sa.Column("item_id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(255), primary_key=True),
        sa.Column("rating", sa.Integer, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("marketplace_ratings")
    op.drop_index("ix_marketplace_installs_tenant", table_name="marketplace_installs")
    op.drop_index("ix_marketplace_installs_item", table_name="marketplace_installs")
    op.drop_table("marketplace_installs")
    op.drop_table("marketplace_items")
