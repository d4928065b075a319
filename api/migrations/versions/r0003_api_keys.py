"""The public API's keys, their scopes and households' consents.

``api_key``: one row per key the operator issued (its SHA-256, never the key), with its
scopes, browser origins, rate limit and revocation time. ``api_consent``: one row per grant
of ``household:read`` by a household to a key, closed by its withdrawal, so that the history
stays. Written out here, not taken from the live models: later revisions may change those.

Revision r0003, after r0002.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0003"
down_revision = "r0002"
branch_labels = None
depends_on = None

#: The tables this revision creates: a database that has them all, without a recorded
#: revision, was made at this revision or later (api.schema).
CREATES = ("api_key", "api_consent")

#: Row ids: BIGINT, except on SQLite, whose INTEGER PRIMARY KEY is the 64-bit rowid.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", _ID, nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("prefix", sa.String(), nullable=False),
        sa.Column("secret_hash", sa.String(), nullable=False),
        sa.Column("scopes", sa.String(), nullable=False),
        sa.Column("origins", sa.Text(), nullable=False),
        sa.Column("rate_per_s", sa.Integer(), nullable=True),
        sa.Column("burst", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("secret_hash"),
    )
    op.create_table(
        "api_consent",
        sa.Column("id", _ID, nullable=False),
        sa.Column("key_id", _ID, nullable=False),
        sa.Column("household", _ID, nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_api_consent_key_id", "api_consent", ["key_id"], unique=False)
    op.create_index("ix_api_consent_household", "api_consent", ["household"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_api_consent_household", table_name="api_consent")
    op.drop_index("ix_api_consent_key_id", table_name="api_consent")
    op.drop_table("api_consent")
    op.drop_table("api_key")
