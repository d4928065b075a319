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
    "MeteredSlot",
    "SlotLine",
    "Statement",
    "StatementError",
    "TradeLine",
    "build_statement",
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
    """A settled fill as the contract recorded it (``FillSettled``)."""

    slot: int
    seller: int
    buyer: int
    energy_Wh: int
    price_ueur_per_kWh: int
    cost_ueur: int
    fee_ueur: int


@dataclass(frozen=True, slots=True)
class SlotLine:
    """One slot of a statement. Money in micro-euro, energy in Wh. On a pending line the grid
    fields are zero and the metered energy not yet traded is under ``pending_*``.
    ``bought_at_retail_ueur`` and ``sold_at_feed_in_ueur`` are what the energy traded locally
    would have cost from the grid and earned from it (what a buyer and a seller compare with)."""

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
    ``savings_ueur`` covers the settled lines only; ``pending_slots`` counts the others."""

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

    def as_dict(self) -> dict[str, object]:
        """The statement as plain JSON-ready data (lines included)."""
        out: dict[str, object] = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name != "lines"
        }
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


def _line(
    m: MeteredSlot, bought: int, sold: int, paid: int, fees: int, earned: int, settled: bool
) -> SlotLine:
    """One slot's line: the residuals go to the grid once the slot is settled, and are
    pending before."""
    retail, feed_in = m.tariffs.retail_ueur_per_kWh, m.tariffs.feed_in_ueur_per_kWh
    rest_in, rest_out = m.import_Wh - bought, m.export_Wh - sold
    common = {
        "slot": m.slot,
        "import_Wh": m.import_Wh,
        "export_Wh": m.export_Wh,
        "bought_Wh": bought,
        "sold_Wh": sold,
        "paid_local_ueur": paid,
        "fees_ueur": fees,
        "earned_local_ueur": earned,
        "bought_at_retail_ueur": _grid_price(bought, retail),
        "sold_at_feed_in_ueur": _grid_price(sold, feed_in),
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
) -> Statement:
    """The statement of ``household`` over ``[first_slot, last_slot]``.

    ``metered`` holds the household's metered slots and ``trades`` the fills it took part in
    (others are ignored); both may include slots outside the period, which are left out.
    ``settled`` holds the slots the settlement has run for; the others are pending. A
    fill in a slot without a metered reading, or more energy traded than metered, raises
    :class:`StatementError`: the contract never settles such a fill, so the data is wrong.
    """
    if first_slot > last_slot:
        raise StatementError(f"the period is empty: from slot {first_slot} to {last_slot}")
    meters: dict[int, MeteredSlot] = {}
    for m in metered:
        if first_slot <= m.slot <= last_slot:
            if m.slot in meters:
                raise StatementError(f"slot {m.slot} is metered twice for household {household}")
            meters[m.slot] = m
    bought: dict[int, int] = defaultdict(int)
    sold: dict[int, int] = defaultdict(int)
    paid: dict[int, int] = defaultdict(int)
    fees: dict[int, int] = defaultdict(int)
    earned: dict[int, int] = defaultdict(int)
    for t in trades:
        if not first_slot <= t.slot <= last_slot or household not in (t.buyer, t.seller):
            continue
        if t.slot not in meters:
            raise StatementError(
                f"household {household} traded in slot {t.slot}, which has no metered reading"
            )
        if t.buyer == household:
            bought[t.slot] += t.energy_Wh
            paid[t.slot] += t.cost_ueur
            fees[t.slot] += t.fee_ueur
        if t.seller == household:
            sold[t.slot] += t.energy_Wh
            earned[t.slot] += t.cost_ueur

    lines: list[SlotLine] = []
    for slot in sorted(meters):
        m = meters[slot]
        if bought[slot] > m.import_Wh or sold[slot] > m.export_Wh:
            raise StatementError(
                f"household {household}, slot {slot}: bought {bought[slot]} Wh of "
                f"{m.import_Wh} imported, sold {sold[slot]} Wh of {m.export_Wh} exported"
            )
        done = slot in settled
        lines.append(_line(m, bought[slot], sold[slot], paid[slot], fees[slot], earned[slot], done))
    totals = {name: sum(getattr(line, name) for line in lines) for name in _TOTALS}
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
        **totals,
    )
