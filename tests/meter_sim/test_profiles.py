"""Load and PV profiles: sane against demandlib's H0, the sun and the seasons."""

from __future__ import annotations

import warnings
from datetime import date

import numpy as np
import pandas as pd
import pvlib
import pytest

from meter_sim import (
    PV,
    HouseholdSpec,
    Scenario,
    WeatherError,
    default_scenario,
    h0_year,
    load_Wh,
    pv_Wh,
    sky_for,
    tmy_location,
)
from meter_sim.load import slot_starts

SOUTH = PV(peak_W=6_000, tilt_deg=30, azimuth_deg=180)


def solar_scenario(start: date, days: int, sky: str = "clear", seed: int = 0) -> Scenario:
    homes = (
        HouseholdSpec("south", 3_000_000, SOUTH),
        HouseholdSpec("west", 3_000_000, PV(6_000, 30, 270)),
        HouseholdSpec("none", 3_000_000),
    )
    return Scenario("sun", homes, start=start, days=days, sky=sky, seed=seed)


def test_a_year_of_load_is_within_two_percent_of_the_configured_energy() -> None:
    sc = default_scenario(4, days=365, start=date(2026, 1, 1), seed=11)
    yearly = load_Wh(sc).sum(axis=1)
    configured = np.array([h.annual_Wh for h in sc.households])
    assert np.all(np.abs(yearly / configured - 1) < 0.02), yearly / configured


def test_h0_follows_demandlib_with_national_holidays_as_sundays() -> None:
    profile = h0_year(2026, "FR")
    assert len(profile) == 365 * 96 and profile.sum() == pytest.approx(1.0)

    def day(d: date) -> np.ndarray:
        start = (d - date(2026, 1, 1)).days * 96
        shape = profile[start : start + 96]
        return shape / shape.sum()

    ascension = day(date(2026, 5, 14))  # a Thursday, a public holiday in France
    sunday, thursday = day(date(2026, 5, 10)), day(date(2026, 5, 7))
    assert np.abs(ascension - sunday).max() < 0.1 * np.abs(thursday - sunday).max()
    # The holiday is the country's: the United States work on Ascension Thursday.
    us = h0_year(2026, "US")
    start = (date(2026, 5, 14) - date(2026, 1, 1)).days * 96
    us_day = us[start : start + 96] / us[start : start + 96].sum()
    assert np.abs(us_day - thursday).max() < 0.1 * np.abs(thursday - sunday).max()


def test_building_a_profile_leaves_the_process_warning_filters_alone() -> None:
    # demandlib 0.2.2 sets warnings.simplefilter("error") while it builds its profiles.
    before = list(warnings.filters)
    h0_year(2031, "FR")  # a year no other test builds, so demandlib really runs
    assert warnings.filters == before


def test_two_households_load_curves_differ_but_both_follow_the_day() -> None:
    sc = Scenario(
        "twins",
        (HouseholdSpec("a", 3_500_000), HouseholdSpec("b", 3_500_000)),
        start=date(2026, 2, 2),
        days=7,
        seed=1,
    )
    a, b = load_Wh(sc)
    assert not np.allclose(a, b, rtol=0.05)
    assert np.corrcoef(a, b)[0, 1] < 0.95
    local_hour = slot_starts(sc).tz_convert("Europe/Paris").hour.to_numpy()
    for curve in (a, b):
        night = curve[(local_hour >= 2) & (local_hour < 5)].mean()
        evening = curve[(local_hour >= 18) & (local_hour < 21)].mean()
        assert evening > 1.5 * night


def test_pv_is_zero_at_night_and_peaks_near_solar_noon() -> None:
    sc = solar_scenario(date(2026, 6, 10), days=3)
    pv = pv_Wh(sc)
    sky = sky_for(sc)
    assert np.all(pv[:, sky.zenith >= 90] == 0)
    assert np.all(pv[2] == 0)  # no array, no output
    assert pv[0].max() > 0.6 * 6_000 * 0.25  # a clear June day near peak power
    mids = slot_starts(sc) + pd.Timedelta(minutes=7.5)
    transit = pvlib.solarposition.sun_rise_set_transit_spa(
        pd.DatetimeIndex([mids[48 + 96 * d] for d in range(3)]), 45.764, 4.8357
    )["transit"]
    for d in range(3):
        day = slice(96 * d, 96 * (d + 1))
        peak = mids[day][int(np.argmax(pv[0, day]))]
        assert abs((peak - transit.iloc[d]).total_seconds()) <= 30 * 60
        west_peak = mids[day][int(np.argmax(pv[1, day]))]
        assert west_peak > peak + pd.Timedelta(hours=1)  # a west roof peaks in the afternoon


def test_june_yields_more_than_december_under_clouds() -> None:
    june = pv_Wh(solar_scenario(date(2026, 6, 1), days=30, sky="cloudy", seed=2))[0].sum()
    december = pv_Wh(solar_scenario(date(2026, 12, 1), days=30, sky="cloudy", seed=2))[0].sum()
    assert june > 2 * december > 0


def test_clouds_are_seeded_and_only_ever_dim_the_clear_sky_a_little_more() -> None:
    clear = pv_Wh(solar_scenario(date(2026, 4, 1), days=10))[0]
    cloudy = pv_Wh(solar_scenario(date(2026, 4, 1), days=10, sky="cloudy", seed=3))[0]
    again = pv_Wh(solar_scenario(date(2026, 4, 1), days=10, sky="cloudy", seed=3))[0]
    other = pv_Wh(solar_scenario(date(2026, 4, 1), days=10, sky="cloudy", seed=4))[0]
    assert np.array_equal(cloudy, again)
    assert not np.array_equal(cloudy, other)
    assert cloudy.sum() < 0.95 * clear.sum()
    daily = cloudy.reshape(10, 96).sum(axis=1) / clear.reshape(10, 96).sum(axis=1)
    assert daily.max() < 1.1  # the clear-sky index is at most 1.1 (cloud-edge enhancement)
    assert daily.max() - daily.min() > 0.3  # some days clear, some overcast


def test_a_bundled_tmy_file_drives_pv_at_its_own_location() -> None:
    where = tmy_location("723170TYA.CSV")
    assert where.name == "GREENSBORO PIEDMONT TRIAD INT" and where.tz == "Etc/GMT+5"
    homes = (HouseholdSpec("nc", 4_000_000, SOUTH),)
    sc = Scenario("nc", homes, where, date(2026, 7, 1), 4, sky="tmy:723170TYA.CSV")
    pv = pv_Wh(sc)[0]
    sky = sky_for(sc)
    assert np.all(pv[sky.zenith >= 90] == 0)
    assert 4 * 6_000 * 1.0 < pv.sum() < 4 * 6_000 * 8.0  # 1 to 8 kWh/kWp a day in July
    with pytest.raises(WeatherError, match="tmy_location"):
        pv_Wh(Scenario("lyon", homes, sky="tmy:723170TYA.CSV"))
    with pytest.raises(WeatherError, match="pvlib's data directory"):
        pv_Wh(Scenario("lyon", homes, sky="tmy:nowhere.csv"))
