"""Day-ahead clearing (pure): households' forecasts of tomorrow become forward positions.

Before a day starts, each household's agent commits, for each slot of the day, an offer for
part of its expected surplus or a bid for part of its expected deficit. Each slot's book is
cleared ahead with the same mechanisms as the real-time market
(:data:`ledger.market.clearing.MECHANISMS`) into :class:`ledger.types.Forward` positions, which
the settlement worker sends with ``clearForwards`` (the contract reserves the buyer's funds).
When the slot is metered, the forwards are delivered as far as the metered energy allows; what
deviates from them goes to the real-time market, then to the grid.

The rule, per slot and household (:class:`DayAheadRule`):

- **Quantity.** The forecast net position (export minus import, Wh) is committed in part:
  ``commit_ppm`` parts per million of it, rounded down (80 % by default). A forecast misses
  (about a quarter of the mean a day ahead, see ``report.json``'s ``forecast``); committing
  less than the forecast leaves room for that error, so that fewer positions exceed what is
  metered (a shortfall: the position is not delivered in full). A household with an expected
  surplus offers, one with an expected deficit bids; commitments under ``min_Wh`` are not
  made (a forward costs gas whatever its size).
- **Price limits.** The household's own, as in the real-time market: the limits its agent
  posts as standing orders (:func:`ledger.market.agents.standing_limits`: by default an offer
  at feed-in + 0.02 EUR/kWh, a bid at retail - grid fee - 0.02 EUR/kWh), tightened for the slot
  by its ramp or strategy (:func:`ledger.market.agents.effective_limit`, one step: the gate's
  close). So every forward price lies in ``[feed-in, retail - grid fee]``.
- **Funds.** A buyer's forwards of the whole day must be payable from its balance at the time
  of clearing (the contract reserves each position's cost and grid fee). Slots are cleared in
  time order; before each, a buyer's bid is capped to what its funds left can pay at its limit
  plus the grid fee, and after it the day's reservation grows by each forward's
  ``ceil(energy * (price + fee) / 1000)`` micro-euro (never below what the contract takes,
  however it rounds).

Order ids in the books are the household ids (one offer or one bid per household and slot),
so each fill maps back to a (seller, buyer) pair; a household has a surplus or a deficit in a
slot, never both, and clearing never matches a household with itself. Nothing here does I/O:
the same inputs give the same forwards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ledger.errors import LedgerError
from ledger.market.agents import AgentSettings, effective_limit, standing_limits
from ledger.market.clearing import MECHANISMS, BookOrder, Mechanism, Side
from ledger.types import Forward, Tariffs

__all__ = [
    "DEFAULT_COMMIT_PPM",
    "PPM",
    "DayAheadError",
    "DayAheadResult",
    "DayAheadRule",
    "DayAheadSlot",
    "clear_day_ahead",
    "committed_Wh",
    "forecasts_by_slot",
    "forward_reserve_ueur",
]

#: Parts per million.
PPM = 1_000_000
#: The share of its forecast a household commits by default: 80 %. On the default street's
#: June day (30 households, BENCHMARKS.md, "Markets") 50, 80 and 100 % delivered 88, 81 and
#: 71 % of the positions: from 80 % to 100 % each extra committed kWh fell short more often
#: than it was delivered (5.9 kWh more delivered, 11.3 kWh more short).
DEFAULT_COMMIT_PPM = 800_000


class DayAheadError(LedgerError, ValueError):
    """Day-ahead inputs that cannot be cleared (an unknown mechanism, a share outside
    [0, 1], a forecast or a balance that is not an integer)."""


@dataclass(frozen=True, slots=True)
class DayAheadRule:
    """How much of its forecast a household commits: ``commit_ppm`` of it (ppm, rounded
    down), and nothing below ``min_Wh``."""

    commit_ppm: int = DEFAULT_COMMIT_PPM
    min_Wh: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.commit_ppm, bool) or not isinstance(self.commit_ppm, int):
            raise DayAheadError(f"commit_ppm must be an integer (ppm), got {self.commit_ppm!r}")
        if not 0 <= self.commit_ppm <= PPM:
            raise DayAheadError(
                f"commit_ppm must be between 0 and {PPM} (all of the forecast), "
                f"got {self.commit_ppm}"
            )
        if isinstance(self.min_Wh, bool) or not isinstance(self.min_Wh, int) or self.min_Wh < 1:
            raise DayAheadError(f"min_Wh must be an integer >= 1 Wh, got {self.min_Wh!r}")


@dataclass(frozen=True, slots=True)
class DayAheadSlot:
    """One slot cleared ahead: its forwards, the Wh offered and bid (after the funds cap), and
    the uniform price if the mechanism sets one."""

    slot: int
    forwards: tuple[Forward, ...]
    offered_Wh: int
    bid_Wh: int
    clearing_price_ueur_per_kWh: int | None

    @property
    def energy_Wh(self) -> int:
        return sum(f.energy_Wh for f in self.forwards)


@dataclass(frozen=True, slots=True)
class DayAheadResult:
    """The cleared day: its slots in time order, and what each buyer's forwards reserve
    (micro-euro, by household, an upper bound of what the contract takes)."""

    slots: tuple[DayAheadSlot, ...]
    reserved_ueur: dict[int, int] = field(default_factory=dict)

    @property
    def forwards(self) -> int:
        return sum(len(s.forwards) for s in self.slots)

    @property
    def energy_Wh(self) -> int:
        return sum(s.energy_Wh for s in self.slots)


def committed_Wh(forecast_net_Wh: int, rule: DayAheadRule) -> int:
    """The Wh a household commits for a forecast net position (signed: > 0 offers, < 0 bids,
    0 nothing): ``commit_ppm`` of it, rounded toward zero, nothing under ``min_Wh``."""
    if isinstance(forecast_net_Wh, bool) or not isinstance(forecast_net_Wh, int):
        raise DayAheadError(f"a forecast must be an integer of Wh, got {forecast_net_Wh!r}")
    size = abs(forecast_net_Wh) * rule.commit_ppm // PPM
    if size < rule.min_Wh:
        return 0
    return size if forecast_net_Wh > 0 else -size


def forward_reserve_ueur(energy_Wh: int, price_ueur_per_kWh: int, tariffs: Tariffs) -> int:
    """What a forward's buyer must hold for it (micro-euro): its cost and grid fee, rounded up
    (``ceil(energy * (price + fee) / 1000)``, at least the two rounded-down parts the contract
    charges)."""
    per_kWh = price_ueur_per_kWh + tariffs.grid_fee_ueur_per_kWh
    return -(-energy_Wh * per_kWh // 1000)


def _affordable_Wh(funds_ueur: int, limit_ueur_per_kWh: int, tariffs: Tariffs) -> int:
    """The most Wh whose reservation at a price up to ``limit`` fits ``funds_ueur``."""
    per_kWh = limit_ueur_per_kWh + tariffs.grid_fee_ueur_per_kWh
    if per_kWh == 0:
        return 2**63 - 1
    # ceil(e * q / 1000) <= funds  <=>  e * q <= funds * 1000.
    return max(funds_ueur, 0) * 1000 // per_kWh


def _mechanism(mechanism: str | Mechanism) -> Mechanism:
    if isinstance(mechanism, str):
        if mechanism not in MECHANISMS:
            raise DayAheadError(
                f"unknown clearing mechanism {mechanism!r}; choose one of "
                + ", ".join(sorted(MECHANISMS))
            )
        return MECHANISMS[mechanism]
    return mechanism


def clear_day_ahead(
    forecasts: Mapping[int, Mapping[int, int]],
    tariffs: Tariffs,
    mechanism: str | Mechanism = "pay-as-clear",
    *,
    settings: Mapping[int, AgentSettings] | None = None,
    funds_ueur: Mapping[int, int] | None = None,
    rule: DayAheadRule | None = None,
) -> DayAheadResult:
    """Clear each slot of ``forecasts`` ahead into forwards (see the module docstring).

    ``forecasts`` maps a slot to each household's forecast net position for it (export minus
    import, Wh; a household missing from a slot commits nothing). ``settings`` gives each
    household's agent settings (a household without any has the default ones); ``funds_ueur``
    each buyer's balance at the time of clearing (a household without one cannot buy; ``None``
    leaves the funds unchecked). Slots are cleared in increasing order, households in
    increasing id order within a slot.
    """
    clear = _mechanism(mechanism)
    rule = rule or DayAheadRule()
    agents = settings or {}
    default = AgentSettings()
    funds_left = None if funds_ueur is None else dict(funds_ueur)
    reserved: dict[int, int] = {}
    out: list[DayAheadSlot] = []
    for slot in sorted(forecasts):
        orders: list[BookOrder] = []
        surplus: dict[int, int] = {}
        deficit: dict[int, int] = {}
        for household in sorted(forecasts[slot]):
            wh = committed_Wh(forecasts[slot][household], rule)
            if wh == 0:
                continue
            own = agents.get(household, default)
            side = Side.OFFER if wh > 0 else Side.BID
            posted = standing_limits(own, tariffs)[0 if wh > 0 else 1]
            limit = effective_limit(side.value, posted, own, slot, tariffs)
            size = abs(wh)
            if side is Side.BID and funds_left is not None:
                size = min(size, _affordable_Wh(funds_left.get(household, 0), limit, tariffs))
                if size == 0:
                    continue
            (surplus if side is Side.OFFER else deficit)[household] = size
            orders.append(BookOrder(household, household, side, limit, None, household))
        result = clear(orders, surplus, deficit, tariffs)
        forwards = tuple(
            Forward(f.offer_id, f.bid_id, f.energy_Wh, f.price_ueur_per_kWh) for f in result.fills
        )
        for fw in forwards:
            cost = forward_reserve_ueur(fw.energy_Wh, fw.price_ueur_per_kWh, tariffs)
            reserved[fw.buyer] = reserved.get(fw.buyer, 0) + cost
            if funds_left is not None:
                funds_left[fw.buyer] = funds_left.get(fw.buyer, 0) - cost
        out.append(
            DayAheadSlot(
                slot,
                forwards,
                sum(surplus.values()),
                sum(deficit.values()),
                result.clearing_price_ueur_per_kWh,
            )
        )
    return DayAheadResult(tuple(out), dict(sorted(reserved.items())))


def forecasts_by_slot(
    first_slot: int, net_Wh: Mapping[int, Sequence[int]]
) -> dict[int, dict[int, int]]:
    """``{slot: {household: Wh}}`` from each household's forecasts of consecutive slots from
    ``first_slot`` (``net_Wh[household][k]`` is for ``first_slot + k``)."""
    out: dict[int, dict[int, int]] = {}
    for household, series in net_Wh.items():
        for k, wh in enumerate(series):
            out.setdefault(first_slot + k, {})[household] = int(wh)
    return out
