"""Pricing strategies for households' agents, each a small seeded class of pure logic.

Every strategy implements :class:`ledger.market.agents.PricingStrategy`: the loosest (offer,
bid) limits it posts on chain, and the limit it wants per slot and per step of the slot's gate.
:func:`ledger.market.agents.effective_limit` clamps that limit into the tariff band
``[feed-in, retail - grid fee]`` and only ever tightens the posted order with it (an offer
trades at ``max(posted, wanted)``, a bid at ``min(posted, wanted)``), so the contract's checks
of the posted orders bound every fill, whatever a strategy wants.

Strategies place their limits in the band by a **position** in parts per million: 0 is the
feed-in tariff, 1,000,000 is ``retail - grid fee`` (the most a buyer can pay before the fee).
The price itself is :func:`band_price`, an integer. So a strategy is independent of the
tariffs in force, and stays inside the band for every tariff.

- :class:`DrawnLimits` ("drawn"): fixed sell and buy limits drawn per household, as households
  of the Quartierstrom pilot set their own limits inside the tariff band.
- :class:`Adaptive` ("adaptive"): a seller starts high and lowers its limit step by step over
  the gate toward its floor, a buyer starts low and raises it toward its cap, in the manner of
  the smart agents of Grid Singularity's exchange (gsy-e).
- :class:`BatteryOwner` ("battery"): the battery already charges on the household's surplus and
  discharges into its deficit (:mod:`meter_sim.battery`); this strategy prices what is left:
  while the battery is not full it sells only at or above a threshold (the charge is kept for
  scarce slots); once full, what spills would go to the grid at feed-in anyway, so it sells at
  its floor.
- :class:`ForecastAware` ("forecast"): prices by the expected neighbourhood net position of the
  slot (a number of Wh, positive for a surplus): dear when a deficit is expected, cheap when a
  surplus is. It takes that number from any forecast.

:func:`clear_over_gate` clears one slot in steps (the gate's time between the slot's opening for
orders and its settlement), each step on what the earlier ones left, with the limits of that
step. :func:`assign_strategies` gives each household of a neighbourhood its strategy, seeded,
for the modes ``default``, ``mixed`` and ``forecast`` (:data:`AGENT_MODES`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from ledger.market.agents import AgentSettingsError, PricingStrategy
from ledger.market.clearing import BookOrder, ClearingResult, Mechanism, Side
from ledger.types import Fill, Tariffs

__all__ = [
    "AGENT_MODES",
    "GATE_STEPS",
    "MIXED_SHARES_PPM",
    "PPM",
    "Adaptive",
    "BatteryOwner",
    "DrawnLimits",
    "ForecastAware",
    "HouseholdInputs",
    "StrategyError",
    "assign_strategies",
    "band_price",
    "check_agents_mode",
    "clear_over_gate",
    "gate_steps_of",
    "household_rng",
    "strategy_counts",
]

#: One whole band, in parts per million: a position of 0 is feed-in, PPM is retail - grid fee.
PPM = 1_000_000
#: The modes ``voisin simulate --agents`` chooses between.
AGENT_MODES = ("default", "mixed", "forecast")
#: Steps in which a slot's gate is cleared when an adaptive agent trades (the price updates of
#: an adaptive agent over the gate: its first limit, three moves, its last).
GATE_STEPS = 5
#: The shares of the ``mixed`` neighbourhood's households without a battery, in ppm; every
#: household with a battery is a battery owner.
MIXED_SHARES_PPM: dict[str, int] = {"drawn": 400_000, "adaptive": 300_000, "forecast": 300_000}


class StrategyError(AgentSettingsError):
    """A strategy's settings that cannot price an order (a position outside the band, an empty
    range, a scale that is not positive, an unknown mode)."""


def _check_position(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise StrategyError(f"{name} must be an integer position in ppm of the band, got {value!r}")
    if not 0 <= value <= PPM:
        raise StrategyError(
            f"{name} must be between 0 (feed-in) and {PPM} (retail - grid fee), got {value}"
        )
    return value


def _check_range(name: str, value: tuple[int, int]) -> tuple[int, int]:
    low, high = value
    _check_position(f"{name}[0]", low)
    _check_position(f"{name}[1]", high)
    if low > high:
        raise StrategyError(f"{name} must be a range (low <= high), got ({low}, {high})")
    return value


def _check_side(side: str) -> None:
    if side not in ("offer", "bid"):
        raise StrategyError(f"side must be 'offer' or 'bid', got {side!r}")


def band_price(tariffs: Tariffs, position_ppm: int) -> int:
    """The price (ueur/kWh) at ``position_ppm`` of the band ``[feed-in, retail - grid fee]``,
    rounded down; always inside the band (an empty band gives feed-in)."""
    floor = tariffs.feed_in_ueur_per_kWh
    width = max(tariffs.retail_ueur_per_kWh - tariffs.grid_fee_ueur_per_kWh - floor, 0)
    return floor + width * min(max(position_ppm, 0), PPM) // PPM


def _lerp(start: int, end: int, done: int, total: int) -> int:
    """``start`` moved toward ``end`` by ``done / total``, in integers (exact, reproducible)."""
    return start + (end - start) * done // total


def household_rng(seed: int, index: int) -> random.Random:
    """The seeded generator of household ``index``'s agent (a string seed is hashed the same
    way in every process, unlike ``hash()``)."""
    return random.Random(f"voisin-agents/{seed}/{index}")


# ───────────────────────────── Strategies ─────────────────────────────


@dataclass(frozen=True, slots=True)
class DrawnLimits:
    """Fixed limits, one pair per household: sell at ``sell_ppm`` of the band or more, buy at
    ``buy_ppm`` or less. :meth:`draw` picks them uniformly from two ranges that overlap, so
    that some households trade and some do not, and the price varies with who has energy."""

    sell_ppm: int
    buy_ppm: int

    #: The range a seller's limit is drawn from (ppm of the band).
    SELL_RANGE_PPM = (0, 600_000)
    #: The range a buyer's limit is drawn from (ppm of the band).
    BUY_RANGE_PPM = (400_000, PPM)

    def __post_init__(self) -> None:
        _check_position("sell_ppm", self.sell_ppm)
        _check_position("buy_ppm", self.buy_ppm)

    @classmethod
    def draw(
        cls,
        rng: random.Random,
        sell_range_ppm: tuple[int, int] = SELL_RANGE_PPM,
        buy_range_ppm: tuple[int, int] = BUY_RANGE_PPM,
    ) -> DrawnLimits:
        """Limits drawn uniformly (integers, both ends included) from the two ranges."""
        sell_low, sell_high = _check_range("sell_range_ppm", sell_range_ppm)
        buy_low, buy_high = _check_range("buy_range_ppm", buy_range_ppm)
        return cls(rng.randint(sell_low, sell_high), rng.randint(buy_low, buy_high))

    @property
    def name(self) -> str:
        return "drawn"

    @property
    def gate_steps(self) -> int:
        return 1

    def standing_limits(self, tariffs: Tariffs) -> tuple[int, int]:
        return band_price(tariffs, self.sell_ppm), band_price(tariffs, self.buy_ppm)

    def limit(self, side: str, slot: int, tariffs: Tariffs, step: int, steps: int) -> int:
        _check_side(side)
        return band_price(tariffs, self.sell_ppm if side == "offer" else self.buy_ppm)


@dataclass(frozen=True, slots=True)
class Adaptive:
    """A limit that moves over the slot's gate, step by step: a seller from ``sell_start_ppm``
    down to its floor ``sell_end_ppm``, a buyer from ``buy_start_ppm`` up to its cap
    ``buy_end_ppm`` (linear in the step, rounded down). At step ``k`` of a gate of ``n`` steps
    the position is ``start + (end - start) * k // (n - 1)``; a one-step gate is its close,
    where the limit is the end. The posted order holds the end (the loosest limit); clearing
    tightens it per step. :meth:`draw` draws the floor and the cap per household.
    ``steps`` is how many steps the agent asks the gate to be cleared in."""

    sell_end_ppm: int
    buy_end_ppm: int
    sell_start_ppm: int = PPM
    buy_start_ppm: int = 0
    steps: int = GATE_STEPS

    #: The range a seller's floor is drawn from (ppm of the band).
    SELL_END_RANGE_PPM = (0, 400_000)
    #: The range a buyer's cap is drawn from (ppm of the band).
    BUY_END_RANGE_PPM = (600_000, PPM)

    def __post_init__(self) -> None:
        _check_position("sell_start_ppm", self.sell_start_ppm)
        _check_position("sell_end_ppm", self.sell_end_ppm)
        _check_position("buy_start_ppm", self.buy_start_ppm)
        _check_position("buy_end_ppm", self.buy_end_ppm)
        if self.sell_end_ppm > self.sell_start_ppm:
            raise StrategyError(
                "an adaptive seller lowers its limit: sell_end_ppm must be <= sell_start_ppm, "
                f"got {self.sell_end_ppm} > {self.sell_start_ppm}"
            )
        if self.buy_end_ppm < self.buy_start_ppm:
            raise StrategyError(
                "an adaptive buyer raises its limit: buy_end_ppm must be >= buy_start_ppm, "
                f"got {self.buy_end_ppm} < {self.buy_start_ppm}"
            )
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise StrategyError(f"steps must be an integer >= 1, got {self.steps!r}")

    @classmethod
    def draw(
        cls,
        rng: random.Random,
        sell_end_range_ppm: tuple[int, int] = SELL_END_RANGE_PPM,
        buy_end_range_ppm: tuple[int, int] = BUY_END_RANGE_PPM,
        steps: int = GATE_STEPS,
    ) -> Adaptive:
        """An adaptive agent whose floor and cap are drawn uniformly from the two ranges."""
        sell_low, sell_high = _check_range("sell_end_range_ppm", sell_end_range_ppm)
        buy_low, buy_high = _check_range("buy_end_range_ppm", buy_end_range_ppm)
        return cls(rng.randint(sell_low, sell_high), rng.randint(buy_low, buy_high), steps=steps)

    @property
    def name(self) -> str:
        return "adaptive"

    @property
    def gate_steps(self) -> int:
        return self.steps

    def position(self, side: str, step: int, steps: int) -> int:
        """The position (ppm of the band) at ``step`` of a gate of ``steps``."""
        _check_side(side)
        if steps < 1 or not 0 <= step < steps:
            raise StrategyError(
                f"step must be in [0, steps) with steps >= 1, got {step} of {steps}"
            )
        start, end = (
            (self.sell_start_ppm, self.sell_end_ppm)
            if side == "offer"
            else (self.buy_start_ppm, self.buy_end_ppm)
        )
        return end if steps == 1 else _lerp(start, end, step, steps - 1)

    def standing_limits(self, tariffs: Tariffs) -> tuple[int, int]:
        return band_price(tariffs, self.sell_end_ppm), band_price(tariffs, self.buy_end_ppm)

    def limit(self, side: str, slot: int, tariffs: Tariffs, step: int, steps: int) -> int:
        return band_price(tariffs, self.position(side, step, steps))


@dataclass(frozen=True, slots=True)
class BatteryOwner:
    """Pricing for a household whose battery runs for self-consumption.

    ``state_of_charge_ppm`` maps a slot to the battery's charge at the slot's start, in ppm of
    its capacity (what the household's own battery reports). Below ``full_ppm`` the battery
    still has room, and what the household sells is offered at ``sell_threshold_ppm`` of the
    band or more: energy is kept for scarce slots unless it fetches that price. At or above
    ``full_ppm`` the surplus would spill to the grid at feed-in anyway, so it is offered at
    ``spill_ppm``. It buys at ``buy_ppm`` or less.
    """

    state_of_charge_ppm: Mapping[int, int] = field(default_factory=dict)
    sell_threshold_ppm: int = 600_000
    full_ppm: int = 950_000
    spill_ppm: int = 0
    buy_ppm: int = 500_000

    def __post_init__(self) -> None:
        _check_position("sell_threshold_ppm", self.sell_threshold_ppm)
        _check_position("full_ppm", self.full_ppm)
        _check_position("spill_ppm", self.spill_ppm)
        _check_position("buy_ppm", self.buy_ppm)
        if self.spill_ppm > self.sell_threshold_ppm:
            raise StrategyError(
                "a full battery sells no dearer than the threshold: spill_ppm must be <= "
                f"sell_threshold_ppm, got {self.spill_ppm} > {self.sell_threshold_ppm}"
            )

    @property
    def name(self) -> str:
        return "battery"

    @property
    def gate_steps(self) -> int:
        return 1

    def standing_limits(self, tariffs: Tariffs) -> tuple[int, int]:
        return band_price(tariffs, self.spill_ppm), band_price(tariffs, self.buy_ppm)

    def limit(self, side: str, slot: int, tariffs: Tariffs, step: int, steps: int) -> int:
        _check_side(side)
        if side == "bid":
            return band_price(tariffs, self.buy_ppm)
        full = self.state_of_charge_ppm.get(slot, 0) >= self.full_ppm
        return band_price(tariffs, self.spill_ppm if full else self.sell_threshold_ppm)


#: Expected neighbourhood net position per household (Wh a slot) at which a forecast-aware
#: agent sees full scarcity (or full surplus): 100 Wh a slot is 0.4 kW a household.
SCARCITY_WH_PER_HOUSEHOLD: Final = 100


@dataclass(frozen=True, slots=True)
class ForecastAware:
    """Prices by the expected neighbourhood net position of the slot.

    ``expected_net_Wh`` maps a slot to the neighbourhood's expected export minus import (Wh; a
    slot it lacks counts as balanced). The scarcity is that number's opposite over
    ``scale_Wh``, clamped to [-1, 1]: 1 when a deficit of ``scale_Wh`` or more is expected, -1
    for a surplus as large. A seller's position moves linearly from ``sell_surplus_ppm`` (at
    -1) to ``sell_scarce_ppm`` (at 1), a buyer's from ``buy_surplus_ppm`` to
    ``buy_scarce_ppm``. The posted orders hold the loosest of each pair.
    """

    expected_net_Wh: Mapping[int, int] = field(default_factory=dict)
    scale_Wh: int = 1_000
    sell_surplus_ppm: int = 50_000
    sell_scarce_ppm: int = 850_000
    buy_surplus_ppm: int = 150_000
    buy_scarce_ppm: int = 950_000

    def __post_init__(self) -> None:
        _check_position("sell_surplus_ppm", self.sell_surplus_ppm)
        _check_position("sell_scarce_ppm", self.sell_scarce_ppm)
        _check_position("buy_surplus_ppm", self.buy_surplus_ppm)
        _check_position("buy_scarce_ppm", self.buy_scarce_ppm)
        if isinstance(self.scale_Wh, bool) or not isinstance(self.scale_Wh, int):
            raise StrategyError(f"scale_Wh must be an integer (Wh), got {self.scale_Wh!r}")
        if self.scale_Wh <= 0:
            raise StrategyError(f"scale_Wh must be > 0 Wh, got {self.scale_Wh}")

    @property
    def name(self) -> str:
        return "forecast"

    @property
    def gate_steps(self) -> int:
        return 1

    def scarcity_ppm(self, slot: int) -> int:
        """The expected scarcity of ``slot`` in ppm, from -PPM (surplus) to PPM (deficit)."""
        net_Wh = self.expected_net_Wh.get(slot, 0)
        return min(max(-net_Wh * PPM // self.scale_Wh, -PPM), PPM)

    def position(self, side: str, slot: int) -> int:
        """The position (ppm of the band) the agent wants for ``side`` in ``slot``."""
        _check_side(side)
        surplus, scarce = (
            (self.sell_surplus_ppm, self.sell_scarce_ppm)
            if side == "offer"
            else (self.buy_surplus_ppm, self.buy_scarce_ppm)
        )
        return _lerp(surplus, scarce, self.scarcity_ppm(slot) + PPM, 2 * PPM)

    def standing_limits(self, tariffs: Tariffs) -> tuple[int, int]:
        sell = min(self.sell_surplus_ppm, self.sell_scarce_ppm)
        buy = max(self.buy_surplus_ppm, self.buy_scarce_ppm)
        return band_price(tariffs, sell), band_price(tariffs, buy)

    def limit(self, side: str, slot: int, tariffs: Tariffs, step: int, steps: int) -> int:
        return band_price(tariffs, self.position(side, slot))


# ───────────────────────────── The gate ─────────────────────────────


def gate_steps_of(strategies: Iterable[PricingStrategy | None]) -> int:
    """In how many steps a market of these strategies clears a slot's gate (1 with none)."""
    return max((s.gate_steps for s in strategies if s is not None), default=1)


def clear_over_gate(
    mechanism: Mechanism,
    orders: Iterable[BookOrder],
    surplus: Mapping[int, int],
    deficit: Mapping[int, int],
    tariffs: Tariffs,
    limit_at: Callable[[BookOrder, int], int],
    steps: int,
) -> ClearingResult:
    """Clear one slot in ``steps`` steps of its gate, as a market does that trades while its
    agents update their prices.

    At each step every order trades at ``limit_at(order, step)`` (its posted limit tightened
    for that step), and the mechanism clears what the earlier steps left: each household's
    surplus and deficit and each capped order's cap are reduced by the Wh already matched. The
    fills of all steps are returned in order; each respects its order's limit of its step,
    hence the posted one, and together they respect every surplus, deficit and cap, so the
    contract accepts them as one slot's batches. The clearing price is set only if every fill
    has the same one (else the slot has several prices, as under pay-as-offer).
    """
    if steps < 1:
        raise StrategyError(f"a gate needs at least one step, got {steps}")
    book = tuple(orders)
    household = {(o.side, o.order_id): o.household_id for o in book}
    surplus_left = dict(surplus)
    deficit_left = dict(deficit)
    used_Wh: dict[tuple[Side, int], int] = {}
    fills: list[Fill] = []
    prices: set[int] = set()
    uniform = True
    for step in range(steps):
        stepped: list[BookOrder] = []
        for order in book:
            cap = order.max_Wh_per_slot
            if cap is not None:
                cap -= used_Wh.get((order.side, order.order_id), 0)
                if cap <= 0:
                    continue
            stepped.append(
                replace(order, price_limit_ueur_per_kWh=limit_at(order, step), max_Wh_per_slot=cap)
            )
        result = mechanism(stepped, surplus_left, deficit_left, tariffs)
        if not result.fills:
            continue
        if result.clearing_price_ueur_per_kWh is None:
            uniform = False
        for fill in result.fills:
            fills.append(fill)
            prices.add(fill.price_ueur_per_kWh)
            offer, bid = (Side.OFFER, fill.offer_id), (Side.BID, fill.bid_id)
            used_Wh[offer] = used_Wh.get(offer, 0) + fill.energy_Wh
            used_Wh[bid] = used_Wh.get(bid, 0) + fill.energy_Wh
            surplus_left[household[offer]] -= fill.energy_Wh
            deficit_left[household[bid]] -= fill.energy_Wh
    matched_Wh = sum(f.energy_Wh for f in fills)
    price = next(iter(prices)) if uniform and len(prices) == 1 else None
    return ClearingResult(
        fills=tuple(fills),
        clearing_price_ueur_per_kWh=price,
        matched_Wh=matched_Wh,
        unmatched_surplus_Wh=sum(surplus.values()) - matched_Wh,
        unmatched_deficit_Wh=sum(deficit.values()) - matched_Wh,
    )


# ───────────────────────────── A neighbourhood's agents ─────────────────────────────


@dataclass(frozen=True, slots=True)
class HouseholdInputs:
    """What a household's agent may know: whether it has PV, and, with a battery, the
    battery's charge at each slot's start (ppm of its capacity, by slot)."""

    prosumer: bool
    state_of_charge_ppm: Mapping[int, int] | None = None


def check_agents_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`AGENT_MODES`, else :class:`StrategyError`."""
    if mode not in AGENT_MODES:
        raise StrategyError(f"unknown agents {mode!r}; choose one of {', '.join(AGENT_MODES)}")
    return mode


def _mixed_names(households: Sequence[HouseholdInputs], seed: int) -> list[str]:
    """The ``mixed`` strategy names: battery owners, then the shares of the rest, seeded."""
    names = ["battery" if h.state_of_charge_ppm is not None else "" for h in households]
    rest = [i for i, name in enumerate(names) if not name]
    random.Random(f"voisin-agents-mix/{seed}").shuffle(rest)
    # Exact counts by the largest remainder, so that the shares hold for any size.
    exact = {k: len(rest) * share for k, share in MIXED_SHARES_PPM.items()}
    counts = {k: v // PPM for k, v in exact.items()}
    by_remainder = sorted(MIXED_SHARES_PPM, key=lambda k: (-(exact[k] % PPM), k))
    for k in by_remainder[: len(rest) - sum(counts.values())]:
        counts[k] += 1
    start = 0
    for name in MIXED_SHARES_PPM:
        for i in rest[start : start + counts[name]]:
            names[i] = name
        start += counts[name]
    return names


def assign_strategies(
    mode: str,
    seed: int,
    households: Sequence[HouseholdInputs],
    expected_net_Wh: Mapping[int, int],
    scale_Wh: int,
) -> list[PricingStrategy | None]:
    """Each household's strategy for ``mode``, in the order given (``None``: the default
    standing orders of :class:`ledger.market.agents.AgentSettings`).

    - ``default``: none (today's default standing orders);
    - ``mixed``: every household with a battery a :class:`BatteryOwner`; the others, shuffled
      by ``seed``, :data:`MIXED_SHARES_PPM` of them (40 % drawn limits, 30 % adaptive, 30 %
      forecast-aware);
    - ``forecast``: battery owners as in ``mixed``, every other household forecast-aware.

    Drawn figures come from :func:`household_rng` (``seed`` and the household's index), so the
    same seed gives the same agents. ``expected_net_Wh`` and ``scale_Wh`` feed the
    forecast-aware agents (:class:`ForecastAware`).
    """
    check_agents_mode(mode)
    if mode == "default":
        return [None] * len(households)
    if mode == "mixed":
        names = _mixed_names(households, seed)
    else:
        names = ["battery" if h.state_of_charge_ppm is not None else "forecast" for h in households]
    out: list[PricingStrategy | None] = []
    for i, (h, name) in enumerate(zip(households, names, strict=True)):
        rng = household_rng(seed, i)
        if name == "battery":
            out.append(BatteryOwner(h.state_of_charge_ppm or {}))
        elif name == "drawn":
            out.append(DrawnLimits.draw(rng))
        elif name == "adaptive":
            out.append(Adaptive.draw(rng))
        else:
            out.append(ForecastAware(expected_net_Wh, scale_Wh))
    return out


def strategy_counts(strategies: Iterable[PricingStrategy | None]) -> dict[str, int]:
    """How many households follow each strategy (``default`` for none), by name."""
    counts: dict[str, int] = {}
    for s in strategies:
        name = "default" if s is None else s.name
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))
