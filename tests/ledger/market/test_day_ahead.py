"""Tests of the pure day-ahead clearing in :mod:`ledger.market.day_ahead`: the committed share
of each forecast, the households' own price limits, the buyers' funds over the day, and the
invariants the contract's ``clearForwards`` re-checks (energy per slot, tariffs, no self-trade).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.market.agents import AgentSettings, DailyRamp
from ledger.market.clearing import MECHANISMS
from ledger.market.day_ahead import (
    DayAheadError,
    DayAheadResult,
    DayAheadRule,
    clear_day_ahead,
    committed_Wh,
    forecasts_by_slot,
    forward_reserve_ueur,
)
from ledger.market.strategies import DrawnLimits
from ledger.types import Forward, Tariffs

TARIFFS = Tariffs(
    feed_in_ueur_per_kWh=80_000, retail_ueur_per_kWh=300_000, grid_fee_ueur_per_kWh=50_000
)
#: Default limits: an offer at feed-in + 20,000, a bid at retail - fee - 20,000.
SELL, BUY = 100_000, 230_000
SLOT = 2_000_000
RICH = 10**12


def by_pair(forwards: tuple[Forward, ...]) -> dict[tuple[int, int], int]:
    out: dict[tuple[int, int], int] = defaultdict(int)
    for f in forwards:
        out[(f.seller, f.buyer)] += f.energy_Wh
    return dict(out)


# ───────────────────────────── The rule ─────────────────────────────


def test_a_household_commits_its_share_of_the_forecast_rounded_toward_zero() -> None:
    rule = DayAheadRule(commit_ppm=800_000)
    assert committed_Wh(1001, rule) == 800
    assert committed_Wh(-1001, rule) == -800
    assert committed_Wh(0, rule) == 0
    assert committed_Wh(1, rule) == 0  # 0.8 Wh rounds to nothing
    assert committed_Wh(500, DayAheadRule(commit_ppm=800_000, min_Wh=401)) == 0
    assert committed_Wh(-999, DayAheadRule(commit_ppm=1_000_000)) == -999


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"commit_ppm": -1}, "commit_ppm must be between 0 and 1000000"),
        ({"commit_ppm": 1_000_001}, "commit_ppm must be between 0 and 1000000"),
        ({"commit_ppm": 0.8}, "commit_ppm must be an integer"),
        ({"min_Wh": 0}, "min_Wh must be an integer >= 1 Wh"),
    ],
)
def test_a_rule_outside_its_range_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DayAheadError, match=message):
        DayAheadRule(**kwargs)  # type: ignore[arg-type]


def test_an_unknown_mechanism_and_a_float_forecast_are_refused() -> None:
    with pytest.raises(DayAheadError, match="unknown clearing mechanism 'best'; choose one of"):
        clear_day_ahead({}, TARIFFS, "best")
    with pytest.raises(DayAheadError, match=r"a forecast must be an integer of Wh, got 1\.5"):
        clear_day_ahead({SLOT: {1: 1.5}}, TARIFFS)  # type: ignore[dict-item]


def test_the_reserve_rounds_cost_and_fee_up_together() -> None:
    # 333 Wh at 100,001 + 50,000 per kWh: 49,950.333 -> 49,951.
    assert forward_reserve_ueur(333, 100_001, TARIFFS) == 49_951
    # Never below the two rounded-down parts the contract charges.
    for wh in range(1, 400, 7):
        for price in (80_000, 123_457, 250_000):
            floors = wh * price // 1000 + wh * TARIFFS.grid_fee_ueur_per_kWh // 1000
            assert forward_reserve_ueur(wh, price, TARIFFS) >= floors


# ───────────────────────────── Hand-computed days ─────────────────────────────


def test_a_seller_and_two_buyers_clear_at_the_midpoint_of_the_default_limits() -> None:
    # Household 1 expects 1,000 Wh surplus, 2 and 3 a deficit of 500 and 1,000 Wh.
    result = clear_day_ahead({SLOT: {1: 1000, 2: -500, 3: -1000}}, TARIFFS, "pay-as-clear")
    [day] = result.slots
    assert (day.offered_Wh, day.bid_Wh) == (800, 1200)
    # Equal bids: household 2 (lower id) first, then 3 gets the rest of the 800 Wh.
    assert day.forwards == (Forward(1, 2, 400, 165_000), Forward(1, 3, 400, 165_000))
    assert day.clearing_price_ueur_per_kWh == (SELL + BUY) // 2
    assert result.reserved_ueur == {2: 86_000, 3: 86_000}  # 400 * 215,000 / 1000
    assert result.forwards == 2 and result.energy_Wh == 800


def test_pay_as_offer_pays_the_sellers_limit_and_midpoint_the_pairs_midpoint() -> None:
    forecasts = {SLOT: {1: 1000, 2: -1000}}
    [offer] = clear_day_ahead(forecasts, TARIFFS, "pay-as-offer").slots[0].forwards
    [mid] = clear_day_ahead(forecasts, TARIFFS, "midpoint").slots[0].forwards
    assert offer == Forward(1, 2, 800, SELL)
    assert mid == Forward(1, 2, 800, (SELL + BUY) // 2)


def test_households_price_with_their_own_agent_settings() -> None:
    # Household 1 asks 0.25 EUR/kWh, above what 2 would pay: no forward. 3 asks little.
    drawn_dear = AgentSettings(strategy=DrawnLimits(sell_ppm=1_000_000, buy_ppm=0))
    settings_ = {1: drawn_dear, 3: AgentSettings(sell_markup_ueur_per_kWh=0)}
    result = clear_day_ahead(
        {SLOT: {1: 1000, 2: -500}, SLOT + 1: {3: 1000, 2: -500}},
        TARIFFS,
        "pay-as-offer",
        settings=settings_,
    )
    assert result.slots[0].forwards == ()
    assert result.slots[1].forwards == (Forward(3, 2, 400, TARIFFS.feed_in_ueur_per_kWh),)


def test_a_ramp_tightens_the_limit_of_the_slot_it_clears() -> None:
    # A buyer ramping from 90,000 (before 06:00 local) up: at 02:00 UTC it pays at most 90,000,
    # below the default offer of 100,000: nothing clears.
    night = 1_782_000_000 // 900 // 96 * 96 + 8  # 02:00 UTC
    ramp = DailyRamp(90_000, 230_000, start_hour=6.0, end_hour=20.0)
    result = clear_day_ahead(
        {night: {1: 1000, 2: -1000}},
        TARIFFS,
        settings={2: AgentSettings(buy_ramp=ramp, timezone="UTC")},
    )
    assert result.slots[0].forwards == ()


def test_a_buyers_funds_cap_its_forwards_over_the_whole_day() -> None:
    # The buyer holds 200,000 ueur. Its bid is capped at what its funds pay at its limit plus
    # the fee (230,000 + 50,000 per kWh), as the real-time book caps it; the forward then
    # reserves at its price (100,000 + 50,000 under pay-as-offer).
    forecasts = {SLOT + k: {1: 1000, 2: -1000} for k in range(3)}
    result = clear_day_ahead(forecasts, TARIFFS, "pay-as-offer", funds_ueur={1: 0, 2: 200_000})
    energies = [s.energy_Wh for s in result.slots]
    # 200,000 * 1000 // 280,000 = 714 Wh (107,100 reserved); 92,900 left: 331 Wh (49,650);
    # 43,250 left: 154 Wh (23,100).
    assert energies == [714, 331, 154]
    assert [s.bid_Wh for s in result.slots] == [714, 331, 154]
    assert result.reserved_ueur == {2: 107_100 + 49_650 + 23_100}
    assert result.reserved_ueur[2] <= 200_000
    # A household without funds cannot buy at all.
    assert clear_day_ahead(forecasts, TARIFFS, funds_ueur={}).energy_Wh == 0


def test_empty_inputs_clear_nothing() -> None:
    assert clear_day_ahead({}, TARIFFS) == DayAheadResult((), {})
    [slot] = clear_day_ahead({SLOT: {}}, TARIFFS).slots
    assert (slot.forwards, slot.offered_Wh, slot.bid_Wh) == ((), 0, 0)
    # Only sellers, only buyers, or a share of zero: no forwards.
    assert clear_day_ahead({SLOT: {1: 500, 2: 700}}, TARIFFS).energy_Wh == 0
    assert clear_day_ahead({SLOT: {1: -500, 2: -700}}, TARIFFS).energy_Wh == 0
    none = DayAheadRule(commit_ppm=0)
    assert clear_day_ahead({SLOT: {1: 500, 2: -700}}, TARIFFS, rule=none).energy_Wh == 0


def test_forecasts_by_slot_turns_series_into_slot_books() -> None:
    assert forecasts_by_slot(SLOT, {1: [5, -3], 2: [0, 7]}) == {
        SLOT: {1: 5, 2: 0},
        SLOT + 1: {1: -3, 2: 7},
    }


# ───────────────────────────── Properties ─────────────────────────────

forecast_days = st.dictionaries(
    st.integers(SLOT, SLOT + 95),
    st.dictionaries(st.integers(1, 8), st.integers(-3000, 3000), max_size=8),
    max_size=6,
)
funds = st.one_of(st.none(), st.dictionaries(st.integers(1, 8), st.integers(0, 600_000)))
limits = st.builds(DrawnLimits, st.integers(0, 1_000_000), st.integers(0, 1_000_000)).map(
    lambda s: AgentSettings(strategy=s)
)


@settings(max_examples=150, deadline=None)
@given(
    forecasts=forecast_days,
    mechanism=st.sampled_from(sorted(MECHANISMS)),
    balances=funds,
    agents=st.dictionaries(st.integers(1, 8), limits, max_size=8),
    commit_ppm=st.integers(0, 1_000_000),
)
def test_forwards_respect_commitments_limits_tariffs_and_funds(
    forecasts: Mapping[int, Mapping[int, int]],
    mechanism: str,
    balances: dict[int, int] | None,
    agents: dict[int, AgentSettings],
    commit_ppm: int,
) -> None:
    rule = DayAheadRule(commit_ppm=commit_ppm)
    result = clear_day_ahead(
        forecasts, TARIFFS, mechanism, settings=agents, funds_ueur=balances, rule=rule
    )
    assert [s.slot for s in result.slots] == sorted(forecasts)
    spent: dict[int, int] = defaultdict(int)
    for day in result.slots:
        sold: dict[int, int] = defaultdict(int)
        bought: dict[int, int] = defaultdict(int)
        for f in day.forwards:
            assert f.seller != f.buyer and f.energy_Wh > 0
            # The contract's tariff checks.
            assert TARIFFS.feed_in_ueur_per_kWh <= f.price_ueur_per_kWh
            fee = TARIFFS.grid_fee_ueur_per_kWh
            assert f.price_ueur_per_kWh + fee <= TARIFFS.retail_ueur_per_kWh
            # Each side's own limit for the slot.
            seller = agents.get(f.seller, AgentSettings())
            buyer = agents.get(f.buyer, AgentSettings())
            if seller.strategy is not None:
                assert f.price_ueur_per_kWh >= seller.strategy.standing_limits(TARIFFS)[0]
            else:
                assert f.price_ueur_per_kWh >= SELL
            if buyer.strategy is not None:
                assert f.price_ueur_per_kWh <= buyer.strategy.standing_limits(TARIFFS)[1]
            else:
                assert f.price_ueur_per_kWh <= BUY
            sold[f.seller] += f.energy_Wh
            bought[f.buyer] += f.energy_Wh
            spent[f.buyer] += forward_reserve_ueur(f.energy_Wh, f.price_ueur_per_kWh, TARIFFS)
        # Energy per slot: nobody commits more than its share of its forecast, each side's
        # totals match, and only expected sellers sell, expected buyers buy.
        assert sum(sold.values()) == sum(bought.values()) == day.energy_Wh
        assert day.energy_Wh <= min(day.offered_Wh, day.bid_Wh)
        for h, wh in sold.items():
            assert 0 < wh <= committed_Wh(forecasts[day.slot][h], rule)
        for h, wh in bought.items():
            assert 0 < wh <= -committed_Wh(forecasts[day.slot][h], rule)
    assert result.reserved_ueur == {h: v for h, v in sorted(spent.items())}
    if balances is not None:
        for h, v in spent.items():
            assert v <= balances.get(h, 0)


@settings(max_examples=40, deadline=None)
@given(forecasts=forecast_days, mechanism=st.sampled_from(sorted(MECHANISMS)), balances=funds)
def test_the_same_inputs_give_the_same_forwards_in_any_input_order(
    forecasts: Mapping[int, Mapping[int, int]], mechanism: str, balances: dict[int, int] | None
) -> None:
    reordered = {
        slot: dict(reversed(list(book.items()))) for slot, book in reversed(list(forecasts.items()))
    }
    a = clear_day_ahead(forecasts, TARIFFS, mechanism, funds_ueur=balances)
    b = clear_day_ahead(reordered, TARIFFS, mechanism, funds_ueur=balances)
    assert a == b
    assert by_pair(tuple(f for s in a.slots for f in s.forwards)) == by_pair(
        tuple(f for s in b.slots for f in s.forwards)
    )
