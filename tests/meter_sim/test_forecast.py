"""The simulator's forecasts: the simulated weather forecast, PV through the simulator's PV
model, household forecasts that never read their own future, and the report's ``forecast``."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import itertools
import json
import math
import subprocess
import sys
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from api.cli import main
from ledger.forecast import ForecastError, ForecastTypeError, WeatherForecast, WeatherSource
from meter_sim import default_scenario
from meter_sim.flows import Flows, simulate
from meter_sim.flows import window as window_of
from meter_sim.forecast import (
    HISTORY_DAYS,
    ForecastAhead,
    HouseholdForecaster,
    SimulatedWeather,
    forecast_report,
    forecast_report_ahead,
    issue_slots,
    metered_with_history,
    pv_forecast_Wh,
)
from meter_sim.pv import pv_Wh
from meter_sim.scenario import Scenario

DAY = 96


def scenario(seed: int = 3) -> Scenario:
    return default_scenario(
        6, days=2, start=date(2026, 6, 21), seed=seed, prosumer_share=0.5, battery_share=0.7
    )


@pytest.fixture(scope="module")
def metered() -> tuple[Scenario, Flows]:
    s = scenario()
    return s, metered_with_history(s, simulate(s))


def test_the_weather_forecast_is_seeded_and_not_the_weather_itself() -> None:
    s = scenario()
    a = SimulatedWeather(s).forecast(s.first_slot + 40, 288)
    b = SimulatedWeather(s).forecast(s.first_slot + 40, 288)
    other = SimulatedWeather(scenario(seed=4)).forecast(s.first_slot + 40, 288)
    assert isinstance(SimulatedWeather(s), WeatherSource)
    assert a.ghi_W_m2.tobytes() == b.ghi_W_m2.tobytes()
    assert a.ghi_W_m2.tobytes() != other.ghi_W_m2.tobytes()
    weather = SimulatedWeather(s)
    at = s.first_slot + 41 - weather.first_slot
    truth = weather.clear_ghi[at : at + 288] * weather.kc[at : at + 288]
    day = weather.clear_ghi[at : at + 288] > 50
    assert not np.allclose(a.ghi_W_m2[day], truth[day], rtol=0.02)


def test_the_weather_forecast_error_grows_with_the_horizon() -> None:
    weather = SimulatedWeather(scenario())
    errors = np.array([weather.error(slot) for slot in range(1_000, 1_400)])
    spread = errors.std(axis=0)
    assert spread[3] < 0.15 < 0.3 < spread[287]
    assert spread[3] < spread[95] < spread[287]


def test_a_perfect_weather_forecast_gives_the_simulated_pv(metered: tuple[Scenario, Flows]) -> None:
    s, _ = metered
    weather = SimulatedWeather(s)
    at = s.first_slot - weather.first_slot
    perfect = WeatherForecast(
        issue_slot=s.first_slot - 1,
        ghi_W_m2=weather.clear_ghi[at : at + DAY] * weather.kc[at : at + DAY],
        temp_air_C=weather.temp_air[at : at + DAY],
        wind_speed_m_s=weather.wind_speed[at : at + DAY],
    )
    simulated = pv_Wh(s)[:, :DAY]
    assert simulated.sum() > 0
    np.testing.assert_allclose(pv_forecast_Wh(s, perfect), simulated, rtol=1e-6, atol=0.01)


def test_forecasts_are_deterministic_for_a_seed(metered: tuple[Scenario, Flows]) -> None:
    s, flows = metered
    issue = s.first_slot + 30
    a = HouseholdForecaster(s, flows, SimulatedWeather(s)).forecast(issue, 288)
    b = HouseholdForecaster(s, flows, SimulatedWeather(s)).forecast(issue, 288)
    for name in ("pv_Wh", "load_Wh", "net_Wh"):
        left, right = getattr(a, name), getattr(b, name)
        assert left.dtype == np.int64 and left.shape == (6, 288)
        assert left.tobytes() == right.tobytes()
    assert a.pv_Wh.sum() > 0 and a.load_Wh.sum() > 0


def test_no_forecast_reads_the_metered_values_after_its_issue_slot(
    metered: tuple[Scenario, Flows],
) -> None:
    s, flows = metered
    rng = np.random.default_rng(0)
    for issue in (s.first_slot - 1, s.first_slot + 45, s.first_slot + DAY + 10):
        at = issue - flows.first_slot
        changed = {
            f.name: getattr(flows, f.name).copy()
            for f in dataclasses.fields(Flows)
            if f.name != "first_slot"
        }
        for values in changed.values():
            values[:, at + 1 :] = rng.integers(0, 50_000, size=values[:, at + 1 :].shape)
        future_changed = Flows(first_slot=flows.first_slot, **changed)
        a = HouseholdForecaster(s, flows, SimulatedWeather(s)).forecast(issue, 288)
        b = HouseholdForecaster(s, future_changed, SimulatedWeather(s)).forecast(issue, 288)
        for name in ("pv_Wh", "load_Wh", "net_Wh"):
            assert getattr(a, name).tobytes() == getattr(b, name).tobytes(), (issue, name)
    # The metered values up to the issue slot do count: the batteries' charge, for one.
    issue = s.first_slot + 45
    at = issue - flows.first_slot
    emptied = flows.battery_mWh.copy()
    emptied[:, at] = 0
    a = HouseholdForecaster(s, flows, SimulatedWeather(s)).forecast(issue, 96)
    b = HouseholdForecaster(
        s, dataclasses.replace(flows, battery_mWh=emptied), SimulatedWeather(s)
    ).forecast(issue, 96)
    assert a.net_Wh.tobytes() != b.net_Wh.tobytes()


def test_bad_requests_get_a_forecast_error(metered: tuple[Scenario, Flows]) -> None:
    s, flows = metered
    forecaster = HouseholdForecaster(s, flows, SimulatedWeather(s))
    last = flows.first_slot + flows.shape[1] - 1
    with pytest.raises(ForecastError, match="is not among the metered slots"):
        forecaster.forecast(last + 1, 4)
    with pytest.raises(ForecastError, match="between 1 and 288"):
        forecaster.forecast(last, 0)
    with pytest.raises(ForecastError, match="got 300"):
        forecaster.forecast(last, 300)
    with pytest.raises(ForecastTypeError, match="got float"):
        forecaster.forecast(float(last), 4)  # type: ignore[arg-type]
    weather = SimulatedWeather(s)
    with pytest.raises(ForecastError, match="reaches outside it"):
        weather.forecast(weather.last_slot - 3, 8)
    with pytest.raises(ForecastError, match="has shape"):
        WeatherForecast(1, np.zeros(4), np.zeros(3), np.zeros(4))
    with pytest.raises(ForecastError, match="NaN"):
        WeatherForecast(1, np.full(4, np.nan), np.zeros(4), np.zeros(4))
    with pytest.raises(ForecastError, match="households"):
        HouseholdForecaster(scenario(), simulate(default_scenario(2, days=1)), weather)


def test_issue_times_reach_into_the_window_hourly_and_are_capped() -> None:
    slots = issue_slots(1_000, 8)
    assert slots[-1] == 1_003 and 999 in slots and slots[0] >= 1_000 - 288
    assert all(b - a == 4 for a, b in itertools.pairwise(slots))
    year = issue_slots(100_000, 365 * DAY)
    assert len(year) == 400 and 99_999 in year and year == sorted(year)


def test_the_report_of_a_two_day_street_beats_seasonal_naive(
    metered: tuple[Scenario, Flows],
) -> None:
    s = metered[0]
    window = simulate(s)
    report = forecast_report(s, window)
    assert report["history_days"] == HISTORY_DAYS
    for q in ("pv", "load", "net"):
        day = report[q]["day_ahead"]
        assert day["n"] > 0 and day["mae_Wh"] > 0
        assert day["skill_vs_seasonal_naive"] > 0
    example = report["example"]
    assert len(example["net"]["forecast_Wh"]) == DAY == len(example["net"]["actual_Wh"])


def test_simulate_writes_the_forecast_key_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["simulate", "--households", "6", "--start", "2026-06-21", "--seed", "3"]
    argv += ["--first-slot", "46", "--slots", "4", "--out", str(out)]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    forecast = report["forecast"]
    assert forecast["issues"] > 0 and "wall_s" not in forecast  # the same for every run
    for q in ("pv", "load", "net"):
        for horizon in ("1h", "6h", "24h", "48h", "72h", "day_ahead"):
            figures = forecast[q][horizon]
            assert figures["n"] > 0
            assert figures["mae_Wh"] >= 0 and figures["rmse_Wh"] >= figures["mae_Wh"]
            for key in ("skill_vs_persistence", "skill_vs_seasonal_naive"):
                # a window of four clear slots can favour yesterday's PV a lot: finite, <= 1
                assert figures[key] is None or (math.isfinite(figures[key]) and figures[key] <= 1)
    assert (out / "forecast.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_the_report_entry_is_computed_here_if_its_child_dies(
    metered: tuple[Scenario, Flows],
) -> None:
    s = metered[0]
    window = window_of(simulate(s), 0, 8)
    died: Future[dict[str, object]] = Future()
    died.set_exception(BrokenProcessPool("killed"))
    here = forecast_report(s, window)
    assert ForecastAhead(s, 0, 8, died).result() == here
    assert forecast_report_ahead(s, 0, 8, window).result() == here
    assert forecast_report_ahead(s, 0, 8).result() == here  # the child recomputes the flows


def test_a_household_forecaster_loads_the_load_model_at_set_up() -> None:
    """Built, it has the model libraries loaded: its first forecast that refits does not wait
    for their import (a quarter of a second, measured in scripts/bench_forecast.py)."""
    code = (
        "import sys\n"
        "from meter_sim.scenario import default_scenario\n"
        "from meter_sim.flows import simulate\n"
        "from meter_sim.forecast import HouseholdForecaster, SimulatedWeather\n"
        "s = default_scenario(2, days=1)\n"
        "flows = simulate(s)\n"
        "before = 'mlforecast' in sys.modules\n"
        "HouseholdForecaster(s, flows, SimulatedWeather(s))\n"
        "print(before, 'mlforecast' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert out.stdout.strip() == "False True"
