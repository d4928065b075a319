"""Household statements: local trades, grid residuals, and savings against grid-only supply.

Pure functions over a household's metered slots and its settled fills. For every slot:

- the metered import is covered by local purchases first, and the rest (the residual) comes from
  the grid at the retail tariff: ``import = bought + grid_import``;
- the metered export goes to local sales first, and the rest goes to the grid at the feed-in
  tariff: ``export = sold + grid_export``;
- local purchases cost the fill's ``cost`` plus its grid ``fee`` (the integers the contract
  debited), and local sales earn the fill's ``cost`` (the integer it credited).

Grid residuals are priced per slot, rounded down like fills: ``Wh * tariff // 1000``. The
tariffs of a slot are those in force when its reading was committed.

A slot is **pending** until the settlement has run for it (its local trades are not final, so
neither is what came from or went to the grid): a pending line keeps its metered energy and any
direct takes already settled, puts the rest under ``pending_import_Wh``/``pending_export_Wh``
instead of the grid, and prices no grid energy. Only **settled** lines count in the grid totals
and the savings; every line says which it is (``status``).

**Savings** compare with the same meter data and no local market: grid-only supply would have
cost ``import * retail // 1000 - export * feed_in // 1000`` per slot. Savings are that minus the
household's actual net cost (local payments and fees, plus grid import, minus local earnings and
grid export revenue). They can be negative, e.g. when a buyer's bid is above retail all in.

**Two stages.** A slot's local trades come from the day-ahead market (forward positions cleared
before the slot, delivered after it is metered: a fill with offer id 0 and bid id 0, a
``TradeLine`` with ``day_ahead``) and from the real-time market (the slot's batches and direct
takes). ``bought = day_ahead_bought + realtime_bought`` and likewise for sales, and the day-ahead
part of the money is ``day_ahead_paid``, ``day_ahead_fees`` and ``day_ahead_earned`` (already in
``paid_local``, ``fees`` and ``earned_local``). A position's shortfall (what its seller did not
export or its buyer did not import) was covered by the real-time market or the grid: the line
shows it as ``day_ahead_short_bought_Wh``/``day_ahead_short_sold_Wh``. Until a position settles,
its buyer's reservation (cost and grid fee at the clearing tariffs) is held in escrow: the
statement's ``escrow_reserved_ueur`` over its ``open_forwards``. It is no cost: settlement gives
it back and charges the delivery as a fill. Without forwards every one of these is zero (the
real-time fields equal the totals) and the other fields read as they always did.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, fields

from ledger.errors import LedgerError
from ledger.types import Tariffs

__all__ = [
    "PENDING",
    "SETTLED",
    "ForwardLine",
    "MeteredSlot",
    "SlotLine",
    "Statement",
    "StatementError",
    "TradeLine",
    "build_statement",
    "is_forward_delivery",
]


SETTLED = "settled"
PENDING = "pending"


class StatementError(LedgerError, ValueError):
    """The data for a statement is inconsistent (e.g. more bought than metered)."""


@dataclass(frozen=True, slots=True)
class MeteredSlot:
    """A household's metered energy in one slot (the deltas of its committed reading)."""

    slot: int
    import_Wh: int
    export_Wh: int
    tariffs: Tariffs


@dataclass(frozen=True, slots=True)
class TradeLine:
    """A settled fill as the contract recorded it (``FillSettled``). ``day_ahead``: the fill
    delivers a forward position (offer id 0 and bid id 0), else it is a real-time trade."""

    slot: int
    seller: int
    buyer: int
    energy_Wh: int
    price_ueur_per_kWh: int
    cost_ueur: int
    fee_ueur: int
    day_ahead: bool = False


def is_forward_delivery(offer_id: int, bid_id: int) -> bool:
    """A fill with offer id 0 and bid id 0 delivers a forward position (bid id 0 alone, with
    an offer id, is a direct take)."""
    return offer_id == 0 and bid_id == 0


@dataclass(frozen=True, slots=True)
class ForwardLine:
    """A day-ahead position as the contract recorded it: cleared (``ForwardCleared``: the
    buyer's ``reserved_ueur`` moved to escrow) and, once its slot is metered, settled
    (``ForwardSettled``: ``delivered_Wh`` went as a fill, ``shortfall_Wh`` did not, the buyer
    got ``refund_ueur`` of its reservation back). The settlement's fields are ``None`` while
    the position is open."""

    forward_id: int
    slot: int
    seller: int
    buyer: int
    energy_Wh: int
    price_ueur_per_kWh: int
    reserved_ueur: int
    delivered_Wh: int | None = None
    shortfall_Wh: int | None = None
    cost_ueur: int | None = None
    fee_ueur: int | None = None
    refund_ueur: int | None = None

    @property
    def open(self) -> bool:
        return self.delivered_Wh is None


@dataclass(frozen=True, slots=True)
class SlotLine:
    """One slot of a statement. Money in micro-euro, energy in Wh. On a pending line the grid
    fields are zero and the metered energy not yet traded is under ``pending_*``.
    ``bought_at_retail_ueur`` and ``sold_at_feed_in_ueur`` are what the energy traded locally
    would have cost from the grid and earned from it (what a buyer and a seller compare with).
    The ``day_ahead_*`` and ``realtime_*`` fields split the local trades by market (see the
    module's docstring)."""

    slot: int
    status: str
    import_Wh: int
    export_Wh: int
    bought_Wh: int
    sold_Wh: int
    grid_import_Wh: int
    grid_export_Wh: int
    paid_local_ueur: int
    fees_ueur: int
    earned_local_ueur: int
    grid_import_cost_ueur: int
    grid_export_revenue_ueur: int
    grid_only_cost_ueur: int
    bought_at_retail_ueur: int
    sold_at_feed_in_ueur: int
    pending_import_Wh: int = 0
    pending_export_Wh: int = 0
    day_ahead_bought_Wh: int = 0
    day_ahead_sold_Wh: int = 0
    realtime_bought_Wh: int = 0
    realtime_sold_Wh: int = 0
    day_ahead_paid_ueur: int = 0
    day_ahead_fees_ueur: int = 0
    day_ahead_earned_ueur: int = 0
    day_ahead_short_bought_Wh: int = 0
    day_ahead_short_sold_Wh: int = 0

    @property
    def net_cost_ueur(self) -> int:
        return (
            self.paid_local_ueur
            + self.fees_ueur
            + self.grid_import_cost_ueur
            - self.earned_local_ueur
            - self.grid_export_revenue_ueur
        )


#: Every summed quantity of a line (all its fields but the slot and its status).
_TOTALS = tuple(f.name for f in fields(SlotLine) if f.name not in ("slot", "status"))


@dataclass(frozen=True, slots=True)
class Statement:
    """A household's bill for slots ``first_slot..last_slot`` (inclusive), with totals.
    ``savings_ueur`` covers the settled lines only; ``pending_slots`` counts the others.
    ``forwards`` holds the household's day-ahead positions of the period (as buyer or seller),
    metered or not; ``escrow_reserved_ueur`` is what its ``open_forwards`` as buyer hold in
    escrow."""

    household: int
    first_slot: int
    last_slot: int
    lines: tuple[SlotLine, ...]
    import_Wh: int
    export_Wh: int
    bought_Wh: int
    sold_Wh: int
    grid_import_Wh: int
    grid_export_Wh: int
    paid_local_ueur: int
    fees_ueur: int
    earned_local_ueur: int
    grid_import_cost_ueur: int
    grid_export_revenue_ueur: int
    grid_only_cost_ueur: int
    bought_at_retail_ueur: int
    sold_at_feed_in_ueur: int
    pending_import_Wh: int
    pending_export_Wh: int
    net_cost_ueur: int
    savings_ueur: int
    pending_slots: int
    day_ahead_bought_Wh: int = 0
    day_ahead_sold_Wh: int = 0
    realtime_bought_Wh: int = 0
    realtime_sold_Wh: int = 0
    day_ahead_paid_ueur: int = 0
    day_ahead_fees_ueur: int = 0
    day_ahead_earned_ueur: int = 0
    day_ahead_short_bought_Wh: int = 0
    day_ahead_short_sold_Wh: int = 0
    forwards: tuple[ForwardLine, ...] = ()
    open_forwards: int = 0
    escrow_reserved_ueur: int = 0

    def as_dict(self) -> dict[str, object]:
        """The statement as plain JSON-ready data (lines and forward positions included)."""
        out: dict[str, object] = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("lines", "forwards")
        }
        out["forwards"] = [{f.name: getattr(p, f.name) for f in fields(p)} for p in self.forwards]
        out["lines"] = [
            {
                **{f.name: getattr(line, f.name) for f in fields(line)},
                "net_cost_ueur": line.net_cost_ueur,
            }
            for line in self.lines
        ]
        return out


def _grid_price(energy_Wh: int, price_ueur_per_kWh: int) -> int:
    return energy_Wh * price_ueur_per_kWh // 1000


@dataclass
class _Slot:
    """One slot's local trades of one household, summed, and its day-ahead part."""

    bought: int = 0
    sold: int = 0
    paid: int = 0
    fees: int = 0
    earned: int = 0
    day_ahead_bought: int = 0
    day_ahead_sold: int = 0
    day_ahead_paid: int = 0
    day_ahead_fees: int = 0
    day_ahead_earned: int = 0
    short_bought: int = 0
    short_sold: int = 0


def _line(m: MeteredSlot, t: _Slot, settled: bool) -> SlotLine:
    """One slot's line: the residuals go to the grid once the slot is settled, and are
    pending before."""
    retail, feed_in = m.tariffs.retail_ueur_per_kWh, m.tariffs.feed_in_ueur_per_kWh
    bought, sold = t.bought, t.sold
    rest_in, rest_out = m.import_Wh - bought, m.export_Wh - sold
    common = {
        "slot": m.slot,
        "import_Wh": m.import_Wh,
        "export_Wh": m.export_Wh,
        "bought_Wh": bought,
        "sold_Wh": sold,
        "paid_local_ueur": t.paid,
        "fees_ueur": t.fees,
        "earned_local_ueur": t.earned,
        "bought_at_retail_ueur": _grid_price(bought, retail),
        "sold_at_feed_in_ueur": _grid_price(sold, feed_in),
        "day_ahead_bought_Wh": t.day_ahead_bought,
        "day_ahead_sold_Wh": t.day_ahead_sold,
        "realtime_bought_Wh": bought - t.day_ahead_bought,
        "realtime_sold_Wh": sold - t.day_ahead_sold,
        "day_ahead_paid_ueur": t.day_ahead_paid,
        "day_ahead_fees_ueur": t.day_ahead_fees,
        "day_ahead_earned_ueur": t.day_ahead_earned,
        "day_ahead_short_bought_Wh": t.short_bought,
        "day_ahead_short_sold_Wh": t.short_sold,
    }
    if not settled:
        return SlotLine(
            status=PENDING,
            grid_import_Wh=0,
            grid_export_Wh=0,
            grid_import_cost_ueur=0,
            grid_export_revenue_ueur=0,
            grid_only_cost_ueur=0,
            pending_import_Wh=rest_in,
            pending_export_Wh=rest_out,
            **common,
        )
    return SlotLine(
        status=SETTLED,
        grid_import_Wh=rest_in,
        grid_export_Wh=rest_out,
        grid_import_cost_ueur=_grid_price(rest_in, retail),
        grid_export_revenue_ueur=_grid_price(rest_out, feed_in),
        grid_only_cost_ueur=_grid_price(m.import_Wh, retail) - _grid_price(m.export_Wh, feed_in),
        **common,
    )


def build_statement(
    household: int,
    first_slot: int,
    last_slot: int,
    metered: Iterable[MeteredSlot],
    trades: Iterable[TradeLine],
    settled: Collection[int],
    forwards: Iterable[ForwardLine] = (),
) -> Statement:
    """The statement of ``household`` over ``[first_slot, last_slot]``.

    ``metered`` holds the household's metered slots and ``trades`` the fills it took part in
    (others are ignored); both may include slots outside the period, which are left out.
    ``settled`` holds the slots the settlement has run for; the others are pending.
    ``forwards`` holds its day-ahead positions (others and other periods' are ignored): their
    deliveries are among ``trades`` (``day_ahead``); the positions add their shortfalls to
    the lines and their open reservations to the statement. A fill in a slot without a
    metered reading, or more energy traded than metered, raises :class:`StatementError`: the
    contract never settles such a fill, so the data is wrong.
    """
    if first_slot > last_slot:
        raise StatementError(f"the period is empty: from slot {first_slot} to {last_slot}")
    meters: dict[int, MeteredSlot] = {}
    for m in metered:
        if first_slot <= m.slot <= last_slot:
            if m.slot in meters:
                raise StatementError(f"slot {m.slot} is metered twice for household {household}")
            meters[m.slot] = m
    per: dict[int, _Slot] = defaultdict(_Slot)
    for t in trades:
        if not first_slot <= t.slot <= last_slot or household not in (t.buyer, t.seller):
            continue
        if t.slot not in meters:
            raise StatementError(
                f"household {household} traded in slot {t.slot}, which has no metered reading"
            )
        s = per[t.slot]
        if t.buyer == household:
            s.bought += t.energy_Wh
            s.paid += t.cost_ueur
            s.fees += t.fee_ueur
            if t.day_ahead:
                s.day_ahead_bought += t.energy_Wh
                s.day_ahead_paid += t.cost_ueur
                s.day_ahead_fees += t.fee_ueur
        if t.seller == household:
            s.sold += t.energy_Wh
            s.earned += t.cost_ueur
            if t.day_ahead:
                s.day_ahead_sold += t.energy_Wh
                s.day_ahead_earned += t.cost_ueur
    positions = sorted(
        (
            p
            for p in forwards
            if first_slot <= p.slot <= last_slot and household in (p.buyer, p.seller)
        ),
        key=lambda p: p.forward_id,
    )
    for p in positions:
        if p.shortfall_Wh and p.slot in meters:
            if p.buyer == household:
                per[p.slot].short_bought += p.shortfall_Wh
            if p.seller == household:
                per[p.slot].short_sold += p.shortfall_Wh

    lines: list[SlotLine] = []
    for slot in sorted(meters):
        m, day = meters[slot], per[slot]
        if day.bought > m.import_Wh or day.sold > m.export_Wh:
            raise StatementError(
                f"household {household}, slot {slot}: bought {day.bought} Wh of "
                f"{m.import_Wh} imported, sold {day.sold} Wh of {m.export_Wh} exported"
            )
        lines.append(_line(m, day, slot in settled))
    totals = {name: sum(getattr(line, name) for line in lines) for name in _TOTALS}
    reserving = [p for p in positions if p.open and p.buyer == household]
    net = sum(line.net_cost_ueur for line in lines)
    settled_net = sum(line.net_cost_ueur for line in lines if line.status == SETTLED)
    return Statement(
        household=household,
        first_slot=first_slot,
        last_slot=last_slot,
        lines=tuple(lines),
        net_cost_ueur=net,
        savings_ueur=totals["grid_only_cost_ueur"] - settled_net,
        pending_slots=sum(1 for line in lines if line.status == PENDING),
        forwards=tuple(positions),
        open_forwards=len(reserving),
        escrow_reserved_ueur=sum(p.reserved_ueur for p in reserving),
        **totals,
    )
