"""Flows and batteries: energy balances exactly, batteries keep to their limits."""

from __future__ import annotations

from datetime import date

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from meter_sim import Battery, default_scenario, dispatch, simulate
from meter_sim.flows import round_keeping_totals


def test_every_household_balances_every_slot_of_a_week_with_batteries() -> None:
    sc = default_scenario(24, days=7, start=date(2026, 6, 15), seed=8, battery_share=0.6)
    flows = simulate(sc)
    assert flows.shape == (24, 7 * 96)
    with_battery = [i for i, h in enumerate(sc.households) if h.battery is not None]
    assert len(with_battery) >= 3
    lhs = flows.pv_Wh + flows.import_Wh
    rhs = flows.load_Wh + flows.export_Wh + flows.charge_Wh - flows.discharge_Wh
    assert np.abs(lhs - rhs).max() <= 1
    assert np.array_equal(flows.balance_error_Wh(), lhs - rhs)
    for name in ("load_Wh", "pv_Wh", "charge_Wh", "discharge_Wh", "import_Wh", "export_Wh"):
        array = getattr(flows, name)
        assert array.dtype == np.int64 and array.min() >= 0, name
    assert not np.any((flows.import_Wh > 0) & (flows.export_Wh > 0))  # the meter nets the slot
    # The batteries did work: they shift surplus into the evening and cut imports.
    assert flows.charge_Wh[with_battery].sum() > 0
    assert flows.discharge_Wh[with_battery].sum() > 0
    without = [i for i in range(24) if i not in with_battery]
    assert flows.charge_Wh[without].sum() == flows.discharge_Wh[without].sum() == 0
    assert np.array_equal(flows.slots, np.arange(sc.first_slot, sc.first_slot + 7 * 96))


def test_consumers_without_pv_only_import() -> None:
    sc = default_scenario(10, days=1, seed=2)
    flows = simulate(sc)
    for i, spec in enumerate(sc.households):
        if spec.pv is None:
            assert flows.pv_Wh[i].sum() == flows.export_Wh[i].sum() == 0
            assert np.array_equal(flows.import_Wh[i], flows.load_Wh[i])


def test_rounding_keeps_every_running_total_within_half_a_wh() -> None:
    rng = np.random.default_rng(0)
    values = rng.uniform(0, 3, size=(5, 500))
    rounded = round_keeping_totals(values)
    assert rounded.dtype == np.int64
    assert np.abs(np.cumsum(rounded, axis=1) - np.cumsum(values, axis=1)).max() <= 0.5
    assert np.abs(rounded.sum(axis=1) - values.sum(axis=1)).max() <= 0.5


batteries = st.builds(
    Battery,
    capacity_Wh=st.integers(100, 20_000),
    power_W=st.integers(4, 10_000),
    round_trip_efficiency=st.floats(0.5, 1.0),
    initial_Wh=st.just(0),
).flatmap(
    lambda b: st.integers(0, b.capacity_Wh).map(
        lambda init: Battery(b.capacity_Wh, b.power_W, b.round_trip_efficiency, init)
    )
)


@settings(max_examples=80, deadline=None)
@given(
    battery=batteries,
    net=st.lists(st.integers(-4_000, 4_000), min_size=1, max_size=60),
)
def test_battery_charges_from_surplus_discharges_into_deficit_within_its_limits(
    battery: Battery, net: list[int]
) -> None:
    net_Wh = np.array([net, net], dtype=np.int64)
    charge, discharge, level = dispatch(net_Wh, [battery, None])
    c, d, soc = charge[0], discharge[0], level[0]
    step = battery.power_W // 4
    n = np.array(net)
    assert np.all((c >= 0) & (c <= step) & (c <= np.maximum(n, 0)))
    assert np.all((d >= 0) & (d <= step) & (d <= np.maximum(-n, 0)))
    assert np.all((soc >= 0) & (soc <= battery.capacity_Wh * 1000))
    # Exact store accounting in mWh: losses are taken on the way in.
    eff_ppm = round(battery.round_trip_efficiency * 1_000_000)
    stored = battery.initial_Wh * 1000 + np.cumsum(c * eff_ppm // 1000 - d * 1000)
    assert np.array_equal(soc, stored)
    # Self-consumption first: a surplus is stored unless full or at the power limit, a deficit
    # is covered unless empty or at the power limit.
    before = np.concatenate([[battery.initial_Wh * 1000], soc[:-1]])
    room_Wh = (battery.capacity_Wh * 1000 - before) * 1000 // eff_ppm
    assert np.array_equal(c, np.minimum(np.minimum(np.maximum(n, 0), step), room_Wh))
    assert np.array_equal(d, np.minimum(np.minimum(np.maximum(-n, 0), step), before // 1000))
    assert not charge[1].any() and not discharge[1].any() and not level[1].any()
