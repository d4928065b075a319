"""Trading agents: default standing orders and per-slot limits, as plain data and pure functions."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.market.agents import (
    AgentSettings,
    AgentSettingsError,
    DailyRamp,
    DefaultOrder,
    default_orders,
    effective_limit,
    local_hour,
    standing_limits,
)
from ledger.types import Tariffs

# Band [40k, 220k] ueur/kWh: feed-in 40k, retail 250k, grid fee 30k.
TARIFFS = Tariffs(40_000, 250_000, 30_000)


def slot_at(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp()) // 900


def test_default_limits_are_feed_in_plus_markup_and_retail_minus_discount_all_in() -> None:
    settings = AgentSettings(sell_markup_ueur_per_kWh=15_000, buy_discount_ueur_per_kWh=25_000)
    # The bid excludes the grid fee: 195k + 30k fee = 225k = retail - 25k all in.
    assert standing_limits(settings, TARIFFS) == (55_000, 195_000)


def test_default_limits_are_clamped_into_the_tariff_band() -> None:
    settings = AgentSettings(sell_markup_ueur_per_kWh=10**9, buy_discount_ueur_per_kWh=10**9)
    assert standing_limits(settings, TARIFFS) == (220_000, 40_000)


def test_every_household_without_an_order_gets_one_and_only_prosumers_offer() -> None:
    settings = AgentSettings()
    households = {3: (True, settings), 1: (False, settings), 2: (True, settings)}
    orders = default_orders(households, has_offer={2}, has_bid={1}, tariffs=TARIFFS)
    assert orders == [
        DefaultOrder(3, "offer", 60_000),
        DefaultOrder(2, "bid", 200_000),
        DefaultOrder(3, "bid", 200_000),
    ]


def test_a_ramp_moves_linearly_between_its_hours_and_is_flat_outside() -> None:
    ramp = DailyRamp(200_000, 100_000, start_hour=8, end_hour=18)
    assert ramp.limit_at(0) == ramp.limit_at(8) == 200_000
    assert ramp.limit_at(13) == 150_000
    assert ramp.limit_at(10.25) == 200_000 - 100_000 * 135 // 600
    assert ramp.limit_at(18) == ramp.limit_at(23.75) == 100_000
    assert (ramp.loosest_sell, ramp.loosest_buy) == (100_000, 200_000)


def test_local_hour_follows_the_time_zone_and_daylight_saving() -> None:
    assert local_hour(slot_at("2026-06-21T10:00:00+00:00"), "Europe/Paris") == 12.0
    assert local_hour(slot_at("2026-12-21T10:00:00+00:00"), "Europe/Paris") == 11.0
    assert local_hour(slot_at("2026-12-21T10:15:00+00:00"), "UTC") == 10.25


def test_a_ramp_tightens_the_posted_limit_but_never_loosens_it() -> None:
    seller = AgentSettings(sell_ramp=DailyRamp(180_000, 60_000, 6, 20), timezone="UTC")
    posted_sell, _ = standing_limits(seller, TARIFFS)
    assert posted_sell == 60_000
    morning = slot_at("2026-06-21T06:00:00+00:00")
    evening = slot_at("2026-06-21T21:00:00+00:00")
    assert effective_limit("offer", posted_sell, seller, morning, TARIFFS) == 180_000
    assert effective_limit("offer", posted_sell, seller, evening, TARIFFS) == 60_000
    # An offer posted by hand above the ramp keeps its own limit.
    assert effective_limit("offer", 200_000, seller, evening, TARIFFS) == 200_000
    # Without a ramp, or without settings, the posted limit holds.
    assert effective_limit("bid", 123_456, seller, morning, TARIFFS) == 123_456
    assert effective_limit("bid", 123_456, None, morning, TARIFFS) == 123_456


@given(
    initial=st.integers(0, 400_000),
    final=st.integers(0, 400_000),
    posted=st.integers(0, 400_000),
    minute=st.integers(0, 24 * 60 - 1),
)
@settings(max_examples=200, deadline=None)
def test_effective_limits_stay_between_the_posted_limit_and_the_band(
    initial: int, final: int, posted: int, minute: int
) -> None:
    settings_ = AgentSettings(
        sell_ramp=DailyRamp(initial, final), buy_ramp=DailyRamp(initial, final), timezone="UTC"
    )
    slot = slot_at("2026-06-21T00:00:00+00:00") + minute // 15
    offer = effective_limit("offer", posted, settings_, slot, TARIFFS)
    bid = effective_limit("bid", posted, settings_, slot, TARIFFS)
    assert offer >= posted and bid <= posted
    assert offer == posted or 40_000 <= offer <= 220_000
    assert bid == posted or 40_000 <= bid <= 220_000


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sell_markup_ueur_per_kWh": -1}, "sell_markup"),
        ({"buy_discount_ueur_per_kWh": 2**64}, "buy_discount"),
        ({"sell_markup_ueur_per_kWh": 1.5}, "integer"),
        ({"sell_markup_ueur_per_kWh": True}, "integer"),
        ({"timezone": "Mars/Olympus"}, "time zone"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(
    kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(AgentSettingsError, match=match):
        AgentSettings(**kwargs)  # type: ignore[arg-type]


def test_a_ramp_with_backwards_hours_is_refused() -> None:
    with pytest.raises(AgentSettingsError, match="start_hour < end_hour"):
        DailyRamp(1, 2, start_hour=20, end_hour=6)
    with pytest.raises(AgentSettingsError, match="initial"):
        DailyRamp(-5, 2)
