"""SQLModel tables that mirror the Voisin contract's events (written by
:mod:`ledger.mirror.indexer`).

Every event lands in ``chain_event`` (the raw mirror, keyed by block and log index), and the
ones the API and the audit query most get a typed projection. Energy is in Wh, money in
micro-euro and prices in micro-euro per kWh, all integers in BigInteger columns (the
indexer refuses values beyond 2^63 - 1 rather than store them wrongly).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, Integer, UniqueConstraint
from sqlalchemy import select as sa_select
from sqlmodel import Field, Session, SQLModel, col

#: Row ids, and the chain's ids (households, orders and batches are uint32 on chain, beyond a
#: signed 32-bit INTEGER): BIGINT, except on SQLite, whose INTEGER already holds 64 bits and,
#: as a primary key, is the row id that numbers new rows.
IdInteger = BigInteger().with_variant(Integer(), "sqlite")


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

    id: int | None = Field(default=None, primary_key=True, sa_type=IdInteger)
    contract: str = Field(index=True)
    block_number: int = Field(sa_type=BigInteger, index=True)
    log_index: int
    tx_hash: str
    name: str = Field(index=True)
    args_json: str


class HouseholdRecord(SQLModel, table=True):
    """A household as registered on chain, with its current meter and state."""

    __tablename__ = "household"

    id: int = Field(primary_key=True, sa_type=IdInteger)
    account: str = Field(index=True)
    meter: str = Field(index=True)
    prosumer: bool
    active: bool = True


class ReadingRecord(SQLModel, table=True):
    """A committed reading: the registers and the deltas recorded for the slot."""

    __tablename__ = "reading"
    __table_args__ = (UniqueConstraint("meter", "slot"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=IdInteger)
    household: int = Field(index=True, sa_type=IdInteger)
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

    id: int | None = Field(default=None, primary_key=True, sa_type=IdInteger)
    side: str = Field(index=True)
    order_id: int = Field(sa_type=IdInteger)
    household: int = Field(index=True, sa_type=IdInteger)
    price_limit_ueur_per_kWh: int = Field(sa_type=BigInteger)
    max_Wh_per_slot: int = Field(sa_type=BigInteger)
    first_slot: int = Field(sa_type=BigInteger)
    last_slot: int = Field(sa_type=BigInteger)
    open: bool = True


class FillRecord(SQLModel, table=True):
    """A settled fill (a batch fill, or a direct take when ``bid_id`` is 0)."""

    __tablename__ = "fill"
    __table_args__ = (UniqueConstraint("block_number", "log_index"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=IdInteger)
    slot: int = Field(sa_type=BigInteger, index=True)
    seller: int = Field(index=True, sa_type=IdInteger)
    buyer: int = Field(index=True, sa_type=IdInteger)
    offer_id: int = Field(sa_type=IdInteger)
    bid_id: int = Field(sa_type=IdInteger)
    energy_Wh: int = Field(sa_type=BigInteger)
    price_ueur_per_kWh: int = Field(sa_type=BigInteger)
    cost_ueur: int = Field(sa_type=BigInteger)
    fee_ueur: int = Field(sa_type=BigInteger)
    block_number: int = Field(sa_type=BigInteger)
    log_index: int
    tx_hash: str


class ForwardRecord(SQLModel, table=True):
    """A day-ahead forward position: cleared (``ForwardCleared``: the buyer's reservation held
    in the contract's escrow), then settled against the slot's metered energy
    (``ForwardSettled``; the settled columns are ``None`` until then). Its delivered part is
    also a row of ``fill`` (offer and bid id 0), as on chain."""

    __tablename__ = "forward_position"

    forward_id: int = Field(
        primary_key=True, sa_type=IdInteger, sa_column_kwargs={"autoincrement": False}
    )
    slot: int = Field(sa_type=BigInteger, index=True)
    seller: int = Field(index=True, sa_type=IdInteger)
    buyer: int = Field(index=True, sa_type=IdInteger)
    energy_Wh: int = Field(sa_type=BigInteger)
    price_ueur_per_kWh: int = Field(sa_type=BigInteger)
    reserved_ueur: int = Field(sa_type=BigInteger)
    cleared_block: int = Field(sa_type=BigInteger)
    cleared_tx: str
    delivered_Wh: int | None = Field(default=None, sa_type=BigInteger)
    shortfall_Wh: int | None = Field(default=None, sa_type=BigInteger)
    cost_ueur: int | None = Field(default=None, sa_type=BigInteger)
    fee_ueur: int | None = Field(default=None, sa_type=BigInteger)
    refund_ueur: int | None = Field(default=None, sa_type=BigInteger)
    # Indexed: the settlement worker looks up the open positions (settled_block IS NULL) every
    # slot, which without it read the whole history of positions.
    settled_block: int | None = Field(default=None, sa_type=BigInteger, index=True)
    settled_tx: str | None = None


class TopUpRecord(SQLModel, table=True):
    """Payment token minted for a top-up."""

    __tablename__ = "topup"
    __table_args__ = (UniqueConstraint("block_number", "log_index"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=IdInteger)
    account: str = Field(index=True)
    amount_ueur: int = Field(sa_type=BigInteger)
    block_number: int = Field(sa_type=BigInteger)
    log_index: int
    tx_hash: str


class TariffRecord(SQLModel, table=True):
    """Tariffs as set on chain (at deployment, then by ``setTariffs``), in force from the block."""

    __tablename__ = "tariff"
    __table_args__ = (UniqueConstraint("block_number", "log_index"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=IdInteger)
    feed_in_ueur_per_kWh: int = Field(sa_type=BigInteger)
    retail_ueur_per_kWh: int = Field(sa_type=BigInteger)
    grid_fee_ueur_per_kWh: int = Field(sa_type=BigInteger)
    block_number: int = Field(sa_type=BigInteger, index=True)
    log_index: int


class SlotOutcome(SQLModel):
    """What the settlement worker decided for one slot, then what happened: the one shape of a
    slot's outcome, shared by the table below, the market and the API.

    ``status`` is ``planned`` once the fills are decided and written (before any transaction),
    then ``settled`` when every batch is on chain. Energy in Wh, money in micro-euro.
    ``surplus_Wh`` and ``deficit_Wh`` are what was left to trade when the slot was cleared
    (metered export and import minus direct takes); the unmatched parts go to and come from the
    grid.
    """

    slot: int = Field(primary_key=True, sa_type=BigInteger)
    status: str
    mechanism: str
    clearing_price_ueur_per_kWh: int | None = Field(default=None, sa_type=BigInteger)
    households: int
    surplus_Wh: int = Field(sa_type=BigInteger)
    deficit_Wh: int = Field(sa_type=BigInteger)
    matched_Wh: int = Field(sa_type=BigInteger)
    unmatched_surplus_Wh: int = Field(sa_type=BigInteger)
    unmatched_deficit_Wh: int = Field(sa_type=BigInteger)
    fills: int
    batches: int
    cost_ueur: int = Field(default=0, sa_type=BigInteger)
    fees_ueur: int = Field(default=0, sa_type=BigInteger)
    gas_used: int = Field(default=0, sa_type=BigInteger)


class SlotOutcomeRecord(SlotOutcome, table=True):
    """The settlement worker's record of one slot (:class:`SlotOutcome`)."""

    __tablename__ = "slot_outcome"


class SettlementBatchRecord(SQLModel, table=True):
    """One planned ``settleBatch`` transaction: its fills (JSON), then its transaction hash."""

    __tablename__ = "settlement_batch"
    __table_args__ = (UniqueConstraint("slot", "batch"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=IdInteger)
    slot: int = Field(sa_type=BigInteger, index=True)
    batch: int = Field(sa_type=IdInteger)
    fills_json: str
    tx_hash: str | None = None
    gas_used: int = Field(default=0, sa_type=BigInteger)


class BalanceRecord(SQLModel, table=True):
    """An account's payment-token balance (micro-euro), as the mirrored events imply.

    It follows ERC-20 ``Transfer`` events (top-ups, transfers) and settlement moves
    (``FillSettled``: the buyer pays cost and fee, the seller earns the cost, the fee recipient
    of the time earns the fee), so it is exact once the indexer has caught up. The chain stays the
    authority: the settlement worker re-reads a balance from a refused batch.
    """

    __tablename__ = "balance"

    account: str = Field(primary_key=True)
    balance_ueur: int = Field(default=0, sa_type=BigInteger)


class IndexerState(SQLModel, table=True):
    """Small facts the indexer carries between events, e.g. the current fee recipient."""

    __tablename__ = "indexer_state"

    key: str = Field(primary_key=True)
    value: str


class SignedReadingRecord(SQLModel, table=True):
    """A meter's signed reading as it reached the ledger: the EIP-712 fields and the signature.

    Written before (or as) the reading is committed on chain (:mod:`ledger.readings.evidence`), so
    the
    operator's audit can trace every minted credit back to the very bytes the meter signed and
    recover the signer again. ``r`` and ``s`` are 0x-prefixed 32-byte hex, ``v`` is 27 or 28.
    """

    __tablename__ = "signed_reading"
    __table_args__ = (UniqueConstraint("meter", "slot"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=IdInteger)
    meter: str = Field(index=True)
    slot: int = Field(sa_type=BigInteger, index=True)
    import_Wh: int = Field(sa_type=BigInteger)
    export_Wh: int = Field(sa_type=BigInteger)
    v: int
    r: str
    s: str


class SlotDigestRecord(SQLModel, table=True):
    """One link of the tamper-evident digest chain over settled slots (:mod:`ledger.audit.digest`).

    ``seq`` orders the links as they were sealed; ``digest`` is SHA-256 over the previous
    link's digest and this slot's leaves (one hash per household, plus the slot's outcome),
    computed from the mirrored records of blocks up to ``sealed_block``. ``leaves_json`` keeps
    the leaf hashes so the audit can name the household whose record changed.
    """

    __tablename__ = "slot_digest"

    seq: int | None = Field(default=None, primary_key=True, sa_type=IdInteger)
    slot: int = Field(sa_type=BigInteger, unique=True)
    sealed_block: int = Field(sa_type=BigInteger)
    prev_digest: str
    digest: str
    leaves_json: str


class NeighbourhoodSlotRecord(SQLModel, table=True):
    """What a simulation knows beyond the meters, per slot, summed over the neighbourhood (Wh).

    Meters measure only grid import and export; PV production, load and battery flows come
    from the simulator (or from PV inverter meters). The audit uses them for the neighbourhood
    balance and the open-data export, and leaves them out when absent.
    """

    __tablename__ = "neighbourhood_slot"

    slot: int = Field(primary_key=True, sa_type=BigInteger)
    pv_Wh: int = Field(sa_type=BigInteger)
    load_Wh: int = Field(sa_type=BigInteger)
    charge_Wh: int = Field(default=0, sa_type=BigInteger)
    discharge_Wh: int = Field(default=0, sa_type=BigInteger)


def plain_rows(session: Session, model: Any, *where: Any, order: Sequence[Any] = ()) -> list[Any]:
    """The rows of ``model``'s table that meet every ``where`` clause, as read-only rows whose
    attributes are its columns, ordered by ``order``.

    Plain rows rather than ORM objects, for readers that only read: building and validating
    an object per row was most of the time the audit spent reading a day's tables, and most of
    the time the settlement worker spent loading a slot's book.
    """
    query = sa_select(*model.__table__.columns)
    for clause in where:
        query = query.where(clause)
    for column in order:
        query = query.order_by(col(column))
    return list(session.execute(query))
