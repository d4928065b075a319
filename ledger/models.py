"""SQLModel tables that mirror the Voisin contract's events (written by :mod:`ledger.indexer`).

Every event lands in ``chain_event`` (the raw mirror, keyed by block and log index), and the
ones the API and the audit query most get a typed projection. Energy is in Wh, money in
micro-euro and prices in micro-euro per kWh, all integers in BigInteger columns (the
indexer refuses values beyond 2^63 - 1 rather than store them wrongly).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, UniqueConstraint
from sqlmodel import Field, SQLModel


class IndexerCursor(SQLModel, table=True):
    """How far the indexer got on one contract: the last block fully mirrored."""

    __tablename__ = "indexer_cursor"

    contract: str = Field(primary_key=True)
    chain_id: int = Field(sa_type=BigInteger)
    last_block: int = Field(sa_type=BigInteger)


class ChainEvent(SQLModel, table=True):
    """One contract event, as emitted. ``args_json`` holds the decoded arguments."""

    __tablename__ = "chain_event"
    __table_args__ = (UniqueConstraint("contract", "block_number", "log_index"),)

    id: int | None = Field(default=None, primary_key=True)
    contract: str = Field(index=True)
    block_number: int = Field(sa_type=BigInteger, index=True)
    log_index: int
    tx_hash: str
    name: str = Field(index=True)
    args_json: str


class HouseholdRecord(SQLModel, table=True):
    """A household as registered on chain, with its current meter and state."""

    __tablename__ = "household"

    id: int = Field(primary_key=True)
    account: str = Field(index=True)
    meter: str = Field(index=True)
    prosumer: bool
    active: bool = True


class ReadingRecord(SQLModel, table=True):
    """A committed reading: the registers and the deltas recorded for the slot."""

    __tablename__ = "reading"
    __table_args__ = (UniqueConstraint("meter", "slot"),)

    id: int | None = Field(default=None, primary_key=True)
    household: int = Field(index=True)
    meter: str
    slot: int = Field(sa_type=BigInteger, index=True)
    import_Wh: int = Field(sa_type=BigInteger)
    export_Wh: int = Field(sa_type=BigInteger)
    import_delta_Wh: int = Field(sa_type=BigInteger)
    export_delta_Wh: int = Field(sa_type=BigInteger)
    block_number: int = Field(sa_type=BigInteger)
    tx_hash: str


class OrderRecord(SQLModel, table=True):
    """An offer (``side='offer'``) or a bid (``side='bid'``) and whether it is still open."""

    __tablename__ = "order"
    __table_args__ = (UniqueConstraint("side", "order_id"),)

    id: int | None = Field(default=None, primary_key=True)
    side: str = Field(index=True)
    order_id: int
    household: int = Field(index=True)
    price_limit_ueur_per_kWh: int = Field(sa_type=BigInteger)
    max_Wh_per_slot: int = Field(sa_type=BigInteger)
    first_slot: int = Field(sa_type=BigInteger)
    last_slot: int = Field(sa_type=BigInteger)
    open: bool = True


class FillRecord(SQLModel, table=True):
    """A settled fill (a batch fill, or a direct take when ``bid_id`` is 0)."""

    __tablename__ = "fill"
    __table_args__ = (UniqueConstraint("block_number", "log_index"),)

    id: int | None = Field(default=None, primary_key=True)
    slot: int = Field(sa_type=BigInteger, index=True)
    seller: int = Field(index=True)
    buyer: int = Field(index=True)
    offer_id: int
    bid_id: int
    energy_Wh: int = Field(sa_type=BigInteger)
    price_ueur_per_kWh: int = Field(sa_type=BigInteger)
    cost_ueur: int = Field(sa_type=BigInteger)
    fee_ueur: int = Field(sa_type=BigInteger)
    block_number: int = Field(sa_type=BigInteger)
    log_index: int
    tx_hash: str


class TopUpRecord(SQLModel, table=True):
    """Payment token minted for a top-up."""

    __tablename__ = "topup"
    __table_args__ = (UniqueConstraint("block_number", "log_index"),)

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(index=True)
    amount_ueur: int = Field(sa_type=BigInteger)
    block_number: int = Field(sa_type=BigInteger)
    log_index: int
    tx_hash: str
