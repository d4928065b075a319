"""Event indexer: mirrors the Voisin contract's events into the database.

``index(client, engine)`` reads logs from the block after the cursor up to the chain head (minus
``confirmations``), in chunks, and writes each chunk's events, projections and the new cursor in
one database transaction. A crash therefore loses nothing and duplicates nothing: the next run
resumes from the last committed cursor. Any SQLAlchemy URL works (SQLite by default,
PostgreSQL beyond one machine).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

from sqlalchemy import Engine, bindparam
from sqlmodel import Session, SQLModel, col, select

from ledger.contract.client import VoisinClient
from ledger.errors import LedgerError
from ledger.mirror.models import (
    BalanceRecord,
    ChainEvent,
    FillRecord,
    ForwardRecord,
    HouseholdRecord,
    IndexerCursor,
    IndexerState,
    OrderRecord,
    ReadingRecord,
    TariffRecord,
    TopUpRecord,
)
from ledger.types import Event

#: Blocks per get_logs request: small enough for public nodes' range limits.
CHUNK_BLOCKS = 2_000
#: Keys per ``IN (...)`` when records are loaded ahead (well under any database's limit).
PRELOAD_KEYS = 500
_INT64_MAX = 2**63 - 1


class IndexerError(LedgerError):
    """The database mirror cannot follow the chain (e.g. it belongs to another contract)."""


@dataclass(frozen=True, slots=True)
class IndexResult:
    from_block: int
    to_block: int
    events: int


def index(
    client: VoisinClient,
    engine: Engine,
    *,
    start_block: int = 0,
    confirmations: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> IndexResult:
    """Mirror every event up to the head into the database; returns what was read."""
    head = int(client.w3.eth.block_number) - confirmations
    with Session(engine) as session:
        cursor = session.get(IndexerCursor, client.address)
        if cursor is not None and cursor.chain_id != client.chain_id:
            raise IndexerError(
                f"the database mirrors {client.address} on chain {cursor.chain_id}, "
                f"not chain {client.chain_id}"
            )
        first = start_block if cursor is None else cursor.last_block + 1
    total = 0
    block = first
    while block <= head:
        last = min(block + CHUNK_BLOCKS - 1, head)
        events = client.events(block, last)
        with Session(engine) as session, session.begin(), session.no_autoflush:
            chunk = _Chunk(session)
            _preload(chunk, events)
            for event in events:
                _store(chunk, client.address, event)
            chunk.insert_rows()
            cursor = session.get(IndexerCursor, client.address)
            if cursor is None:
                cursor = IndexerCursor(
                    contract=client.address, chain_id=client.chain_id, last_block=last
                )
            cursor.last_block = last
            session.add(cursor)
        total += len(events)
        if progress is not None:
            progress(last, head)
        block = last + 1
    return IndexResult(first, head, total)


def _int(value: Any) -> int:
    number = int(value)
    if number > _INT64_MAX:
        raise IndexerError(f"value {number} does not fit a 64-bit database column")
    return number


_R = TypeVar("_R", bound=SQLModel)


class _Chunk:
    """The records one chunk's events change, each loaded once and kept until the commit.

    The session does not flush before each lookup (``no_autoflush``): before, every balance or
    household lookup flushed the rows added so far and then queried, one round trip per fill.
    Records added in this chunk are not found by ``session.get`` until flushed, so they are
    kept here too.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self._rows: dict[type[SQLModel], list[dict[str, Any]]] = {}
        # Records by (class, key): primary keys, and (side, order id) for orders. None is kept
        # too: a record known to be missing is not looked up again.
        self._known: dict[tuple[type[SQLModel], Any], Any] = {}
        # Forward positions: the rows cleared in this chunk by id (a settlement in the same
        # chunk completes its row before the insert), and the settled columns of those stored
        # before it, written by one executemany.
        self.cleared_forwards: dict[int, dict[str, Any]] = {}
        self.settled_forwards: list[dict[str, Any]] = []

    def add(self, record: SQLModel, key: Any = None) -> None:
        """Add (or re-add) ``record``; a new record's ``key`` makes later lookups find it."""
        if key is not None:
            self._known[(type(record), key)] = record
        self.session.add(record)

    def append(self, table: type[SQLModel], **row: Any) -> dict[str, Any]:
        """A new row (events, readings, fills, top-ups, tariffs, forward positions), inserted
        by :meth:`insert_rows` with the other rows of its table in one statement; returns the
        row, which may still be completed until then."""
        self._rows.setdefault(table, []).append(row)
        return row

    def insert_rows(self) -> None:
        """Insert the appended rows, one executemany per table, in the chunk's transaction.

        The ORM's unit of work built, tracked and flushed an object per row, which made those
        rows most of the indexer's database time.
        """
        connection = self.session.connection()
        for table, rows in self._rows.items():
            connection.execute(table.__table__.insert(), rows)  # type: ignore[attr-defined]
        self._rows.clear()
        if self.settled_forwards:
            connection.execute(_SETTLE_FORWARD, self.settled_forwards)
            self.settled_forwards.clear()

    def get(self, model: type[_R], key: Any) -> _R | None:
        """The ``model`` record with primary key ``key`` (loaded once), or None."""
        if (model, key) not in self._known:
            self._known[(model, key)] = self.session.get(model, key)
        return cast("_R | None", self._known[(model, key)])

    def preload(self, model: type[_R], key_column: Any, keys: Iterable[Any]) -> None:
        """Load the ``model`` records whose ``key_column`` is one of ``keys``, a few
        statements in all, so that :meth:`get` finds them (or knows they are missing) without
        a query each: a settled slot names about a hundred households and their balances."""
        missing = sorted({key for key in keys if (model, key) not in self._known})
        name = key_column.key
        for start in range(0, len(missing), PRELOAD_KEYS):
            batch = missing[start : start + PRELOAD_KEYS]
            for record in self.session.exec(select(model).where(col(key_column).in_(batch))):
                self._known[(model, getattr(record, name))] = record
        for key in missing:
            self._known.setdefault((model, key), None)

    def balance(self, account: str) -> BalanceRecord:
        """The account's balance record, a new zero one if it has none yet."""
        record = self.get(BalanceRecord, account)
        if record is None:
            record = BalanceRecord(account=account)
            self.add(record, account)
        return record

    def order(self, side: str, order_id: int) -> OrderRecord | None:
        key = (side, order_id)
        if (OrderRecord, key) not in self._known:
            query = select(OrderRecord).where(
                OrderRecord.side == side, OrderRecord.order_id == order_id
            )
            self._known[(OrderRecord, key)] = self.session.exec(query).first()
        return cast("OrderRecord | None", self._known[(OrderRecord, key)])


def _preload(chunk: _Chunk, events: Sequence[Event]) -> None:
    """Load ahead the forward positions the chunk settles, and the households and balances
    its fills and transfers change."""
    settled = [event.args["forwardId"] for event in events if event.name == "ForwardSettled"]
    chunk.preload(ForwardRecord, ForwardRecord.forward_id, settled)
    households = {
        event.args[party]
        for event in events
        if event.name == "FillSettled"
        for party in ("buyer", "seller")
    }
    if not households:
        return
    chunk.preload(HouseholdRecord, HouseholdRecord.id, households)
    accounts = {
        record.account
        for household in households
        if (record := chunk.get(HouseholdRecord, household)) is not None
    }
    accounts |= {
        event.args[side]
        for event in events
        if event.name == "Transfer"
        for side in ("from", "to")
        if int(event.args[side], 16) != 0
    }
    recipient = chunk.get(IndexerState, "fee_recipient")
    if recipient is not None:
        accounts.add(recipient.value)
    chunk.preload(BalanceRecord, BalanceRecord.account, accounts)


def _store(chunk: _Chunk, contract: str, event: Event) -> None:
    chunk.append(
        ChainEvent,
        contract=contract,
        block_number=event.block_number,
        log_index=event.log_index,
        tx_hash=event.tx_hash,
        name=event.name,
        args_json=json.dumps(event.args, sort_keys=True, default=str),
    )
    project = _PROJECTIONS.get(event.name)
    if project is not None:
        project(chunk, event)


def _household_registered(chunk: _Chunk, event: Event) -> None:
    a = event.args
    chunk.add(
        HouseholdRecord(
            id=a["household"], account=a["account"], meter=a["meter"], prosumer=a["prosumer"]
        ),
        a["household"],
    )


def _household_deactivated(chunk: _Chunk, event: Event) -> None:
    a = event.args
    household = chunk.get(HouseholdRecord, a["household"])
    if household is not None:
        household.active = False
        chunk.add(household)


def _meter_rotated(chunk: _Chunk, event: Event) -> None:
    a = event.args
    household = chunk.get(HouseholdRecord, a["household"])
    if household is not None:
        household.meter = a["newMeter"]
        chunk.add(household)


def _account_rotated(chunk: _Chunk, event: Event) -> None:
    a = event.args
    household = chunk.get(HouseholdRecord, a["household"])
    if household is not None:
        household.account = a["newAccount"]
        chunk.add(household)
    # The balance lives with the household on chain, so it moves with the account here.
    old = chunk.get(BalanceRecord, a["oldAccount"])
    if old is not None and old.balance_ueur:
        _add_balance(chunk, a["newAccount"], old.balance_ueur)
        old.balance_ueur = 0


def _reading_committed(chunk: _Chunk, event: Event) -> None:
    a = event.args
    block = event.block_number
    tx = event.tx_hash
    chunk.append(
        ReadingRecord,
        household=a["household"],
        meter=a["meter"],
        slot=a["slot"],
        import_Wh=_int(a["importWh"]),
        export_Wh=_int(a["exportWh"]),
        import_delta_Wh=_int(a["importDeltaWh"]),
        export_delta_Wh=_int(a["exportDeltaWh"]),
        block_number=block,
        tx_hash=tx,
    )


def _order_posted(chunk: _Chunk, event: Event) -> None:
    a = event.args
    side = "offer" if event.name == "OfferPosted" else "bid"
    order_id = a["offerId" if side == "offer" else "bidId"]
    chunk.add(
        OrderRecord(
            side=side,
            order_id=order_id,
            household=a["household"],
            price_limit_ueur_per_kWh=_int(a["priceLimitUeurPerKWh"]),
            max_Wh_per_slot=_int(a["maxWhPerSlot"]),
            first_slot=a["firstSlot"],
            last_slot=a["lastSlot"],
        ),
        (side, order_id),
    )


def _order_cancelled(chunk: _Chunk, event: Event) -> None:
    a = event.args
    side = "offer" if event.name == "OfferCancelled" else "bid"
    order_id = a["offerId" if side == "offer" else "bidId"]
    order = chunk.order(side, order_id)
    if order is not None:
        order.open = False
        chunk.add(order)


def _fill_settled(chunk: _Chunk, event: Event) -> None:
    a = event.args
    block = event.block_number
    tx = event.tx_hash
    chunk.append(
        FillRecord,
        slot=a["slot"],
        seller=a["seller"],
        buyer=a["buyer"],
        offer_id=a["offerId"],
        bid_id=a["bidId"],
        energy_Wh=_int(a["energyWh"]),
        price_ueur_per_kWh=_int(a["priceUeurPerKWh"]),
        cost_ueur=_int(a["costUeur"]),
        fee_ueur=_int(a["feeUeur"]),
        log_index=event.log_index,
        block_number=block,
        tx_hash=tx,
    )
    cost, fee = _int(a["costUeur"]), _int(a["feeUeur"])
    _add_balance(chunk, _account_of(chunk, a["buyer"]), -(cost + fee))
    _add_balance(chunk, _account_of(chunk, a["seller"]), cost)
    if fee:
        recipient = chunk.get(IndexerState, "fee_recipient")
        if recipient is None:
            raise IndexerError("a grid fee was paid before any FeeRecipientSet was mirrored")
        _add_balance(chunk, recipient.value, fee)


def _forward_cleared(chunk: _Chunk, event: Event) -> None:
    a = event.args
    forward_id = a["forwardId"]
    chunk.cleared_forwards[forward_id] = chunk.append(
        ForwardRecord,
        forward_id=forward_id,
        slot=a["slot"],
        seller=a["seller"],
        buyer=a["buyer"],
        energy_Wh=_int(a["energyWh"]),
        price_ueur_per_kWh=_int(a["priceUeurPerKWh"]),
        reserved_ueur=_int(a["reservedUeur"]),
        cleared_block=event.block_number,
        cleared_tx=event.tx_hash,
        **dict.fromkeys(_SETTLED_COLUMNS),
    )


#: The columns a ForwardSettled fills in (None until then).
_SETTLED_COLUMNS: Final = (
    "delivered_Wh",
    "shortfall_Wh",
    "cost_ueur",
    "fee_ueur",
    "refund_ueur",
    "settled_block",
    "settled_tx",
)
_FORWARD_TABLE = ForwardRecord.__table__  # type: ignore[attr-defined]
#: One stored position's settled columns (bound as "s_<column>"), for an executemany.
_SETTLE_FORWARD = (
    _FORWARD_TABLE.update()
    .where(_FORWARD_TABLE.c.forward_id == bindparam("s_forward_id"))
    .values({name: bindparam(f"s_{name}") for name in _SETTLED_COLUMNS})
)


def _forward_settled(chunk: _Chunk, event: Event) -> None:
    a = event.args
    forward_id = a["forwardId"]
    settled = {
        "delivered_Wh": _int(a["deliveredWh"]),
        "shortfall_Wh": _int(a["shortfallWh"]),
        "cost_ueur": _int(a["costUeur"]),
        "fee_ueur": _int(a["feeUeur"]),
        "refund_ueur": _int(a["refundUeur"]),
        "settled_block": event.block_number,
        "settled_tx": event.tx_hash,
    }
    row = chunk.cleared_forwards.get(forward_id)
    if row is not None:  # cleared in this chunk: its row is not inserted yet
        row.update(settled)
    elif chunk.get(ForwardRecord, forward_id) is not None:
        chunk.settled_forwards.append(
            {"s_forward_id": forward_id, **{f"s_{k}": v for k, v in settled.items()}}
        )
    else:
        raise IndexerError(f"forward {forward_id} was settled but never cleared")


def _transfer(chunk: _Chunk, event: Event) -> None:
    a = event.args
    if int(a["from"], 16) != 0:
        _add_balance(chunk, a["from"], -_int(a["value"]))
    if int(a["to"], 16) != 0:
        _add_balance(chunk, a["to"], _int(a["value"]))


def _fee_recipient_set(chunk: _Chunk, event: Event) -> None:
    a = event.args
    state = chunk.get(IndexerState, "fee_recipient")
    if state is None:
        chunk.add(IndexerState(key="fee_recipient", value=a["recipient"]), "fee_recipient")
    else:
        state.value = a["recipient"]
        chunk.add(state)


def _tariffs_set(chunk: _Chunk, event: Event) -> None:
    a = event.args
    block = event.block_number
    chunk.append(
        TariffRecord,
        feed_in_ueur_per_kWh=_int(a["feedInUeurPerKWh"]),
        retail_ueur_per_kWh=_int(a["retailUeurPerKWh"]),
        grid_fee_ueur_per_kWh=_int(a["gridFeeUeurPerKWh"]),
        log_index=event.log_index,
        block_number=block,
    )


def _topped_up(chunk: _Chunk, event: Event) -> None:
    a = event.args
    block = event.block_number
    tx = event.tx_hash
    chunk.append(
        TopUpRecord,
        account=a["account"],
        amount_ueur=_int(a["amountUeur"]),
        log_index=event.log_index,
        block_number=block,
        tx_hash=tx,
    )


#: What each event changes in the mirror's tables, beside its raw ChainEvent row. An event
#: not named here (roles, pause) is kept as a raw row only.
_PROJECTIONS: Final[dict[str, Callable[[_Chunk, Event], None]]] = {
    "HouseholdRegistered": _household_registered,
    "HouseholdDeactivated": _household_deactivated,
    "MeterRotated": _meter_rotated,
    "AccountRotated": _account_rotated,
    "ReadingCommitted": _reading_committed,
    "OfferPosted": _order_posted,
    "BidPosted": _order_posted,
    "OfferCancelled": _order_cancelled,
    "BidCancelled": _order_cancelled,
    "FillSettled": _fill_settled,
    "ForwardCleared": _forward_cleared,
    "ForwardSettled": _forward_settled,
    "Transfer": _transfer,
    "FeeRecipientSet": _fee_recipient_set,
    "TariffsSet": _tariffs_set,
    "ToppedUp": _topped_up,
}


def _account_of(chunk: _Chunk, household: int) -> str:
    record = chunk.get(HouseholdRecord, household)
    if record is None:
        raise IndexerError(f"a fill names household {household}, which was never registered")
    return record.account


def _add_balance(chunk: _Chunk, account: str, delta_ueur: int) -> None:
    chunk.balance(account).balance_ueur += delta_ueur
