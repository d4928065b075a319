"""The live feed: Server-Sent Events derived from the database mirror of the chain's events.

Two streams (:mod:`api.routes.feed`): the public one (``slot_settled``, then
``forecast_refreshed``, and ``tariffs_changed``)
and one per household (``trade``, ``balance_changed``, ``order_changed``). Every event comes
from a mirrored contract event (a ``chain_event`` row), so the feed says nothing the ledger
has not recorded, and its ids are positions in the chain's own order:

    ``<block>-<log index>-<part>``

where ``part`` numbers the feed events one contract event gives (a ``FillSettled`` gives a
household its ``trade`` (part 0), then its ``balance_changed`` (part 1)). The ids order every
event of both streams totally, the same in every process and across restarts (they name the
chain's log, not the database's rows), and ``Last-Event-ID`` resumes exactly after one.

The module has three parts:

- **Pure**: positions, the payloads built from rows, and :class:`Book`, the little state
  (each household's account and balance) that a household's events need, moved forward by
  :meth:`Book.apply` and back by :meth:`Book.undo`; no I/O.
- **The store** (:class:`FeedStore`): the blocking database reads, each a few queries.
- **The hub** (:class:`FeedHub`): one asyncio task per process that polls the mirror (every
  ``feed_poll_s``), turns new rows into events and appends them to a bounded ring that every
  subscriber reads at its own pace (one copy of each event, encoded once, whatever the number
  of subscribers). A subscriber more than ``feed_max_lag_events`` behind the ring's head is
  disconnected: it resumes with ``Last-Event-ID``, from the database. The hub runs only while
  someone listens.

The HTTP side (the routes and the response that streams a subscriber) is
:mod:`api.routes.feed`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

import anyio
import anyio.to_thread
from sqlalchemy import Engine, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select
from sse_starlette import ServerSentEvent

from api.models import ApiOrder
from ledger.localtime import slot_start
from ledger.market.statements import is_forward_delivery
from ledger.mirror.models import (
    BalanceRecord,
    ChainEvent,
    FillRecord,
    HouseholdRecord,
    IndexerCursor,
    NeighbourhoodSlotRecord,
    OrderRecord,
    ReadingRecord,
    SlotOutcomeRecord,
)

log = logging.getLogger("voisin.feed")

#: The contract events the public stream is made of.
PUBLIC_NAMES: Final = frozenset({"SlotSealed", "TariffsSet"})
#: The contract events a household's stream is made of, and the ones that move its account.
PRIVATE_NAMES: Final = frozenset(
    {
        "FillSettled",
        "Transfer",
        "OfferPosted",
        "BidPosted",
        "OfferCancelled",
        "BidCancelled",
        "HouseholdRegistered",
        "AccountRotated",
    }
)
FEED_NAMES: Final = PUBLIC_NAMES | PRIVATE_NAMES
#: A log index beyond any block's: ``(block, LAST_LOG)`` is "after all of block".
LAST_LOG: Final = 2**31 - 1
_ZERO_ADDRESS = "0x" + "0" * 40
_ID = re.compile(r"^(0|([0-9]{1,12})-([0-9]{1,9})-([0-9]))$")


class FeedError(ValueError):
    """A ``Last-Event-ID`` that is not an id of this feed."""


# ───────────────────────────── Pure: positions and events ─────────────────────────────


@dataclass(frozen=True, order=True, slots=True)
class Position:
    """Where an event sits in the chain's order: its contract event's block and log index,
    then its part among the feed events that contract event gives."""

    block: int
    log_index: int
    part: int = 0

    def __str__(self) -> str:
        return f"{self.block}-{self.log_index}-{self.part}"

    @property
    def row(self) -> tuple[int, int]:
        return (self.block, self.log_index)


#: Before every event: ``Last-Event-ID: 0`` replays the ledger's whole history.
ORIGIN: Final = Position(0, 0, 0)
#: Parts one contract event gives at most (a fill: the trade, then the balance).
MAX_PARTS: Final = 2


def parse_event_id(text: str) -> Position:
    """The position a ``Last-Event-ID`` names; :class:`FeedError` if it is not an id."""
    match = _ID.match(text.strip())
    if match is None:
        raise FeedError(
            f"Last-Event-ID {text[:80]!r} is not a feed event id: an id is "
            "<block>-<log index>-<part> as the feed sent it (e.g. 1234-5-0), or 0 to replay "
            "from the start"
        )
    if match.group(1) == "0":
        return ORIGIN
    position = Position(int(match.group(2)), int(match.group(3)), int(match.group(4)))
    if position.part >= MAX_PARTS:
        raise FeedError(f"Last-Event-ID {text!r}: the part is at most {MAX_PARTS - 1}")
    return position


class Row(NamedTuple):
    """A mirrored contract event, as the feed reads it."""

    block: int
    log_index: int
    name: str
    args: dict[str, Any]
    tx_hash: str

    @property
    def position(self) -> Position:
        return Position(self.block, self.log_index, 0)


@dataclass(slots=True)
class FeedEvent:
    """One event of the feed; ``household`` None for the public stream. ``encoded`` is its
    SSE form, built once and shared by every subscriber."""

    position: Position
    household: int | None
    kind: str
    data: dict[str, Any]
    _encoded: bytes | None = None

    @property
    def id(self) -> str:
        return str(self.position)

    @property
    def encoded(self) -> bytes:
        if self._encoded is None:
            text = json.dumps(self.data, separators=(",", ":"), ensure_ascii=False)
            self._encoded = ServerSentEvent(text, event=self.kind, id=self.id).encode()
        return self._encoded


@dataclass(frozen=True, slots=True)
class SlotFacts:
    """What the public ``slot_settled`` event says of a slot, read from the mirror."""

    outcome: Mapping[str, Any]
    import_Wh: int
    export_Wh: int
    local_Wh: int
    load_Wh: int | None


@dataclass(frozen=True, slots=True)
class OrderFacts:
    household: int
    api_order_id: int | None


def _iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def slot_times(slot: int, tz: str) -> dict[str, str]:
    """A slot's start and end in the neighbourhood's local time (ISO 8601 with the offset)
    and in UTC."""
    start, end = slot_start(slot, tz), slot_start(slot + 1, tz)
    return {
        "starts_at": start.isoformat(),
        "ends_at": end.isoformat(),
        "starts_at_utc": _iso_utc(start),
        "ends_at_utc": _iso_utc(end),
    }


def self_sufficiency(load_Wh: int | None, import_Wh: int, local_Wh: int) -> float | None:
    """The share of the neighbourhood's load met without the grid: (load - grid import) /
    load, the grid import being the metered import not bought locally. None without a load
    figure (meters measure import and export only; a simulation or PV meters give the load)."""
    if not load_Wh or load_Wh <= 0:
        return None
    grid_import = max(import_Wh - local_Wh, 0)
    return round(max(load_Wh - grid_import, 0) / load_Wh, 4)


def slot_settled(row: Row, facts: SlotFacts, tz: str) -> FeedEvent:
    """The public event for a ``SlotSealed`` row: the slot's times and aggregates."""
    o = facts.outcome
    slot = int(row.args["slot"])
    data: dict[str, Any] = {
        "slot": slot,
        **slot_times(slot, tz),
        "households": o["households"],
        "import_Wh": facts.import_Wh,
        "export_Wh": facts.export_Wh,
        "matched_Wh": o["matched_Wh"],
        "local_Wh": facts.local_Wh,
        "clearing_price_ueur_per_kWh": o["clearing_price_ueur_per_kWh"],
        "fills": o["fills"],
        "mechanism": o["mechanism"],
        "cost_ueur": o["cost_ueur"],
        "fees_ueur": o["fees_ueur"],
        "self_sufficiency": self_sufficiency(facts.load_Wh, facts.import_Wh, facts.local_Wh),
        "tx_hash": row.tx_hash,
    }
    return FeedEvent(row.position, None, "slot_settled", data)


def tariffs_changed(row: Row) -> FeedEvent:
    a = row.args
    data = {
        "feed_in_ueur_per_kWh": int(a["feedInUeurPerKWh"]),
        "retail_ueur_per_kWh": int(a["retailUeurPerKWh"]),
        "grid_fee_ueur_per_kWh": int(a["gridFeeUeurPerKWh"]),
        "block": row.block,
        "tx_hash": row.tx_hash,
    }
    return FeedEvent(row.position, None, "tariffs_changed", data)


def forecast_refreshed(row: Row) -> FeedEvent:
    """After a sealed slot (part 1 of its ``SlotSealed``): the forecasts now read at least up
    to that slot's readings; ``GET /v1/forecast`` answers them (docs/forecasts.md)."""
    data = {"slot": int(row.args["slot"]), "forecast": "/v1/forecast"}
    return FeedEvent(replace(row.position, part=1), None, "forecast_refreshed", data)


def public_events(rows: Iterable[Row], slots: Mapping[int, SlotFacts], tz: str) -> list[FeedEvent]:
    """The public events of ``rows`` (a sealed slot without its outcome in ``slots`` is
    skipped: the live feed holds such a seal back until its slot is settled again,
    :meth:`FeedStore.first_unsettled_seal`)."""
    events = []
    for row in rows:
        if row.name == "TariffsSet":
            events.append(tariffs_changed(row))
        elif row.name == "SlotSealed":
            facts = slots.get(int(row.args["slot"]))
            if facts is not None:
                events.append(slot_settled(row, facts, tz))
                events.append(forecast_refreshed(row))
    return events


def _address(value: Any) -> str:
    return str(value).lower()


@dataclass
class Book:
    """What a household's events need besides the row: each household's account (lower-case)
    and balance (micro-euro), as of a position.

    It follows the indexer's balance rules (:mod:`ledger.mirror.indexer`) for households: a
    fill debits the buyer its cost and fee and credits the seller its cost; a ``Transfer``
    moves tokens between accounts (from the zero address: a top-up); a key rotation moves the
    balance with the household (the API rotates to a fresh account). A household registers
    with a zero balance (its account is new).
    """

    accounts: dict[int, str] = field(default_factory=dict)
    balances: dict[int, int] = field(default_factory=dict)
    owners: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, accounts: Mapping[int, str], balances: Mapping[int, int]) -> Book:
        book = cls({h: _address(a) for h, a in accounts.items()}, dict(balances))
        book.owners = {a: h for h, a in book.accounts.items()}
        return book

    def only(self, household: int) -> Book:
        """A copy that knows one household (a private stream's replay)."""
        account = self.accounts.get(household)
        if account is None:
            return Book()
        return Book.of({household: account}, {household: self.balances.get(household, 0)})

    def _moves(self, row: Row) -> list[tuple[int, int, str]]:
        """(household, change in micro-euro, reason) of each balance the row moves."""
        a = row.args
        if row.name == "FillSettled":
            cost, fee = int(a["costUeur"]), int(a["feeUeur"])
            moves = []
            if int(a["buyer"]) in self.accounts:
                moves.append((int(a["buyer"]), -(cost + fee), "purchase"))
            if int(a["seller"]) in self.accounts:
                moves.append((int(a["seller"]), cost, "sale"))
            return moves
        if row.name == "Transfer":
            value = int(a["value"])
            sender, receiver = _address(a["from"]), _address(a["to"])
            moves = []
            if sender in self.owners:
                reason = "burn" if receiver == _ZERO_ADDRESS else "transfer_out"
                moves.append((self.owners[sender], -value, reason))
            if receiver in self.owners:
                reason = "top_up" if sender == _ZERO_ADDRESS else "transfer_in"
                moves.append((self.owners[receiver], value, reason))
            return moves
        return []

    def apply(self, row: Row, orders: Mapping[tuple[str, int], OrderFacts]) -> list[FeedEvent]:
        """Move the book past ``row``; the household events it gives."""
        a = row.args
        events: list[FeedEvent] = []
        if row.name == "HouseholdRegistered":
            household = int(a["household"])
            self.accounts[household] = _address(a["account"])
            self.owners[_address(a["account"])] = household
            self.balances[household] = 0
        elif row.name == "AccountRotated":
            household = int(a["household"])
            if household in self.accounts:
                self.owners.pop(_address(a["oldAccount"]), None)
                self.accounts[household] = _address(a["newAccount"])
                self.owners[_address(a["newAccount"])] = household
        elif row.name == "FillSettled":
            for role, other in (("buyer", "seller"), ("seller", "buyer")):
                household = int(a[role])
                if household in self.accounts:
                    events.append(_trade(row, household, role, int(a[other])))
        elif row.name in ("OfferPosted", "BidPosted", "OfferCancelled", "BidCancelled"):
            event = _order_changed(row, orders)
            if event is not None and event.household in self.accounts:
                events.append(event)
        for household, change, reason in self._moves(row):
            self.balances[household] = self.balances.get(household, 0) + change
            data: dict[str, Any] = {
                "balance_ueur": self.balances[household],
                "change_ueur": change,
                "reason": reason,
                "tx_hash": row.tx_hash,
            }
            if row.name == "FillSettled":
                data["slot"] = int(a["slot"])
            # A fill gives the household its trade first (part 0), then this (part 1).
            part = 1 if row.name == "FillSettled" else 0
            events.append(
                FeedEvent(replace(row.position, part=part), household, "balance_changed", data)
            )
        return events

    def undo(self, row: Row) -> None:
        """Move the book back before ``row`` (the inverse of :meth:`apply`)."""
        for household, change, _ in self._moves(row):
            self.balances[household] = self.balances.get(household, 0) - change
        a = row.args
        household = int(a.get("household", 0) or 0)
        if row.name == "AccountRotated" and household in self.accounts:
            self.owners.pop(_address(a["newAccount"]), None)
            self.accounts[household] = _address(a["oldAccount"])
            self.owners[_address(a["oldAccount"])] = household
        elif row.name == "HouseholdRegistered" and household in self.accounts:
            self.owners.pop(self.accounts.pop(household), None)
            self.balances.pop(household, None)


def _trade(row: Row, household: int, role: str, other: int) -> FeedEvent:
    a = row.args
    data = {
        "slot": int(a["slot"]),
        "role": role,
        "counterparty": other,
        "energy_Wh": int(a["energyWh"]),
        "price_ueur_per_kWh": int(a["priceUeurPerKWh"]),
        "cost_ueur": int(a["costUeur"]),
        "fee_ueur": int(a["feeUeur"]) if role == "buyer" else 0,
        "offer_id": int(a["offerId"]),
        "bid_id": int(a["bidId"]),
        "direct": int(a["bidId"]) == 0 and not is_forward_delivery(int(a["offerId"]), 0),
        "day_ahead": is_forward_delivery(int(a["offerId"]), int(a["bidId"])),
        "tx_hash": row.tx_hash,
    }
    return FeedEvent(row.position, household, "trade", data)


def _order_key(row: Row) -> tuple[str, int]:
    side = "offer" if row.name.startswith("Offer") else "bid"
    return side, int(row.args["offerId" if side == "offer" else "bidId"])


def _order_changed(row: Row, orders: Mapping[tuple[str, int], OrderFacts]) -> FeedEvent | None:
    side, chain_id = _order_key(row)
    facts = orders.get((side, chain_id))
    a = row.args
    data: dict[str, Any] = {
        "side": side,
        "chain_id": chain_id,
        "order_id": None if facts is None else facts.api_order_id,
        "tx_hash": row.tx_hash,
    }
    if row.name.endswith("Posted"):
        household = int(a["household"])
        data.update(
            status="open",
            price_limit_ueur_per_kWh=int(a["priceLimitUeurPerKWh"]),
            max_Wh_per_slot=int(a["maxWhPerSlot"]),
            first_slot=int(a["firstSlot"]),
            last_slot=int(a["lastSlot"]),
        )
    else:
        if facts is None:
            return None
        household = facts.household
        data.update(status="cancelled", cancelled_by=str(a["by"]))
    return FeedEvent(row.position, household, "order_changed", data)


def order_keys(rows: Iterable[Row]) -> set[tuple[str, int]]:
    return {
        _order_key(r)
        for r in rows
        if r.name in ("OfferPosted", "BidPosted", "OfferCancelled", "BidCancelled")
    }


def touches(row: Row, household: int, accounts: set[str], orders: set[tuple[str, int]]) -> bool:
    """Whether ``row`` may matter to ``household``'s stream (its fills, orders, and transfers
    of any account it ever held; :class:`Book` then tells exactly)."""
    a = row.args
    if row.name == "FillSettled":
        return household in (int(a["buyer"]), int(a["seller"]))
    if row.name == "Transfer":
        return bool({_address(a["from"]), _address(a["to"])} & accounts)
    if row.name in ("OfferCancelled", "BidCancelled"):
        return _order_key(row) in orders
    return int(a.get("household", -1)) == household


def replay_private(
    rows: Sequence[Row],
    book_at_end: Book,
    household: int,
    orders: Mapping[tuple[str, int], OrderFacts],
    after: Position,
) -> list[FeedEvent]:
    """A household's events of ``rows`` (in order, ending where ``book_at_end`` stands), after
    ``after``: the book is moved back over the rows, then forward again, giving the very
    events (balances included) the hub gave live."""
    book = book_at_end.only(household)
    for row in reversed(rows):
        book.undo(row)
    events: list[FeedEvent] = []
    for row in rows:
        events.extend(
            e for e in book.apply(row, orders) if e.household == household and e.position > after
        )
    return events


# ───────────────────────────── The store: database reads ─────────────────────────────


def _rows(result: Iterable[Any]) -> list[Row]:
    return [
        Row(r.block_number, r.log_index, r.name, json.loads(r.args_json), r.tx_hash) for r in result
    ]


class FeedStore:
    """The feed's reads of the mirror (blocking: the hub runs them in a worker thread)."""

    def __init__(self, engine: Engine, contract: str, tz: str) -> None:
        self.engine = engine
        self.contract = contract
        self.tz = tz

    def cursor(self, session: Session) -> int:
        record = session.get(IndexerCursor, self.contract)
        return -1 if record is None else record.last_block

    def snapshot(self) -> tuple[Position, Book]:
        """Where the mirror stands and each household's account and balance there.

        The indexer writes each chunk's events, balances and cursor in one transaction, and
        every such commit moves the cursor: reads between two equal readings of it saw one
        state of the mirror (this holds without a snapshot-isolated transaction)."""
        while True:
            with Session(self.engine) as session:
                before = self.cursor(session)
                pairs = session.execute(
                    select(HouseholdRecord.id, HouseholdRecord.account, BalanceRecord.balance_ueur)
                    .select_from(HouseholdRecord)
                    .outerjoin(BalanceRecord, col(BalanceRecord.account) == HouseholdRecord.account)
                ).all()
                if self.cursor(session) == before:
                    book = Book.of({h: a for h, a, _ in pairs}, {h: b or 0 for h, _, b in pairs})
                    return Position(before, LAST_LOG), book

    def _query(self, names: frozenset[str], after: tuple[int, int], upto: tuple[int, int]) -> Any:
        return (
            sa_select(
                col(ChainEvent.block_number),
                col(ChainEvent.log_index),
                col(ChainEvent.name),
                col(ChainEvent.args_json),
                col(ChainEvent.tx_hash),
            )
            .where(
                col(ChainEvent.contract) == self.contract,
                col(ChainEvent.name).in_(sorted(names)),
                # Bounds on the indexed block number first, then the log index at the ends.
                col(ChainEvent.block_number) >= after[0],
                col(ChainEvent.block_number) <= upto[0],
                or_(col(ChainEvent.block_number) > after[0], col(ChainEvent.log_index) > after[1]),
                or_(col(ChainEvent.block_number) < upto[0], col(ChainEvent.log_index) <= upto[1]),
            )
            .order_by(col(ChainEvent.block_number), col(ChainEvent.log_index))
        )

    def new_rows(self, after: Position) -> tuple[Position, list[Row]]:
        """Every feed row after ``after`` that the mirror holds whole (up to its cursor), and
        the position the reader stands at then."""
        with Session(self.engine) as session:
            upto = self.cursor(session)
            if (upto, LAST_LOG) <= after.row:
                return after, []
            rows = _rows(session.execute(self._query(FEED_NAMES, after.row, (upto, LAST_LOG))))
        return Position(upto, LAST_LOG), rows

    def page(
        self, names: frozenset[str], after: tuple[int, int], upto: Position, limit: int
    ) -> list[Row]:
        """Up to ``limit`` rows named ``names`` after ``after`` (a row position) up to ``upto``."""
        with Session(self.engine) as session:
            query = self._query(names, after, upto.row).limit(limit)
            return _rows(session.execute(query))

    def exists(self, position: Position) -> bool:
        if position == ORIGIN:
            return True
        with Session(self.engine) as session:
            found = session.exec(
                select(ChainEvent.id).where(
                    ChainEvent.block_number == position.block,
                    ChainEvent.log_index == position.log_index,
                )
            ).first()
        return found is not None

    def orders(self, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], OrderFacts]:
        """The household, and the API's order id, of each (side, on-chain id)."""
        keys = set(keys)
        if not keys:
            return {}
        found: dict[tuple[str, int], OrderFacts] = {}
        with Session(self.engine) as session:
            for side in ("offer", "bid"):
                ids = sorted(i for s, i in keys if s == side)
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    owners = session.execute(
                        select(OrderRecord.order_id, OrderRecord.household).where(
                            OrderRecord.side == side, col(OrderRecord.order_id).in_(chunk)
                        )
                    ).all()
                    api_ids = dict(
                        session.execute(
                            select(ApiOrder.chain_id, ApiOrder.id).where(
                                ApiOrder.side == side, col(ApiOrder.chain_id).in_(chunk)
                            )
                        ).all()
                    )
                    for order_id, household in owners:
                        found[(side, order_id)] = OrderFacts(household, api_ids.get(order_id))
        return found

    def household_orders(self, household: int) -> set[tuple[str, int]]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(OrderRecord.side, OrderRecord.order_id).where(
                    OrderRecord.household == household
                )
            ).all()
        return {(side, order_id) for side, order_id in rows}

    def household_accounts(self, household: int) -> set[str]:
        """Every account ``household`` held (registration and key rotations)."""
        with Session(self.engine) as session:
            rows = _rows(
                session.execute(
                    self._query(
                        frozenset({"HouseholdRegistered", "AccountRotated"}),
                        (-1, 0),
                        (2**62, LAST_LOG),
                    )
                )
            )
        accounts: set[str] = set()
        for row in rows:
            if int(row.args["household"]) == household:
                for key in ("account", "oldAccount", "newAccount"):
                    if key in row.args:
                        accounts.add(_address(row.args[key]))
        return accounts

    def slots(self, sealed: Mapping[int, int]) -> dict[int, SlotFacts]:
        """What the ``slot_settled`` events of the slots ``sealed`` (slot: the block of its
        seal) say, from the mirror. Energy metered and traded counts the records mirrored up
        to the seal's block, as the live feed saw them then: a reading committed late for a
        settled slot does not change its event when it is replayed."""
        wanted = sorted(sealed)
        if not wanted:
            return {}
        facts: dict[int, SlotFacts] = {}
        with Session(self.engine) as session:
            outcomes = {
                r.slot: r._asdict()
                for r in session.execute(
                    select(*SlotOutcomeRecord.__table__.columns).where(  # type: ignore[attr-defined]
                        col(SlotOutcomeRecord.slot).in_(wanted),
                        SlotOutcomeRecord.status == "settled",
                    )
                )
            }
            metered: dict[int, tuple[int, int]] = {}
            for slot, block, i, e in session.execute(
                select(
                    ReadingRecord.slot,
                    ReadingRecord.block_number,
                    func.sum(ReadingRecord.import_delta_Wh),
                    func.sum(ReadingRecord.export_delta_Wh),
                )
                .where(col(ReadingRecord.slot).in_(wanted))
                .group_by(col(ReadingRecord.slot), col(ReadingRecord.block_number))
            ):
                if block <= sealed[slot]:
                    was = metered.get(slot, (0, 0))
                    metered[slot] = (was[0] + int(i or 0), was[1] + int(e or 0))
            local: dict[int, int] = {}
            for slot, block, energy in session.execute(
                select(FillRecord.slot, FillRecord.block_number, func.sum(FillRecord.energy_Wh))
                .where(col(FillRecord.slot).in_(wanted))
                .group_by(col(FillRecord.slot), col(FillRecord.block_number))
            ):
                if block <= sealed[slot]:
                    local[slot] = local.get(slot, 0) + int(energy or 0)
            loads = dict(
                session.execute(
                    select(NeighbourhoodSlotRecord.slot, NeighbourhoodSlotRecord.load_Wh).where(
                        col(NeighbourhoodSlotRecord.slot).in_(wanted)
                    )
                ).all()
            )
        for slot, outcome in outcomes.items():
            import_Wh, export_Wh = metered.get(slot, (0, 0))
            facts[slot] = SlotFacts(
                outcome, import_Wh, export_Wh, local.get(slot, 0), loads.get(slot)
            )
        return facts

    def public(self, rows: Sequence[Row]) -> list[FeedEvent]:
        sealed = {int(r.args["slot"]): r.block for r in rows if r.name == "SlotSealed"}
        return public_events(rows, self.slots(sealed), self.tz)

    def first_unsettled_seal(self, rows: Sequence[Row]) -> int | None:
        """The index in ``rows`` of the first ``SlotSealed`` whose slot this database has not
        recorded as settled, or None. The settlement worker records a slot's outcome before
        it seals the slot on chain, so this happens only in a database restored from before
        the slot was settled, until the restore's recovery settles it again."""
        sealed = {int(r.args["slot"]) for r in rows if r.name == "SlotSealed"}
        if not sealed:
            return None
        with Session(self.engine) as session:
            settled = set(
                session.exec(
                    select(SlotOutcomeRecord.slot).where(
                        col(SlotOutcomeRecord.slot).in_(sealed),
                        SlotOutcomeRecord.status == "settled",
                    )
                ).all()
            )
        for i, row in enumerate(rows):
            if row.name == "SlotSealed" and int(row.args["slot"]) not in settled:
                return i
        return None


# ───────────────────────────── The hub: one poller, many subscribers ─────────────────────────────


@dataclass(eq=False)
class Subscriber:
    """One open stream: which events it wants, where it reads the ring, what it last got."""

    household: int | None
    seq: int
    last: Position
    #: The household's bearer token, checked again while the stream is open (None: the
    #: public stream, or the operator's token).
    token: str | None = None
    #: Cancels the stream's response (set by :class:`FeedResponse`).
    cancel: anyio.CancelScope | None = None
    closed: bool = False
    reason: str | None = None

    def close(self, reason: str) -> None:
        if not self.closed:
            self.closed, self.reason = True, reason
            if self.cancel is not None:
                self.cancel.cancel()


class FeedFull(Exception):
    """The process has as many subscribers as ``feed_max_subscribers`` allows."""


@dataclass(frozen=True)
class FeedLimits:
    max_subscribers: int = 1000
    max_lag_events: int = 10_000
    poll_s: float = 0.5
    #: Events a subscriber takes from the ring at once (it is counted as behind for the rest).
    take: int = 100
    #: How often the household streams' tokens are checked again (seconds).
    token_check_s: float = 10.0


class FeedHub:
    """One poller for the process; every subscriber reads its ring.

    ``still_valid(token)`` says whether a household's token still opens its stream: the
    streams' tokens are checked every ``token_check_s``, and at the next poll whenever
    ``tokens_forgotten()`` (a count this process moves when it rotates a token or erases a
    household) has moved, so that such a stream closes within a poll here, and within
    ``token_check_s`` when another process did it."""

    def __init__(
        self,
        store: FeedStore,
        limits: FeedLimits,
        still_valid: Callable[[str], bool] | None = None,
        tokens_forgotten: Callable[[], int] | None = None,
    ) -> None:
        self.store = store
        self.limits = limits
        self.still_valid = still_valid
        self.tokens_forgotten = tokens_forgotten
        self._forgotten_seen = tokens_forgotten() if tokens_forgotten is not None else 0
        self.subscribers: set[Subscriber] = set()
        self.ring: deque[FeedEvent] = deque()
        self.first_seq = 0  # the sequence number of ring[0]
        self.position = ORIGIN
        self.book = Book()
        self._changed = asyncio.Event()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._starting: asyncio.Future[None] | None = None
        self._tokens_checked = 0.0
        self.polls = 0
        self.dropped = 0

    @property
    def next_seq(self) -> int:
        return self.first_seq + len(self.ring)

    # ── Subscribing ──

    async def subscribe(
        self, household: int | None, after: Position | None, token: str | None = None
    ) -> tuple[Subscriber, Position, Book]:
        """Register a subscriber; returns it, the position it joins the live ring at, and the
        book there (a replay of ``(after, that position]`` comes from the database).

        Raises :class:`FeedFull` beyond the cap, and whatever the first read of the mirror
        raises if the hub was not running."""
        if len(self.subscribers) >= self.limits.max_subscribers:
            raise FeedFull
        await self._start()
        if len(self.subscribers) >= self.limits.max_subscribers:
            raise FeedFull
        # No await from here: the ring holds everything after self.position.
        last = after if after is not None else self.position
        subscriber = Subscriber(household, self.next_seq, last, token)
        self.subscribers.add(subscriber)
        book = self.book.only(household) if household is not None else Book()
        return subscriber, self.position, book

    def leave(self, subscriber: Subscriber) -> None:
        subscriber.closed = True
        self.subscribers.discard(subscriber)

    async def _start(self) -> None:
        if self._task is not None and self._ready.is_set():
            return
        if self._starting is None:
            self._starting = asyncio.get_running_loop().create_future()
            try:
                position, book = await anyio.to_thread.run_sync(self.store.snapshot)
            except BaseException as exc:
                self._starting.set_exception(exc)
                self._starting.exception()  # marked retrieved: this caller re-raises it
                self._starting = None
                raise
            self.position, self.book = position, book
            self.ring.clear()
            self._ready.set()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="voisin-feed")
            self._starting.set_result(None)
            self._starting = None
            return
        await asyncio.shield(self._starting)

    async def next_events(self, subscriber: Subscriber) -> list[FeedEvent]:
        """The subscriber's next events from the ring, waiting for new ones; [] if it closed."""
        while not subscriber.closed:
            if subscriber.seq < self.first_seq:  # cannot happen: dropped first
                subscriber.close("behind")
                break
            end = min(self.next_seq, subscriber.seq + self.limits.take)
            if subscriber.seq < end:
                start = subscriber.seq - self.first_seq
                taken = [self.ring[i] for i in range(start, end - self.first_seq)]
                subscriber.seq = end
                wanted = [
                    e
                    for e in taken
                    if e.household == subscriber.household and e.position > subscriber.last
                ]
                if wanted:
                    subscriber.last = wanted[-1].position
                    return wanted
                continue
            await self._changed.wait()
        return []

    # ── Polling ──

    async def _run(self) -> None:
        try:
            while self.subscribers:
                await asyncio.sleep(self.limits.poll_s)
                try:
                    await self._poll()
                    await self._recheck_tokens()
                except Exception:  # the mirror may be busy or gone for a moment: poll again
                    log.exception("the feed's poll of the mirror failed")
        finally:
            self._task = None
            self._ready.clear()
            self.ring.clear()
            self.first_seq = 0
            self._wake()

    async def _poll(self) -> None:
        position, rows = await anyio.to_thread.run_sync(self.store.new_rows, self.position)
        self.polls += 1
        held = await anyio.to_thread.run_sync(self.store.first_unsettled_seal, rows)
        if held is not None:
            # That slot's event, and every one after it, waits for the slot's outcome: read
            # again from just before it at the next poll.
            at = rows[held]
            position = Position(at.block, at.log_index - 1, MAX_PARTS)
            rows = rows[:held]
        if rows:
            orders = await anyio.to_thread.run_sync(self.store.orders, order_keys(rows))
            public = await anyio.to_thread.run_sync(self.store.public, rows)
            events = sorted(
                [e for row in rows for e in self.book.apply(row, orders)] + public,
                key=lambda e: e.position,
            )
            self._append(events)
        self.position = max(self.position, position)

    def _append(self, events: Sequence[FeedEvent]) -> None:
        if not events:
            return
        self.ring.extend(events)
        overflow = len(self.ring) - self.limits.max_lag_events
        if overflow > 0:
            for _ in range(overflow):
                self.ring.popleft()
            self.first_seq += overflow
        for subscriber in list(self.subscribers):
            if subscriber.seq < self.first_seq:
                self.dropped += 1
                log.info(
                    "feed subscriber (household %s) dropped: more than %d events behind",
                    subscriber.household,
                    self.limits.max_lag_events,
                )
                subscriber.close("behind")
                self.subscribers.discard(subscriber)
        self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _recheck_tokens(self) -> None:
        """Close the household streams whose token no longer opens them (rotated, or the
        household gone), every ``token_check_s`` or when this process forgot tokens: one
        worker-thread call for them all."""
        if self.still_valid is None:
            return
        forgotten = self.tokens_forgotten() if self.tokens_forgotten is not None else 0
        due = self._loop_time() >= self._tokens_checked + self.limits.token_check_s
        if not due and forgotten == self._forgotten_seen:
            return
        self._tokens_checked = self._loop_time()
        self._forgotten_seen = forgotten
        held = [s for s in self.subscribers if s.token is not None]
        if not held:
            return
        check = self.still_valid
        verdicts = await anyio.to_thread.run_sync(lambda: [check(s.token or "") for s in held])
        for subscriber, valid in zip(held, verdicts, strict=True):
            if not valid:
                log.info("feed of household %s closed: its token changed", subscriber.household)
                subscriber.close("token")
                self.subscribers.discard(subscriber)
        self._wake()

    @staticmethod
    def _loop_time() -> float:
        return asyncio.get_running_loop().time()

    # ── Replays ──

    async def replay(
        self, subscriber: Subscriber, after: Position, upto: Position, book: Book, page: int = 500
    ) -> AsyncIterator[FeedEvent]:
        """The subscriber's events after ``after`` up to ``upto`` (where it joined the ring),
        from the database, a page at a time."""
        if after >= upto:
            return
        start = after.row  # the row at ``after`` itself: its later parts may be missing
        start = (start[0], start[1] - 1)
        if subscriber.household is None:
            while not subscriber.closed:
                rows = await anyio.to_thread.run_sync(
                    self.store.page, PUBLIC_NAMES, start, upto, page
                )
                if not rows:
                    return
                for event in await anyio.to_thread.run_sync(self.store.public, rows):
                    if event.position > after:
                        yield event
                start = rows[-1].position.row
            return
        household = subscriber.household
        rows = await anyio.to_thread.run_sync(self._household_rows, household, start, upto, page)
        orders = await anyio.to_thread.run_sync(self.store.orders, order_keys(rows))
        for event in replay_private(rows, book, household, orders, after):
            yield event

    def _household_rows(
        self, household: int, start: tuple[int, int], upto: Position, page: int
    ) -> list[Row]:
        accounts = self.store.household_accounts(household)
        orders = self.store.household_orders(household)
        kept: list[Row] = []
        while True:
            rows = self.store.page(PRIVATE_NAMES, start, upto, page)
            if not rows:
                return kept
            kept.extend(r for r in rows if touches(r, household, accounts, orders))
            start = rows[-1].position.row


__all__ = [
    "FEED_NAMES",
    "ORIGIN",
    "Book",
    "FeedError",
    "FeedEvent",
    "FeedFull",
    "FeedHub",
    "FeedLimits",
    "FeedStore",
    "Position",
    "Row",
    "SlotFacts",
    "Subscriber",
    "forecast_refreshed",
    "parse_event_id",
    "public_events",
    "replay_private",
    "slot_settled",
    "slot_times",
]
