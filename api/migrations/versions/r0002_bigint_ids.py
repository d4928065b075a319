"""Row ids and the chain's ids become BIGINT.

Households, orders and settlement batches are numbered by the contract as uint32, up to
4,294,967,295, and a signed 32-bit INTEGER stops at 2,147,483,647; the tables' own row ids
(every event mirrored, every reading taken in) would stop there too. On PostgreSQL each such
column becomes BIGINT, and so does the sequence that numbers a table's rows. SQLite stores
every INTEGER in up to 64 bits already: nothing changes there.

Revision r0002, after r0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0002"
down_revision = "r0001"
branch_labels = None
depends_on = None

#: (table, column) of every column that holds a row id or a chain id.
ID_COLUMNS = (
    ("api_household", "id"),
    ("api_intent", "id"),
    ("api_intent", "household"),
    ("api_order", "id"),
    ("api_order", "household"),
    ("api_order", "chain_id"),
    ("api_order_post", "order_id"),
    ("chain_event", "id"),
    ("fill", "id"),
    ("fill", "seller"),
    ("fill", "buyer"),
    ("fill", "offer_id"),
    ("fill", "bid_id"),
    ("household", "id"),
    ("intake_reading", "id"),
    ("intake_reading", "household"),
    ("kept_audit", "id"),
    ("order", "id"),
    ("order", "order_id"),
    ("order", "household"),
    ("reading", "id"),
    ("reading", "household"),
    ("settlement_batch", "id"),
    ("settlement_batch", "batch"),
    ("signed_reading", "id"),
    ("slot_digest", "seq"),
    ("tariff", "id"),
    ("topup", "id"),
)


def _retype(to: sa.types.TypeEngine[int], sequence_type: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        return
    for table, column in ID_COLUMNS:
        op.alter_column(table, column, type_=to)
        if bind.dialect.name == "postgresql":
            sequence = bind.execute(
                sa.text("SELECT pg_get_serial_sequence(:table, :column)"),
                {"table": f'"{table}"', "column": column},
            ).scalar()
            if sequence is not None:
                op.execute(f"ALTER SEQUENCE {sequence} AS {sequence_type}")


def upgrade() -> None:
    _retype(sa.BigInteger(), "bigint")


def downgrade() -> None:
    _retype(sa.Integer(), "integer")
