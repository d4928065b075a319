"""Day-ahead forward positions in the mirror.

- ``forward_position``: one row per position cleared ahead of its slot (``ForwardCleared``),
  completed when it is settled against the slot's metered energy (``ForwardSettled``).

A new table: no existing table changes. Revision r0006, after r0005.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0006"
down_revision = "r0005"
branch_labels = None
depends_on = None

#: The tables this revision creates: a database that has them all, without a recorded
#: revision, was made at this revision or later (api.schema).
CREATES = ("forward_position",)

#: Ids as the models hold them: BIGINT, INTEGER on SQLite (the row id there).
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "forward_position",
        sa.Column("forward_id", _ID, autoincrement=False, nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.Column("seller", _ID, nullable=False),
        sa.Column("buyer", _ID, nullable=False),
        sa.Column("energy_Wh", sa.BigInteger(), nullable=False),
        sa.Column("price_ueur_per_kWh", sa.BigInteger(), nullable=False),
        sa.Column("reserved_ueur", sa.BigInteger(), nullable=False),
        sa.Column("cleared_block", sa.BigInteger(), nullable=False),
        sa.Column("cleared_tx", sa.String(), nullable=False),
        sa.Column("delivered_Wh", sa.BigInteger(), nullable=True),
        sa.Column("shortfall_Wh", sa.BigInteger(), nullable=True),
        sa.Column("cost_ueur", sa.BigInteger(), nullable=True),
        sa.Column("fee_ueur", sa.BigInteger(), nullable=True),
        sa.Column("refund_ueur", sa.BigInteger(), nullable=True),
        sa.Column("settled_block", sa.BigInteger(), nullable=True),
        sa.Column("settled_tx", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("forward_id"),
    )
    op.create_index("ix_forward_position_slot", "forward_position", ["slot"])
    op.create_index("ix_forward_position_seller", "forward_position", ["seller"])
    op.create_index("ix_forward_position_buyer", "forward_position", ["buyer"])
    op.create_index("ix_forward_position_settled_block", "forward_position", ["settled_block"])


def downgrade() -> None:
    op.drop_index("ix_forward_position_settled_block", table_name="forward_position")
    op.drop_index("ix_forward_position_buyer", table_name="forward_position")
    op.drop_index("ix_forward_position_seller", table_name="forward_position")
    op.drop_index("ix_forward_position_slot", table_name="forward_position")
    op.drop_table("forward_position")
