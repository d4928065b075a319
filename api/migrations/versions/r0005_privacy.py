"""What a household's erasure and the retention of signed readings keep.

- ``household_erasure``: one row per erased household (when, asked by whom, the
  ``deactivateHousehold`` transaction, the balance refunded through the operator);
- ``signed_reading_purge``: one row per purge of signed readings past their retention (the
  slot before which they are gone, how many).

Both are new tables: no existing table changes. Revision r0005, after r0004.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0005"
down_revision = "r0004"
branch_labels = None
depends_on = None

#: The tables this revision creates: a database that has them all, without a recorded
#: revision, was made at this revision or later (api.schema).
CREATES = ("household_erasure", "signed_reading_purge")

#: Ids as the models hold them: BIGINT, INTEGER on SQLite (the row id there).
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "household_erasure",
        sa.Column("household", _ID, autoincrement=False, nullable=False),
        sa.Column("requested_by", sa.String(), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deactivated_tx", sa.String(), nullable=True),
        sa.Column("refund_ueur", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("household"),
    )
    op.create_table(
        "signed_reading_purge",
        sa.Column("id", _ID, nullable=False),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("before_slot", sa.BigInteger(), nullable=False),
        sa.Column("signed_readings", sa.BigInteger(), nullable=False),
        sa.Column("intake_readings", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("signed_reading_purge")
    op.drop_table("household_erasure")
