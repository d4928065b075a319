"""Forecasts in the simulator: a simulated weather forecast, PV through the simulator's own PV
model, and the forecast accuracy of a run for its report.

**PV.** :func:`pv_forecast_Wh` turns a :class:`ledger.forecast.WeatherForecast` (global
horizontal irradiance, air temperature, wind) into each household's PV energy per slot with the
same pvlib chain that simulates the PV (:func:`meter_sim.pv.pv_Wh`): the sun's position at each
slot's midpoint, the Erbs model to split the irradiance into direct and diffuse parts, then
transposition, cell temperature, PVWatts DC, losses and inverter. Whatever the weather comes
from (:class:`SimulatedWeather` here, any :class:`ledger.forecast.WeatherSource` live), the PV
model is this one.

**The simulated weather forecast** (:class:`SimulatedWeather`) is the scenario's own weather
with an error, so that the forecast is not the future in disguise. Issued at slot ``i`` for the
slot ``i + k`` (k = 1 .. 288), the clear-sky index (actual over clear-sky irradiance) is the
true one averaged over the 13 slots centred on ``i + k`` (a weather model resolves hours, not
the passing clouds of a quarter hour), plus ``sigma(k) * z(k)``, clipped to [0.05, 1.1]:

- ``sigma(k) = 0.08 + 0.27 * sqrt(k / 288)``: 0.11 an hour ahead, 0.24 a day ahead, 0.35 three
  days ahead (a day-ahead irradiance forecast misses by some 20 to 40 % of the mean on changing
  days, far less on clear ones);
- ``z`` is a stationary AR(1) series along the horizon, unit variance, correlation
  ``exp(-1/16)`` from one slot to the next (errors last some four hours: a front arrives early
  or late), drawn from the scenario's seed and the issue slot alone (numpy stream
  :data:`STREAM_FORECAST`). The same seed and issue slot give the same forecast; the error does
  not depend on the weather it is added to.

The irradiance forecast is the clear-sky irradiance (pvlib's Ineichen model) times that index;
air temperature and wind are taken as they were (they only move the cells' temperature: a 2 K
error changes PV output by under 1 %).

**Households.** :class:`HouseholdForecaster` forecasts, for each household, PV (above), load
(:class:`ledger.forecast.LoadForecaster`, from its own metered load up to the issue slot) and
the net position, export minus import: the PV and load forecasts netted, then run through the
household's battery from its charge at the issue slot (:func:`meter_sim.battery.dispatch`, the
simulator's self-consumption rule). It reads the metered flows up to the issue slot only.

**A run's report.** :func:`forecast_report` scores the neighbourhood's forecasts (sums over the
households) of PV, load and net position at 1, 6, 24, 48 and 72 hours ahead and pooled over a
day ahead: MAE, RMSE, and skill against persistence and seasonal-naive
(:func:`ledger.forecast.accuracy_by_horizon`). A run of a day has no past to learn from, so the
forecaster is given :data:`HISTORY_DAYS` days before the window from the same households and
place (a scenario over those days, seeded like the run; its weather and load are a plausible
past, not the run's own earlier days). Forecasts are issued every :data:`ISSUE_EVERY_SLOTS`
slots (an hour) from 72 hours before the window to its end, at most :data:`MAX_ISSUES` of
them (evenly thinned beyond), each reaching 72 hours ahead; only targets inside the run's
window are scored. ``report.json`` gets them under ``forecast``, with one day-ahead forecast
against what was metered for the plot ``forecast.png`` (:func:`forecast_figure`). The entry
depends on the scenario and the metered flows only (no wall time in it), so a resumed run and
a run through the API report the same figures as an uninterrupted one. ``voisin simulate``
computes it in a forked child (:func:`forecast_report_ahead`) started before the run opens its
chain, on the second core while the slots run, so that it costs the run little of its time.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from numpy.typing import NDArray

from ledger.forecast import (
    HORIZONS,
    MAX_HORIZON_SLOTS,
    SLOTS_PER_DAY,
    ForecastError,
    LoadForecaster,
    WeatherForecast,
    accuracy_by_horizon,
    check_horizon,
    check_slot,
    load_model_libraries,
    persistence,
    seasonal_naive,
)
from ledger.localtime import local_date, slot_start, zone
from ledger.types import SLOT_SECONDS
from meter_sim.battery import dispatch
from meter_sim.flows import Flows
from meter_sim.forked import in_forked_child
from meter_sim.scenario import Scenario

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ledger.forecast import WeatherSource

STREAM_FORECAST: Final = 20
"""numpy stream id of the weather forecast's error (apart from the load's and the sky's)."""
SIGMA_FIRST: Final = 0.08
SIGMA_GROWTH: Final = 0.27
"""Clear-sky index error: ``SIGMA_FIRST + SIGMA_GROWTH * sqrt(k / 288)`` at ``k`` slots ahead."""
ERROR_PERSISTENCE_SLOTS: Final = 16.0
"""The error's AR(1) correlation from one slot to the next is ``exp(-1 / 16)``."""
KC_RANGE: Final = (0.05, 1.1)
SMOOTHING_SLOTS: Final = 13
"""The forecast starts from the clear-sky index averaged over the 13 slots (3¼ hours) centred
on each slot: a weather model resolves hours, not the clouds of a quarter hour."""
HISTORY_DAYS: Final = 14
ISSUE_EVERY_SLOTS: Final = 4
MAX_ISSUES: Final = 400
#: What the report scores, in order, as named in ``report.json``: PV, load, net position.
QUANTITIES: Final = ("pv", "load", "net")
SENT_FLOWS_BYTES: Final = 64 * 2**20
"""Flows up to this size are pickled to the forecasts' child; larger ones it recomputes."""


# ───────────────────────────── The simulated weather forecast ─────────────────────────────


def _clear_ghi(scenario: Scenario, first_slot: int, n_slots: int) -> NDArray[np.float64]:
    """pvlib's Ineichen clear-sky global irradiance at each slot's midpoint (W/m²)."""
    import pvlib

    loc = scenario.location
    site = pvlib.location.Location(loc.latitude, loc.longitude, "UTC", loc.altitude_m)
    mid = _midpoints(first_slot, n_slots)
    clear = site.get_clearsky(mid, model="ineichen")
    out: NDArray[np.float64] = np.asarray(clear["ghi"], dtype=np.float64)
    return out


def _midpoints(first_slot: int, n_slots: int) -> Any:
    import pandas as pd

    start = pd.Timestamp(first_slot * SLOT_SECONDS + SLOT_SECONDS // 2, unit="s", tz="UTC")
    return pd.date_range(start, periods=n_slots, freq="15min")


def history_scenario(scenario: Scenario, window_first_slot: int, days: int) -> Scenario:
    """A scenario of the same households and place covering at least the ``days`` days before
    ``window_first_slot`` (it starts a day earlier and ends a day later: local days and
    UTC slots do not line up across a clock change)."""
    start = local_date(window_first_slot, scenario.location.tz) - timedelta(days=days + 1)
    return dataclasses.replace(scenario, start=start, days=days + 2)


class SimulatedWeather:
    """The scenario's own weather with a seeded error that grows with the horizon (see the
    module docstring): a :class:`ledger.forecast.WeatherSource`.

    It knows the weather from ``history_days`` before ``window_first_slot`` (the history
    scenario's sky, :func:`history_scenario`) to 72 hours after the scenario's end.
    """

    def __init__(
        self,
        scenario: Scenario,
        window_first_slot: int | None = None,
        history_days: int = HISTORY_DAYS,
    ) -> None:
        from meter_sim.pv import sky_for

        self.scenario = scenario
        self.seed = scenario.seed
        first = scenario.first_slot if window_first_slot is None else window_first_slot
        ahead = dataclasses.replace(
            scenario, days=scenario.days + MAX_HORIZON_SLOTS // SLOTS_PER_DAY
        )
        past = history_scenario(scenario, first, history_days)
        self.first_slot = first - history_days * SLOTS_PER_DAY
        end = ahead.first_slot + ahead.n_slots
        n = end - self.first_slot
        ghi = np.empty(n)
        temp = np.empty(n)
        wind = np.empty(n)
        # The window and after: the scenario's own sky (what the run metered); before it, the
        # history scenario's.
        for source, lo, hi in (
            (past, self.first_slot, first),
            (ahead, max(first, ahead.first_slot), end),
        ):
            if hi <= lo:
                continue
            sky = sky_for(source)
            cut = slice(lo - source.first_slot, hi - source.first_slot)
            ghi[lo - self.first_slot : hi - self.first_slot] = sky.ghi[cut]
            temp[lo - self.first_slot : hi - self.first_slot] = sky.temp_air[cut]
            wind[lo - self.first_slot : hi - self.first_slot] = sky.wind_speed[cut]
        self.clear_ghi = _clear_ghi(scenario, self.first_slot, n)
        self.kc = np.where(self.clear_ghi > 1.0, ghi / np.maximum(self.clear_ghi, 1.0), 1.0)
        self.kc_hourly = _centred_mean(self.kc, SMOOTHING_SLOTS)
        self.temp_air = temp
        self.wind_speed = wind

    @property
    def last_slot(self) -> int:
        return self.first_slot + len(self.kc) - 1

    def error(self, issue_slot: int) -> NDArray[np.float64]:
        """The clear-sky index error of the forecast issued at ``issue_slot``, k = 1 .. 288."""
        from meter_sim.load import rng_for

        rng = rng_for(self.seed, STREAM_FORECAST, issue_slot)
        eps = rng.standard_normal(MAX_HORIZON_SLOTS)
        phi = math.exp(-1.0 / ERROR_PERSISTENCE_SLOTS)
        z = np.empty(MAX_HORIZON_SLOTS)
        z[0] = eps[0]
        innovation = math.sqrt(1.0 - phi * phi)
        for k in range(1, MAX_HORIZON_SLOTS):
            z[k] = phi * z[k - 1] + innovation * eps[k]
        steps = np.arange(1, MAX_HORIZON_SLOTS + 1)
        sigma = SIGMA_FIRST + SIGMA_GROWTH * np.sqrt(steps / MAX_HORIZON_SLOTS)
        out: NDArray[np.float64] = sigma * z
        return out

    def forecast(self, issue_slot: int, horizon_slots: int) -> WeatherForecast:
        """The forecast issued at the end of ``issue_slot`` for the next ``horizon_slots``."""
        issue = check_slot("issue_slot", issue_slot)
        h = check_horizon(horizon_slots)
        lo = issue + 1 - self.first_slot
        if lo < 0 or issue + h > self.last_slot:
            raise ForecastError(
                f"the simulated weather covers slots {self.first_slot} to {self.last_slot}; a "
                f"forecast issued at slot {issue} for {h} slots reaches outside it"
            )
        cut = slice(lo, lo + h)
        kc = np.clip(self.kc_hourly[cut] + self.error(issue)[:h], *KC_RANGE)
        return WeatherForecast(
            issue_slot=issue,
            ghi_W_m2=self.clear_ghi[cut] * kc,
            temp_air_C=self.temp_air[cut],
            wind_speed_m_s=self.wind_speed[cut],
        )


def _centred_mean(values: NDArray[np.float64], width: int) -> NDArray[np.float64]:
    """Each value's mean over the ``width`` slots centred on it (fewer at the ends)."""
    kernel = np.ones(width)
    total = np.convolve(values, kernel, mode="same")
    count = np.convolve(np.ones_like(values), kernel, mode="same")
    out: NDArray[np.float64] = total / count
    return out


# ───────────────────────────── PV from a weather forecast ─────────────────────────────


@dataclass(frozen=True)
class SolarGeometry:
    """The sun's position and the extraterrestrial irradiance at each slot's midpoint from
    ``first_slot`` on: what a PV forecast needs besides the weather (it is not weather)."""

    first_slot: int
    zenith: NDArray[np.float64]
    azimuth: NDArray[np.float64]
    dni_extra: NDArray[np.float64]

    @classmethod
    def of(cls, scenario: Scenario, first_slot: int, n_slots: int) -> SolarGeometry:
        import pvlib

        loc = scenario.location
        site = pvlib.location.Location(loc.latitude, loc.longitude, "UTC", loc.altitude_m)
        mid = _midpoints(first_slot, n_slots)
        position = site.get_solarposition(mid)
        return cls(
            first_slot,
            position["apparent_zenith"].to_numpy(dtype=np.float64),
            position["azimuth"].to_numpy(dtype=np.float64),
            np.asarray(pvlib.irradiance.get_extra_radiation(mid), dtype=np.float64),
        )

    def covers(self, first_slot: int, n_slots: int) -> bool:
        return self.first_slot <= first_slot and first_slot + n_slots <= self.first_slot + len(
            self.zenith
        )

    def cut(self, first_slot: int, n_slots: int) -> SolarGeometry:
        part = slice(first_slot - self.first_slot, first_slot - self.first_slot + n_slots)
        return SolarGeometry(
            first_slot, self.zenith[part], self.azimuth[part], self.dni_extra[part]
        )


def pv_forecast_Wh(
    scenario: Scenario, weather: WeatherForecast, geometry: SolarGeometry | None = None
) -> NDArray[np.float64]:
    """Each household's PV energy (Wh, floats, 0 without PV) for the slots ``weather`` covers,
    through :func:`meter_sim.pv.pv_Wh`; ``geometry`` may hold the sun's positions already."""
    import pvlib

    from meter_sim.pv import Sky, pv_Wh

    h = weather.horizon_slots
    first = weather.first_slot
    if geometry is None or not geometry.covers(first, h):
        geometry = SolarGeometry.of(scenario, first, h)
    sun = geometry.cut(first, h)
    mid = _midpoints(first, h)
    split: Any = pvlib.irradiance.erbs(weather.ghi_W_m2, sun.zenith, mid.dayofyear.to_numpy())
    # pv_Wh computes whole days of the scenario's slots: pad the horizon with night.
    days = -(-h // SLOTS_PER_DAY)
    pad = days * SLOTS_PER_DAY - h

    def padded(values: NDArray[np.float64], fill: float) -> NDArray[np.float64]:
        return np.concatenate([np.asarray(values, dtype=np.float64), np.full(pad, fill)])

    sky = Sky(
        ghi=padded(weather.ghi_W_m2, 0.0),
        dni=padded(np.nan_to_num(np.asarray(split["dni"], dtype=np.float64)), 0.0),
        dhi=padded(np.nan_to_num(np.asarray(split["dhi"], dtype=np.float64)), 0.0),
        temp_air=padded(weather.temp_air_C, 10.0),
        wind_speed=padded(weather.wind_speed_m_s, 2.0),
        zenith=padded(sun.zenith, 180.0),
        azimuth=padded(sun.azimuth, 0.0),
        dni_extra=padded(sun.dni_extra, 1361.0),
        clear_sky_index=np.full(days * SLOTS_PER_DAY, np.nan),
    )
    out: NDArray[np.float64] = pv_Wh(dataclasses.replace(scenario, days=days), sky)[:, :h]
    return out


# ───────────────────────────── Household forecasts ─────────────────────────────


@dataclass(frozen=True)
class Forecast:
    """Forecasts issued at the end of ``issue_slot`` for the next slots, integer Wh shaped
    (households, horizon): PV, load and net position (export minus import)."""

    issue_slot: int
    pv_Wh: NDArray[np.int64]
    load_Wh: NDArray[np.int64]
    net_Wh: NDArray[np.int64]


def to_Wh(values: NDArray[np.float64]) -> NDArray[np.int64]:
    """Floats from a model to integer Wh >= 0 (each slot rounded to the nearest Wh)."""
    out: NDArray[np.int64] = np.rint(np.maximum(values, 0.0)).astype(np.int64)
    return out


class HouseholdForecaster:
    """PV, load and net forecasts for every household of ``scenario``, from the metered
    ``flows`` (any contiguous stretch of slots) and a weather source. A forecast reads the flows
    up to its issue slot and nothing after it."""

    def __init__(
        self,
        scenario: Scenario,
        flows: Flows,
        weather: WeatherSource,
        geometry: SolarGeometry | None = None,
    ) -> None:
        if flows.shape[0] != len(scenario.households):
            raise ForecastError(
                f"flows have {flows.shape[0]} households, the scenario {len(scenario.households)}"
            )
        self.scenario = scenario
        self.flows = flows
        self.weather = weather
        self.geometry = geometry
        # Loaded now, at set-up: the first slot that refits the load model does not wait.
        load_model_libraries()
        self.load = LoadForecaster()

    def forecast(self, issue_slot: int, horizon_slots: int = MAX_HORIZON_SLOTS) -> Forecast:
        issue = check_slot("issue_slot", issue_slot)
        h = check_horizon(horizon_slots)
        at = issue - self.flows.first_slot
        if not 0 <= at < self.flows.shape[1]:
            raise ForecastError(
                f"issue slot {issue} is not among the metered slots {self.flows.first_slot} to "
                f"{self.flows.first_slot + self.flows.shape[1] - 1}"
            )
        load = to_Wh(self.load.forecast(self.flows.load_Wh[:, : at + 1], issue, h))
        pv = to_Wh(pv_forecast_Wh(self.scenario, self.weather.forecast(issue, h), self.geometry))
        net = pv - load
        batteries = [
            None if b is None else dataclasses.replace(b, initial_Wh=int(level) // 1000)
            for b, level in zip(
                (s.battery for s in self.scenario.households),
                self.flows.battery_mWh[:, at],
                strict=True,
            )
        ]
        charge, discharge, _ = dispatch(net, batteries)
        return Forecast(issue, pv, load, net - charge + discharge)


# ───────────────────────────── A run's forecast accuracy ─────────────────────────────


def joined(before: Flows, after: Flows) -> Flows:
    """``before`` then ``after`` as one stretch of slots (``before`` ends where ``after``
    starts)."""
    if before.first_slot + before.shape[1] != after.first_slot:
        raise ForecastError("the flows to join are not contiguous")
    fields = {
        f.name: np.concatenate([getattr(before, f.name), getattr(after, f.name)], axis=1)
        for f in dataclasses.fields(Flows)
        if f.name != "first_slot"
    }
    return Flows(first_slot=before.first_slot, **fields)


def metered_with_history(scenario: Scenario, window: Flows) -> Flows:
    """The run's window preceded by :data:`HISTORY_DAYS` days of the history scenario."""
    from meter_sim.flows import simulate

    past = history_scenario(scenario, window.first_slot, HISTORY_DAYS)
    flows = simulate(past)
    lo = window.first_slot - HISTORY_DAYS * SLOTS_PER_DAY - past.first_slot
    hi = window.first_slot - past.first_slot
    cut = {
        f.name: getattr(flows, f.name)[:, lo:hi]
        for f in dataclasses.fields(Flows)
        if f.name != "first_slot"
    }
    return joined(Flows(first_slot=window.first_slot - hi + lo, **cut), window)


def issue_slots(window_first: int, window_slots: int) -> list[int]:
    """Hourly issue slots from 72 hours before the window to its last-but-one slot (every
    forecast issued then reaches into the window), evenly thinned to :data:`MAX_ISSUES`
    (keeping the one just before the window, whose forecast the plot draws)."""
    last_issue = window_first + window_slots - 2
    first_issue = window_first - MAX_HORIZON_SLOTS
    # Aligned on the slot before the window, so the forecast of the window's start is one.
    start = window_first - 1 - ((window_first - 1 - first_issue) // ISSUE_EVERY_SLOTS) * 4
    slots = list(range(start, max(last_issue, window_first - 1) + 1, ISSUE_EVERY_SLOTS))
    if len(slots) > MAX_ISSUES:
        picks = np.linspace(0, len(slots) - 1, MAX_ISSUES).round().astype(int)
        thinned = sorted({slots[int(p)] for p in picks})
        start_of_window = window_first - 1  # its forecast is the plot's
        if start_of_window not in thinned:
            nearest = min(thinned, key=lambda slot: abs(slot - start_of_window))
            thinned = sorted({*thinned, start_of_window} - {nearest})
        slots = thinned
    return slots


def _neighbourhood(flows: Flows) -> dict[str, NDArray[np.int64]]:
    return {
        "pv": flows.pv_Wh.sum(axis=0),
        "load": flows.load_Wh.sum(axis=0),
        "net": (flows.export_Wh - flows.import_Wh).sum(axis=0),
    }


def forecast_report(scenario: Scenario, window: Flows) -> dict[str, Any]:
    """The ``forecast`` entry of a run's report (see the module docstring)."""
    metered = metered_with_history(scenario, window)
    weather = SimulatedWeather(scenario, window.first_slot)
    geometry = SolarGeometry.of(scenario, weather.first_slot, len(weather.kc))
    forecaster = HouseholdForecaster(scenario, metered, weather, geometry)
    actual = _neighbourhood(metered)
    issues = issue_slots(window.first_slot, window.shape[1])
    h = MAX_HORIZON_SLOTS
    n_i = len(issues)
    made = {q: np.empty((n_i, h)) for q in QUANTITIES}
    seen = {q: np.full((n_i, h), np.nan) for q in QUANTITIES}
    last = {q: np.empty((n_i, h)) for q in QUANTITIES}
    daily = {q: np.empty((n_i, h)) for q in QUANTITIES}
    w_lo = window.first_slot - metered.first_slot
    w_hi = w_lo + window.shape[1]
    example: Forecast | None = None
    for row, issue in enumerate(issues):
        at = issue - metered.first_slot
        # Only as far ahead as the window reaches: the slots beyond are never scored (and a
        # forecast's first slots do not depend on how far it goes).
        need = min(h, w_hi - at - 1)
        fc = forecaster.forecast(issue, need)
        if issue == window.first_slot - 1:
            example = fc
        lo, hi = max(at + 1, w_lo), min(at + 1 + h, w_hi)
        for q, values in zip(QUANTITIES, (fc.pv_Wh, fc.load_Wh, fc.net_Wh), strict=True):
            series = actual[q]
            made[q][row, :need] = values.sum(axis=0)
            made[q][row, need:] = 0.0  # not scored: nothing was metered there
            if hi > lo:
                seen[q][row, lo - at - 1 : hi - at - 1] = series[lo:hi]
            past = series[None, : at + 1]
            last[q][row] = persistence(past, h)[0]
            daily[q][row] = seasonal_naive(past, h)[0]
    out: dict[str, Any] = {
        "issues": n_i,
        "issue_every_slots": ISSUE_EVERY_SLOTS,
        "history_days": HISTORY_DAYS,
        "weather_error": {
            "sigma_first": SIGMA_FIRST,
            "sigma_growth": SIGMA_GROWTH,
            "persistence_slots": ERROR_PERSISTENCE_SLOTS,
        },
    }
    for q in QUANTITIES:
        out[q] = accuracy_by_horizon(made[q], seen[q], last[q], daily[q], HORIZONS)
    if example is not None:
        n = min(window.shape[1], SLOTS_PER_DAY)
        out["example"] = {
            "issue_slot": example.issue_slot,
            "first_slot": window.first_slot,
            **{
                q: {
                    "forecast_Wh": [int(v) for v in values.sum(axis=0)[:n]],
                    "actual_Wh": [int(v) for v in actual[q][w_lo : w_lo + n]],
                }
                for q, values in zip(
                    QUANTITIES, (example.pv_Wh, example.load_Wh, example.net_Wh), strict=True
                )
            },
        }
    return out


@dataclass(frozen=True)
class ForecastAhead:
    """A run's :func:`forecast_report`, being computed in a forked child
    (:func:`forecast_report_ahead`) while the run goes on."""

    scenario: Scenario
    first_slot: int
    slots: int | None
    job: Future[dict[str, Any]]

    def result(self) -> dict[str, Any]:
        """The entry, once computed; computed here if the child died."""
        try:
            return self.job.result()
        except BrokenProcessPool:
            return _report_of(self.scenario, self.first_slot, self.slots, None)


def _report_of(
    scenario: Scenario, first_slot: int, slots: int | None, flows: Flows | None
) -> dict[str, Any]:
    from meter_sim.flows import simulate, window

    metered = window(simulate(scenario), first_slot, slots) if flows is None else flows
    return forecast_report(scenario, metered)


def forecast_report_ahead(
    scenario: Scenario, first_slot: int = 0, slots: int | None = None, flows: Flows | None = None
) -> ForecastAhead:
    """Start :func:`forecast_report` for the window ``first_slot``, ``slots`` of the scenario
    on the second core. ``flows`` (the window's) are sent to the child if given and under
    :data:`SENT_FLOWS_BYTES`; else the child recomputes them (the seeded model's, the same).
    The forecast models and their libraries are loaded in the child only.

    Fork it before a chain is opened: a child forked later would inherit the open chain's
    lock and hold it until it ends.
    """
    if flows is not None:
        arrays = [f.name for f in dataclasses.fields(Flows) if f.name != "first_slot"]
        size = sum(getattr(flows, name).nbytes for name in arrays)
        flows = flows if size <= SENT_FLOWS_BYTES else None
    job = in_forked_child(_report_of, scenario, first_slot, slots, flows)
    return ForecastAhead(scenario, first_slot, slots, job)


def add_forecast_report(
    report: dict[str, Any], scenario: Scenario, window: Flows, ahead: ForecastAhead | None
) -> None:
    """Add the run's forecast accuracy to its report, under ``forecast``: from ``ahead`` if it
    was started, else computed here."""
    report["forecast"] = forecast_report(scenario, window) if ahead is None else ahead.result()


# ───────────────────────────── The plot ─────────────────────────────

_LABELS: Final = {"pv": "PV production", "load": "consumption", "net": "net position"}


def forecast_figure(forecast: Mapping[str, Any], tz: str) -> Figure:
    """The day-ahead forecast issued just before the window against what was metered, for the
    neighbourhood's PV, load and net position (kWh per slot, local time)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
    from matplotlib.figure import Figure

    example = forecast["example"]
    fig = Figure(figsize=(10.0, 7.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(QUANTITIES), 1, sharex=True)
    n = len(example["pv"]["actual_Wh"])
    slots = range(example["first_slot"], example["first_slot"] + n + 1)
    t = date2num([slot_start(s, tz) for s in slots])  # type: ignore[no-untyped-call]
    for ax, q in zip(axes, QUANTITIES, strict=True):
        for key, label, colour in (
            ("actual_Wh", "metered", "#1f4e79"),
            ("forecast_Wh", "forecast", "#f28e2b"),
        ):
            values = np.asarray(example[q][key], dtype=np.float64) / 1000
            ax.step(t, np.append(values, values[-1:]), where="post", label=label, color=colour)
        skill = forecast.get(q, {}).get("day_ahead", {}).get("skill_vs_seasonal_naive")
        shown = "" if skill is None else f" (day-ahead skill vs seasonal-naive {skill:.2f})"
        ax.set_title(f"{_LABELS[q]}{shown}", fontsize="medium")
        ax.set_ylabel("kWh per slot")
        ax.grid(alpha=0.3)
    locator = AutoDateLocator(tz=zone(tz))  # type: ignore[no-untyped-call]
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=zone(tz)))  # type: ignore[no-untyped-call]
    axes[-1].set_xlabel(f"local time, {tz}")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize="small")
    fig.suptitle("Neighbourhood forecast issued before the window, against the metered values")
    return fig


def write_forecast_plot(out: Path, forecast: Mapping[str, Any] | None, tz: str) -> Path | None:
    """Write ``forecast.png`` into ``out`` if the report has a forecast to draw."""
    if not forecast or "example" not in forecast:
        return None
    path = out / "forecast.png"
    forecast_figure(forecast, tz).savefig(path, format="png")
    return path
