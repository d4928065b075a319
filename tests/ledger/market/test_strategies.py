"""Pricing strategies: limits inside the tariff band, seeded, the adaptive agent's moves over the
gate, the battery owner's threshold, typed errors, and clearing a slot's gate in steps."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import LedgerError
from ledger.market.agents import (
    AgentSettings,
    AgentSettingsError,
    PricingStrategy,
    default_orders,
    effective_limit,
    standing_limits,
)
from ledger.market.clearing import MECHANISMS, BookOrder, Side, pay_as_clear
from ledger.market.strategies import (
    PPM,
    Adaptive,
    BatteryOwner,
    DrawnLimits,
    ForecastAware,
    HouseholdInputs,
    StrategyError,
    assign_strategies,
    band_price,
    check_agents_mode,
    clear_over_gate,
    gate_steps_of,
    household_rng,
    strategy_counts,
)
from ledger.types import Tariffs

# Band [40k, 220k] ueur/kWh: feed-in 40k, retail 250k, grid fee 30k.
TARIFFS = Tariffs(40_000, 250_000, 30_000)

positions = st.integers(0, PPM)
slots = st.integers(0, 10**7)


@st.composite
def tariffs(draw: st.DrawFn) -> Tariffs:
    feed_in = draw(st.integers(0, 10**6))
    fee = draw(st.integers(0, 10**6))
    retail = draw(st.integers(feed_in + fee, feed_in + fee + 10**6))
    return Tariffs(feed_in, retail, fee)


@st.composite
def any_strategy(draw: st.DrawFn) -> PricingStrategy:
    kind = draw(st.sampled_from(["drawn", "adaptive", "battery", "forecast"]))
    if kind == "drawn":
        return DrawnLimits(draw(positions), draw(positions))
    if kind == "adaptive":
        sell_end, sell_start = sorted((draw(positions), draw(positions)))
        buy_start, buy_end = sorted((draw(positions), draw(positions)))
        return Adaptive(sell_end, buy_end, sell_start, buy_start, draw(st.integers(1, 12)))
    if kind == "battery":
        spill, threshold = sorted((draw(positions), draw(positions)))
        soc = draw(st.dictionaries(slots, positions, max_size=5))
        return BatteryOwner(soc, threshold, draw(positions), spill, draw(positions))
    net = draw(st.dictionaries(slots, st.integers(-(10**9), 10**9), max_size=5))
    return ForecastAware(
        net,
        draw(st.integers(1, 10**7)),
        draw(positions),
        draw(positions),
        draw(positions),
        draw(positions),
    )


def in_band(price: int, t: Tariffs) -> bool:
    return t.feed_in_ueur_per_kWh <= price <= t.retail_ueur_per_kWh - t.grid_fee_ueur_per_kWh


# ───────────────────────────── The band ─────────────────────────────


@settings(max_examples=300, deadline=None)
@given(any_strategy(), tariffs(), slots, st.integers(1, 12), st.data())
def test_every_strategy_stays_inside_the_tariff_band_for_all_inputs(
    strategy: PricingStrategy, t: Tariffs, slot: int, steps: int, data: st.DataObject
) -> None:
    step = data.draw(st.integers(0, steps - 1))
    sell, buy = strategy.standing_limits(t)
    assert in_band(sell, t) and in_band(buy, t)
    for side, posted in (("offer", sell), ("bid", buy)):
        wanted = strategy.limit(side, slot, t, step, steps)
        assert in_band(wanted, t)
        # Clearing only ever tightens the posted order (the contract's check stays valid).
        trades_at = effective_limit(
            side, posted, AgentSettings(strategy=strategy), slot, t, step, steps
        )
        assert in_band(trades_at, t)
        assert trades_at >= posted if side == "offer" else trades_at <= posted


@given(positions, tariffs())
def test_a_band_position_is_a_price_from_feed_in_to_retail_minus_fee(
    position: int, t: Tariffs
) -> None:
    assert in_band(band_price(t, position), t)
    assert band_price(t, 0) == t.feed_in_ueur_per_kWh
    assert band_price(t, PPM) == t.retail_ueur_per_kWh - t.grid_fee_ueur_per_kWh


def test_a_strategy_replaces_the_markups_in_the_posted_orders() -> None:
    drawn = AgentSettings(strategy=DrawnLimits(250_000, 750_000))
    assert standing_limits(drawn, TARIFFS) == (85_000, 175_000)
    orders = default_orders({1: (True, drawn), 2: (False, AgentSettings())}, set(), set(), TARIFFS)
    assert [(o.household_id, o.side, o.price_limit_ueur_per_kWh) for o in orders] == [
        (1, "offer", 85_000),
        (1, "bid", 175_000),
        (2, "bid", 200_000),
    ]


# ───────────────────────────── Seeds ─────────────────────────────


def inputs(n: int = 20) -> list[HouseholdInputs]:
    return [HouseholdInputs(i % 2 == 0, {0: 10 * i} if i % 5 == 0 else None) for i in range(n)]


@pytest.mark.parametrize("mode", ["default", "mixed", "forecast"])
def test_the_same_seed_gives_the_same_agents_and_another_seed_other_ones(mode: str) -> None:
    one = assign_strategies(mode, 7, inputs(), {5: -300}, 1_000)
    assert one == assign_strategies(mode, 7, inputs(), {5: -300}, 1_000)
    if mode == "mixed":
        assert one != assign_strategies(mode, 8, inputs(), {5: -300}, 1_000)


def test_drawn_limits_are_drawn_per_household_inside_their_ranges() -> None:
    drawn = [DrawnLimits.draw(household_rng(1, i)) for i in range(50)]
    assert drawn == [DrawnLimits.draw(household_rng(1, i)) for i in range(50)]
    assert len({d.sell_ppm for d in drawn}) > 40
    low, high = DrawnLimits.SELL_RANGE_PPM
    assert all(low <= d.sell_ppm <= high for d in drawn)
    low, high = DrawnLimits.BUY_RANGE_PPM
    assert all(low <= d.buy_ppm <= high for d in drawn)


def test_the_mix_has_its_documented_shares_and_every_battery_owner() -> None:
    households = inputs(20)  # 4 with a battery, 16 without
    counts = strategy_counts(assign_strategies("mixed", 3, households, {}, 1_000))
    # 16 without a battery: 40 % drawn (6.4), 30 % adaptive (4.8), 30 % forecast (4.8).
    assert counts == {"adaptive": 5, "battery": 4, "drawn": 6, "forecast": 5}
    assert strategy_counts(assign_strategies("forecast", 3, households, {}, 1_000)) == {
        "battery": 4,
        "forecast": 16,
    }
    assert strategy_counts(assign_strategies("default", 3, households, {}, 1_000)) == {
        "default": 20
    }


# ───────────────────────────── Adaptive ─────────────────────────────


@settings(max_examples=200)
@given(positions, positions, positions, positions, st.integers(1, 20), tariffs())
def test_the_adaptive_agent_moves_monotonically_over_the_gate(
    a: int, b: int, c: int, d: int, steps: int, t: Tariffs
) -> None:
    sell_end, sell_start = sorted((a, b))
    buy_start, buy_end = sorted((c, d))
    agent = Adaptive(sell_end, buy_end, sell_start, buy_start, steps)
    asks = [agent.limit("offer", 0, t, k, steps) for k in range(steps)]
    bids = [agent.limit("bid", 0, t, k, steps) for k in range(steps)]
    assert asks == sorted(asks, reverse=True) and bids == sorted(bids)
    # The gate closes at the floor and the cap, which the posted orders hold.
    assert (asks[-1], bids[-1]) == agent.standing_limits(t)
    if steps > 1:
        assert asks[0] == band_price(t, sell_start) and bids[0] == band_price(t, buy_start)


def test_an_adaptive_agent_asks_for_the_gate_in_its_steps() -> None:
    agent = Adaptive(100_000, 900_000, steps=4)
    assert [agent.position("offer", k, 4) for k in range(4)] == [
        1_000_000,
        700_000,
        400_000,
        100_000,
    ]
    assert [agent.position("bid", k, 4) for k in range(4)] == [0, 300_000, 600_000, 900_000]
    assert gate_steps_of([None, DrawnLimits(0, PPM), agent]) == 4
    assert gate_steps_of([None, DrawnLimits(0, PPM)]) == 1


# ───────────────────────────── Battery owner ─────────────────────────────


@settings(max_examples=200)
@given(positions, positions, positions, positions, tariffs(), st.integers(0, 200))
def test_a_battery_owner_never_sells_below_its_threshold_unless_the_battery_is_full(
    threshold: int, full: int, spill: int, soc: int, t: Tariffs, slot: int
) -> None:
    spill = min(spill, threshold)
    owner = BatteryOwner({slot: soc}, threshold, full, spill)
    posted, _ = owner.standing_limits(t)
    ask = effective_limit("offer", posted, AgentSettings(strategy=owner), slot, t)
    if soc < full:
        assert ask >= band_price(t, threshold)
    else:
        assert ask == band_price(t, spill)


def test_a_battery_owner_without_a_known_charge_keeps_it() -> None:
    owner = BatteryOwner({}, sell_threshold_ppm=600_000)
    assert owner.limit("offer", 12, TARIFFS, 0, 1) == band_price(TARIFFS, 600_000)
    owner = BatteryOwner({12: 990_000}, sell_threshold_ppm=600_000, full_ppm=950_000)
    assert owner.limit("offer", 12, TARIFFS, 0, 1) == TARIFFS.feed_in_ueur_per_kWh


# ───────────────────────────── Forecast-aware ─────────────────────────────


def test_a_forecast_aware_agent_prices_dearer_when_a_deficit_is_expected() -> None:
    agent = ForecastAware({1: 5_000, 2: 0, 3: -5_000, 4: -500}, scale_Wh=1_000)
    asks = [agent.limit("offer", s, TARIFFS, 0, 1) for s in (1, 2, 4, 3)]
    bids = [agent.limit("bid", s, TARIFFS, 0, 1) for s in (1, 2, 4, 3)]
    assert asks == sorted(asks) and len(set(asks)) == 4
    assert bids == sorted(bids) and len(set(bids)) == 4
    assert asks[0] == band_price(TARIFFS, 50_000) and asks[-1] == band_price(TARIFFS, 850_000)
    # A slot the forecast lacks counts as balanced: halfway.
    assert agent.position("offer", 99) == (50_000 + 850_000) // 2


# ───────────────────────────── Errors ─────────────────────────────


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: DrawnLimits(-1, 0), "sell_ppm must be between 0 (feed-in) and 1000000"),
        (lambda: DrawnLimits(0, PPM + 1), "buy_ppm must be between 0"),
        (lambda: DrawnLimits(0.5, 0), "sell_ppm must be an integer position"),  # type: ignore[arg-type]
        (lambda: Adaptive(600_000, PPM, sell_start_ppm=500_000), "sell_end_ppm must be <="),
        (lambda: Adaptive(0, 100_000, buy_start_ppm=200_000), "buy_end_ppm must be >="),
        (lambda: Adaptive(0, PPM, steps=0), "steps must be an integer >= 1"),
        (lambda: BatteryOwner(spill_ppm=700_000, sell_threshold_ppm=600_000), "spill_ppm"),
        (lambda: ForecastAware(scale_Wh=0), "scale_Wh must be > 0 Wh, got 0"),
        (lambda: DrawnLimits.draw(household_rng(1, 1), (500, 400)), "low <= high"),
        (lambda: check_agents_mode("smart"), "unknown agents 'smart'; choose one of default"),
        (lambda: DrawnLimits(0, 0).limit("ask", 1, TARIFFS, 0, 1), "side must be 'offer'"),
        (lambda: Adaptive(0, PPM).position("offer", 3, 3), "step must be in [0, steps)"),
    ],
)
def test_bad_settings_raise_a_typed_error_saying_what_is_allowed(make: Any, message: str) -> None:
    with pytest.raises(StrategyError, match=re.escape(message)):
        make()
    assert issubclass(StrategyError, AgentSettingsError)
    assert issubclass(StrategyError, LedgerError) and issubclass(StrategyError, ValueError)


# ───────────────────────────── The gate in steps ─────────────────────────────


def order(oid: int, household: int, side: Side, limit: int, cap: int | None = None) -> BookOrder:
    return BookOrder(oid, household, side, limit, cap, oid)


def test_one_step_of_the_gate_is_the_mechanism_itself() -> None:
    book = [order(1, 1, Side.OFFER, 60_000), order(1, 2, Side.BID, 200_000)]
    surplus, deficit = {1: 500, 2: 0}, {1: 0, 2: 300}
    once = clear_over_gate(
        pay_as_clear, book, surplus, deficit, TARIFFS, lambda o, _: o.price_limit_ueur_per_kWh, 1
    )
    assert once == pay_as_clear(book, surplus, deficit, TARIFFS)


def test_the_gate_trades_each_step_on_what_the_earlier_ones_left() -> None:
    # Seller 1 is adaptive (from 220k down to 40k over 3 steps); seller 2 asks 100k fixed.
    # Buyer 3 bids 150k, uncapped; buyer 4 bids 60k, at most 100 Wh a slot.
    adaptive = Adaptive(0, PPM, steps=3)
    book = [
        order(1, 1, Side.OFFER, 40_000),
        order(2, 2, Side.OFFER, 100_000),
        order(1, 3, Side.BID, 150_000),
        order(2, 4, Side.BID, 60_000, cap=100),
    ]

    def limit_at(o: BookOrder, step: int) -> int:
        if o.household_id == 1:
            return adaptive.limit("offer", 0, TARIFFS, step, 3)
        return o.price_limit_ueur_per_kWh

    surplus, deficit = {1: 400, 2: 200}, {3: 300, 4: 500}
    result = clear_over_gate(pay_as_clear, book, surplus, deficit, TARIFFS, limit_at, 3)
    # Step 0: seller 2 (100k) meets buyer 3 (150k): 200 Wh at 125k. Step 1: seller 1 asks 130k:
    # buyer 3's last 100 Wh at 140k. Step 2: seller 1 asks 40k: buyer 4's cap, 100 Wh at 50k.
    assert [(f.offer_id, f.bid_id, f.energy_Wh, f.price_ueur_per_kWh) for f in result.fills] == [
        (2, 1, 200, 125_000),
        (1, 1, 100, 140_000),
        (1, 2, 100, 50_000),
    ]
    assert result.clearing_price_ueur_per_kWh is None  # several prices in the slot
    assert (result.matched_Wh, result.unmatched_surplus_Wh, result.unmatched_deficit_Wh) == (
        400,
        200,
        400,
    )


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 5),
            st.booleans(),
            positions,
            st.one_of(st.none(), st.integers(1, 400)),
        ),
        max_size=10,
    ),
    st.dictionaries(st.integers(1, 5), st.integers(0, 500)),
    st.dictionaries(st.integers(1, 5), st.integers(0, 500)),
    st.integers(1, 6),
    st.sampled_from(sorted(MECHANISMS)),
)
def test_a_gate_in_steps_never_oversells_nor_breaks_a_posted_limit(
    rows: list[tuple[int, bool, int, int | None]],
    surplus: dict[int, int],
    deficit: dict[int, int],
    steps: int,
    mechanism: str,
) -> None:
    book = [
        order(i, h, Side.OFFER if is_offer else Side.BID, band_price(TARIFFS, pos), cap)
        for i, (h, is_offer, pos, cap) in enumerate(rows)
    ]
    agents = {h: Adaptive.draw(household_rng(5, h), steps=steps) for h in range(1, 6)}

    def limit_at(o: BookOrder, step: int) -> int:
        settings_ = AgentSettings(strategy=agents[o.household_id])
        return effective_limit(
            o.side.value, o.price_limit_ueur_per_kWh, settings_, 0, TARIFFS, step, steps
        )

    result = clear_over_gate(
        MECHANISMS[mechanism], book, surplus, deficit, TARIFFS, limit_at, steps
    )
    offers = {o.order_id: o for o in book if o.side is Side.OFFER}
    bids = {o.order_id: o for o in book if o.side is Side.BID}
    sold: dict[int, int] = {}
    bought: dict[int, int] = {}
    per_order: dict[tuple[Side, int], int] = {}
    for f in result.fills:
        offer, bid = offers[f.offer_id], bids[f.bid_id]
        # What the contract checks: the posted limits and the band.
        assert offer.price_limit_ueur_per_kWh <= f.price_ueur_per_kWh
        assert f.price_ueur_per_kWh <= bid.price_limit_ueur_per_kWh
        assert in_band(f.price_ueur_per_kWh, TARIFFS)
        assert offer.household_id != bid.household_id and f.energy_Wh > 0
        sold[offer.household_id] = sold.get(offer.household_id, 0) + f.energy_Wh
        bought[bid.household_id] = bought.get(bid.household_id, 0) + f.energy_Wh
        for key in ((Side.OFFER, f.offer_id), (Side.BID, f.bid_id)):
            per_order[key] = per_order.get(key, 0) + f.energy_Wh
    assert all(wh <= surplus.get(h, 0) for h, wh in sold.items())
    assert all(wh <= deficit.get(h, 0) for h, wh in bought.items())
    for o in book:
        if o.max_Wh_per_slot is not None:
            assert per_order.get((o.side, o.order_id), 0) <= o.max_Wh_per_slot
    assert result.matched_Wh == sum(sold.values())
