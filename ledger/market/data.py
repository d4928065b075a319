"""Queries over the indexed mirror that feed clearing and statements.

The database holds one market (one Voisin deployment), as written by :mod:`ledger.mirror.indexer`.
Everything here reads; nothing writes. The chain remains the authority: the settlement worker
sends what these queries suggest, and the contract re-checks it.
"""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from ledger.errors import LedgerError
from ledger.market.clearing import BookOrder, Side
from ledger.market.statements import (
    SETTLED,
    ForwardLine,
    MeteredSlot,
    Statement,
    TradeLine,
    build_statement,
    is_forward_delivery,
)
from ledger.mirror.models import (
    BalanceRecord,
    ChainEvent,
    FillRecord,
    ForwardRecord,
    HouseholdRecord,
    OrderRecord,
    ReadingRecord,
    SlotOutcomeRecord,
    TariffRecord,
    plain_rows,
)
from ledger.types import KEPT_SLOTS, Tariffs

__all__ = [
    "LimitAdjuster",
    "MarketDataError",
    "SlotBook",
    "TariffSchedule",
    "load_slot_book",
    "load_statement",
    "load_statements",
    "tariff_schedule",
]

LimitAdjuster = Callable[[str, int, int, int], int]
"""``(side, household, posted_limit, slot) -> limit``: an agent's per-slot limit for an order."""


class MarketDataError(LedgerError):
    """The mirror lacks what a query needs (e.g. the tariffs were never indexed)."""


@dataclass(frozen=True, slots=True)
class SlotBook:
    """What clearing needs for one slot.

    ``surplus`` and ``deficit`` are per household what is left to trade (metered export minus
    sales so far, metered import minus purchases so far, the latter also capped by what the
    buyer's balance can pay at its dearest bid); a household whose energy for the slot the
    contract no longer keeps (a reading ``KEPT_SLOTS`` slots later is committed) has none.
    ``metered_households`` counts the households with a committed reading for the slot.
    """

    slot: int
    orders: tuple[BookOrder, ...]
    surplus: dict[int, int]
    deficit: dict[int, int]
    metered_households: int


@dataclass(frozen=True, slots=True)
class TariffSchedule:
    """The tariffs as set on chain, by the block they took effect."""

    blocks: tuple[int, ...]
    tariffs: tuple[Tariffs, ...]

    def at_block(self, block: int) -> Tariffs:
        i = bisect.bisect_right(self.blocks, block) - 1
        if i < 0:
            raise MarketDataError(f"no tariffs were in force at block {block}")
        return self.tariffs[i]


def tariff_schedule(session: Session) -> TariffSchedule:
    rows = session.exec(
        select(TariffRecord).order_by(col(TariffRecord.block_number), col(TariffRecord.log_index))
    ).all()
    if not rows:
        raise MarketDataError(
            "no TariffsSet event is mirrored: index the chain from the deployment block"
        )
    # Several changes in one block: the last one holds from that block on.
    latest: dict[int, Tariffs] = {}
    for r in rows:
        latest[r.block_number] = Tariffs(
            r.feed_in_ueur_per_kWh, r.retail_ueur_per_kWh, r.grid_fee_ueur_per_kWh
        )
    return TariffSchedule(tuple(latest), tuple(latest.values()))


def _affordable_Wh(balance_ueur: int, price_ueur_per_kWh: int, fee_ueur_per_kWh: int) -> int:
    per_kWh = price_ueur_per_kWh + fee_ueur_per_kWh
    if per_kWh == 0:
        return 2**63 - 1
    # floor(e*p/1000) + floor(e*f/1000) <= e*(p+f)/1000 <= balance for every e up to this.
    return max(balance_ueur, 0) * 1000 // per_kWh


@dataclass(frozen=True, slots=True)
class _Since:
    """What changed households and orders from a block on: deactivated households, and
    orders (side, id) posted or cancelled."""

    deactivated: frozenset[int] = frozenset()
    posted: frozenset[tuple[str, int]] = frozenset()
    closed: frozenset[tuple[str, int]] = frozenset()


_ORDER_EVENTS: dict[str, tuple[str, str]] = {
    "OfferPosted": ("offer", "offerId"),
    "BidPosted": ("bid", "bidId"),
    "OfferCancelled": ("offer", "offerId"),
    "BidCancelled": ("bid", "bidId"),
}


def _since(session: Session, block: int) -> _Since:
    """The mirrored events of ``block`` and later that changed who was active and which
    orders were open: undone, they give the households and orders as they were before it."""
    deactivated: set[int] = set()
    posted: set[tuple[str, int]] = set()
    closed: set[tuple[str, int]] = set()
    rows = session.exec(
        select(ChainEvent.name, ChainEvent.args_json).where(
            col(ChainEvent.name).in_(["HouseholdDeactivated", *_ORDER_EVENTS]),
            ChainEvent.block_number >= block,
        )
    )
    for name, args_json in rows:
        args = json.loads(args_json)
        if name == "HouseholdDeactivated":
            deactivated.add(int(args["household"]))
            continue
        side, key = _ORDER_EVENTS[name]
        (posted if name.endswith("Posted") else closed).add((side, int(args[key])))
    return _Since(frozenset(deactivated), frozenset(posted), frozenset(closed))


def load_slot_book(
    engine: Engine,
    slot: int,
    tariffs: Tariffs,
    *,
    adjust: LimitAdjuster | None = None,
    balance_caps: Mapping[int, int] | None = None,
    before_block: int | None = None,
) -> SlotBook:
    """The order book, surplus and deficit of ``slot`` from the mirror.

    Orders are the open ones whose slot range covers ``slot``, of active households, with their
    per-slot caps reduced by what they already sold or bought in the slot (direct takes); an
    exhausted order is left out. ``adjust`` lets agents tighten an order's limit for the slot.
    ``balance_caps`` overrides the mirrored balance of some households (micro-euro), e.g. with
    the funds the contract reported when it refused a batch. ``before_block`` gives the slot
    as it stood before that block, for a slot the chain settled before this database knew:
    without the readings and fills of that block and later (a reading committed late for the
    slot came after, and was never part of its market), with the households and orders as
    they were then (:func:`_since`).
    """
    readings_before = []
    fills_before = []
    if before_block is not None:
        readings_before.append(ReadingRecord.block_number < before_block)
        fills_before.append(FillRecord.block_number < before_block)
    # Plain rows: the book only reads them.
    with Session(engine) as session:
        since = _Since() if before_block is None else _since(session, before_block)
        active_now = [col(HouseholdRecord.active)] if before_block is None else []
        households = {
            h.id: h
            for h in plain_rows(session, HouseholdRecord, *active_now)
            if h.active or h.id in since.deactivated
        }
        readings = plain_rows(session, ReadingRecord, ReadingRecord.slot == slot, *readings_before)
        # The contract keeps a slot's energy in word slot % KEPT_SLOTS of the household's ring
        # until a reading for a later slot of that word overwrites it, at slot + KEPT_SLOTS
        # at the earliest: so once any reading for slot + KEPT_SLOTS or later is committed,
        # the slot is left out here (never later than the chain drops it; a meter that skipped
        # slots may leave it on chain a little longer).
        # By slot only and without DISTINCT, so that the slot index answers it from the newest
        # readings (by household, or distinct, it read each household's whole history).
        gone = set(
            session.exec(
                select(ReadingRecord.household).where(
                    ReadingRecord.slot >= slot + KEPT_SLOTS, *readings_before
                )
            ).all()
        )
        fills = plain_rows(session, FillRecord, FillRecord.slot == slot, *fills_before)
        # Open ones, or (as it stood before a block) the ones open then.
        open_now = [col(OrderRecord.open)] if before_block is None else []
        orders = [
            o
            for o in plain_rows(
                session,
                OrderRecord,
                *open_now,
                OrderRecord.first_slot <= slot,
                OrderRecord.last_slot >= slot,
            )
            if (o.open or (o.side, o.order_id) in since.closed)
            and (o.side, o.order_id) not in since.posted
        ]
        accounts = [h.account for h in households.values()]
        balances = {
            b.account: b.balance_ueur
            for b in plain_rows(session, BalanceRecord, col(BalanceRecord.account).in_(accounts))
        }

    sold: dict[int, int] = defaultdict(int)
    bought: dict[int, int] = defaultdict(int)
    offer_used: dict[int, int] = defaultdict(int)
    bid_used: dict[int, int] = defaultdict(int)
    for f in fills:
        sold[f.seller] += f.energy_Wh
        bought[f.buyer] += f.energy_Wh
        offer_used[f.offer_id] += f.energy_Wh
        if f.bid_id:
            bid_used[f.bid_id] += f.energy_Wh

    book: list[BookOrder] = []
    dearest_bid: dict[int, int] = {}
    for o in sorted(orders, key=lambda o: (o.side, o.order_id)):
        if o.household not in households:
            continue
        side = Side.OFFER if o.side == "offer" else Side.BID
        used = (offer_used if side is Side.OFFER else bid_used)[o.order_id]
        cap: int | None = None
        if o.max_Wh_per_slot:
            cap = o.max_Wh_per_slot - used
            if cap <= 0:
                continue
        limit = o.price_limit_ueur_per_kWh
        if adjust is not None:
            limit = adjust(o.side, o.household, limit, slot)
        if side is Side.BID:
            dearest_bid[o.household] = max(dearest_bid.get(o.household, 0), limit)
        book.append(BookOrder(o.order_id, o.household, side, limit, cap, o.order_id))

    ceiling = tariffs.retail_ueur_per_kWh - tariffs.grid_fee_ueur_per_kWh
    surplus: dict[int, int] = {}
    deficit: dict[int, int] = {}
    for r in readings:
        if r.household not in households or r.household in gone:
            continue
        surplus[r.household] = max(r.export_delta_Wh - sold[r.household], 0)
        left = max(r.import_delta_Wh - bought[r.household], 0)
        if left and r.household in dearest_bid:
            balance = balances.get(households[r.household].account, 0)
            if balance_caps is not None and r.household in balance_caps:
                balance = balance_caps[r.household]
            price = min(dearest_bid[r.household], ceiling)
            left = min(left, _affordable_Wh(balance, price, tariffs.grid_fee_ueur_per_kWh))
        deficit[r.household] = left
    return SlotBook(slot, tuple(book), surplus, deficit, len(readings))


def load_statement(engine: Engine, household: int, first_slot: int, last_slot: int) -> Statement:
    """The statement of ``household`` over ``[first_slot, last_slot]`` from the mirror."""
    return load_statements(engine, [household], first_slot, last_slot)[0]


def load_statements(
    engine: Engine, households: Sequence[int], first_slot: int, last_slot: int
) -> list[Statement]:
    """The statements of ``households`` (in that order) over ``[first_slot, last_slot]`` from
    the mirror, read with six queries whatever their number (a run's report builds every
    household's statement), day-ahead positions included (``forward_position``). Raises
    :class:`MarketDataError` for a household not registered."""
    wanted = set(households)
    with Session(engine) as session:
        known = set(
            session.exec(
                select(HouseholdRecord.id).where(col(HouseholdRecord.id).in_(wanted))
            ).all()
        )
        for household in households:
            if household not in known:
                raise MarketDataError(f"household {household} is not registered (or not indexed)")
        schedule = tariff_schedule(session)
        readings = plain_rows(
            session,
            ReadingRecord,
            col(ReadingRecord.household).in_(wanted),
            ReadingRecord.slot >= first_slot,
            ReadingRecord.slot <= last_slot,
        )
        fills = plain_rows(
            session,
            FillRecord,
            col(FillRecord.buyer).in_(wanted) | col(FillRecord.seller).in_(wanted),
            FillRecord.slot >= first_slot,
            FillRecord.slot <= last_slot,
        )
        positions = plain_rows(
            session,
            ForwardRecord,
            col(ForwardRecord.buyer).in_(wanted) | col(ForwardRecord.seller).in_(wanted),
            ForwardRecord.slot >= first_slot,
            ForwardRecord.slot <= last_slot,
        )
        settled = set(
            session.exec(
                select(SlotOutcomeRecord.slot).where(
                    SlotOutcomeRecord.status == SETTLED,
                    SlotOutcomeRecord.slot >= first_slot,
                    SlotOutcomeRecord.slot <= last_slot,
                )
            ).all()
        )
    metered: dict[int, list[MeteredSlot]] = defaultdict(list)
    for r in readings:
        metered[r.household].append(
            MeteredSlot(
                r.slot, r.import_delta_Wh, r.export_delta_Wh, schedule.at_block(r.block_number)
            )
        )
    trades: dict[int, list[TradeLine]] = defaultdict(list)
    for f in fills:
        line = TradeLine(
            f.slot,
            f.seller,
            f.buyer,
            f.energy_Wh,
            f.price_ueur_per_kWh,
            f.cost_ueur,
            f.fee_ueur,
            day_ahead=is_forward_delivery(f.offer_id, f.bid_id),
        )
        for party in {f.buyer, f.seller} & wanted:
            trades[party].append(line)
    forwards: dict[int, list[ForwardLine]] = defaultdict(list)
    for p in positions:
        position = ForwardLine(
            p.forward_id,
            p.slot,
            p.seller,
            p.buyer,
            p.energy_Wh,
            p.price_ueur_per_kWh,
            p.reserved_ueur,
            p.delivered_Wh,
            p.shortfall_Wh,
            p.cost_ueur,
            p.fee_ueur,
            p.refund_ueur,
        )
        for party in {p.buyer, p.seller} & wanted:
            forwards[party].append(position)
    return [
        build_statement(h, first_slot, last_slot, metered[h], trades[h], settled, forwards[h])
        for h in households
    ]
