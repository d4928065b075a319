"""Webhook subscriptions of the operator's systems and their deliveries.

``webhook_subscription``: one row per receiver the operator subscribed (its URL, event types
and signing secret, encrypted), kept inactive once deleted. ``webhook_delivery``: one row per
event per subscription, recorded with its body before any attempt, with where its attempts
stand. ``webhook_cursor``: how far the worker read the mirror's events and the keeper's audit
runs. Written out here, not taken from the live models: later revisions may change those.

Revision r0004, after r0003.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0004"
down_revision = "r0003"
branch_labels = None
depends_on = None

#: The tables this revision creates: a database that has them all, without a recorded
#: revision, was made at this revision or later (api.schema).
CREATES = ("webhook_subscription", "webhook_delivery", "webhook_cursor")

#: Row ids: BIGINT, except on SQLite, whose INTEGER PRIMARY KEY is the 64-bit rowid.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "webhook_subscription",
        sa.Column("id", _ID, nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("event_types", sa.String(), nullable=False),
        sa.Column("description", sa.String(), nullable=True),
        sa.Column("secret_json", sa.Text(), nullable=False),
        sa.Column("after_event_id", sa.BigInteger(), nullable=False),
        sa.Column("after_audit_id", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_webhook_subscription_active", "webhook_subscription", ["active"], unique=False
    )
    op.create_table(
        "webhook_delivery",
        sa.Column("id", _ID, nullable=False),
        sa.Column("uid", sa.String(), nullable=False),
        sa.Column("subscription_id", _ID, nullable=False),
        sa.Column("event_key", sa.String(), nullable=False),
        sa.Column("event_type", sa.String(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_ms", sa.BigInteger(), nullable=False),
        sa.Column("lease_until_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscription_id", "event_key"),
        sa.UniqueConstraint("uid"),
    )
    op.create_index(
        "ix_webhook_delivery_subscription_id", "webhook_delivery", ["subscription_id"], unique=False
    )
    op.create_index(
        "ix_webhook_delivery_event_type", "webhook_delivery", ["event_type"], unique=False
    )
    op.create_index("ix_webhook_delivery_status", "webhook_delivery", ["status"], unique=False)
    op.create_table(
        "webhook_cursor",
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("source"),
    )


def downgrade() -> None:
    op.drop_table("webhook_cursor")
    op.drop_index("ix_webhook_delivery_status", table_name="webhook_delivery")
    op.drop_index("ix_webhook_delivery_event_type", table_name="webhook_delivery")
    op.drop_index("ix_webhook_delivery_subscription_id", table_name="webhook_delivery")
    op.drop_table("webhook_delivery")
    op.drop_index("ix_webhook_subscription_active", table_name="webhook_subscription")
    op.drop_table("webhook_subscription")
