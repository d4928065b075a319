"""PV output with pvlib: irradiance at the neighbourhood, transposed to each array, to AC energy.

The sky is the same for every household of a neighbourhood, so irradiance and the sun's
position are computed once per scenario, at each slot's midpoint:

- ``"clear"``: pvlib's Ineichen clear-sky model at the location (Linke turbidity from pvlib's
  bundled climatology);
- ``"cloudy"`` (default): the clear-sky global irradiance times a seeded clear-sky index. Each
  day is clear, mixed or overcast (a Markov chain whose odds follow the season), with
  auto-correlated variation within the day; the Erbs model splits the result into direct and
  diffuse parts;
- ``"tmy:<file>"``: a TMY3 file (hourly typical-year data) such as those bundled with pvlib,
  read with :func:`pvlib.iotools.read_tmy3`; each slot takes its hour's values.

Then, for all PV households at once (arrays broadcast over (households, slots)): Hay-Davies
transposition to the plane of each array, Faiman cell temperature, the PVWatts DC model at the
array's peak power, PVWatts system losses (soiling, wiring, mismatch ... about 14 %) and the
PVWatts inverter (AC nameplate = DC peak / 1.15).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pvlib
from numpy.typing import NDArray

from meter_sim.errors import WeatherError
from meter_sim.load import rng_for, slot_starts
from meter_sim.scenario import SLOTS_PER_DAY, Location, Scenario

STREAM_SKY = 10
DC_AC_RATIO = 1.15
GAMMA_PDC = -0.0037
"""Power temperature coefficient of crystalline silicon modules, per kelvin."""
#: Day states of the cloud process: mean clear-sky index and its variation within the day.
_STATES = {"clear": (0.97, 0.03), "mixed": (0.62, 0.22), "overcast": (0.22, 0.08)}
_PERSISTENCE = 0.45
"""Probability that a day repeats the previous day's state (weather comes in spells)."""


@dataclass(frozen=True, slots=True)
class Sky:
    """Irradiance (W/m²) and air temperature at each slot's midpoint, with the sun's position."""

    ghi: NDArray[np.float64]
    dni: NDArray[np.float64]
    dhi: NDArray[np.float64]
    temp_air: NDArray[np.float64]
    wind_speed: NDArray[np.float64]
    zenith: NDArray[np.float64]
    azimuth: NDArray[np.float64]
    dni_extra: NDArray[np.float64]
    clear_sky_index: NDArray[np.float64]


def pv_Wh(scenario: Scenario, sky: Sky | None = None) -> NDArray[np.float64]:
    """Each household's AC PV energy per slot in Wh (floats, 0 without PV): (households, slots)."""
    n_h = len(scenario.households)
    out = np.zeros((n_h, scenario.n_slots))
    with_pv = [i for i, h in enumerate(scenario.households) if h.pv is not None]
    if not with_pv:
        return out
    sky = sky if sky is not None else sky_for(scenario)
    arrays = [scenario.households[i].pv for i in with_pv]
    tilt = np.array([[a.tilt_deg] for a in arrays if a is not None])
    azimuth = np.array([[a.azimuth_deg] for a in arrays if a is not None])
    peak_W = np.array([[a.peak_W] for a in arrays if a is not None], dtype=np.float64)
    poa: Any = pvlib.irradiance.get_total_irradiance(
        tilt,
        azimuth,
        sky.zenith,
        sky.azimuth,
        sky.dni,
        sky.ghi,
        sky.dhi,
        dni_extra=sky.dni_extra,
        model="haydavies",
    )
    poa_global = np.nan_to_num(np.asarray(poa["poa_global"], dtype=np.float64))
    poa_global = np.where(sky.zenith[None, :] < 90.0, np.maximum(poa_global, 0.0), 0.0)
    temp_cell = pvlib.temperature.faiman(poa_global, sky.temp_air, sky.wind_speed)
    pdc = pvlib.pvsystem.pvwatts_dc(poa_global, temp_cell, peak_W, GAMMA_PDC)
    losses_pct = float(pvlib.pvsystem.pvwatts_losses())
    pdc = np.asarray(pdc) * (1.0 - losses_pct / 100.0)
    eta_nom = 0.96
    inverter_dc_limit = peak_W / DC_AC_RATIO / eta_nom
    pac = np.asarray(pvlib.inverter.pvwatts(pdc, inverter_dc_limit, eta_inv_nom=eta_nom))
    out[with_pv] = np.maximum(np.nan_to_num(pac), 0.0) * 0.25  # W over 15 min -> Wh
    return out


def sky_for(scenario: Scenario) -> Sky:
    """The scenario's sky at each slot's midpoint."""
    mid = slot_starts(scenario) + pd.Timedelta(minutes=7.5)
    loc = scenario.location
    site = pvlib.location.Location(loc.latitude, loc.longitude, "UTC", loc.altitude_m)
    position = site.get_solarposition(mid)
    zenith = position["apparent_zenith"].to_numpy(dtype=np.float64)
    azimuth = position["azimuth"].to_numpy(dtype=np.float64)
    dni_extra = np.asarray(pvlib.irradiance.get_extra_radiation(mid), dtype=np.float64)
    if scenario.sky.startswith("tmy:"):
        return _tmy_sky(scenario, mid, zenith, azimuth, dni_extra)
    clear = site.get_clearsky(mid, model="ineichen", solar_position=position, dni_extra=dni_extra)
    ghi_clear = clear["ghi"].to_numpy(dtype=np.float64)
    n_t = len(mid)
    if scenario.sky == "clear":
        kc = np.ones(n_t)
        ghi = ghi_clear
        dni = clear["dni"].to_numpy(dtype=np.float64)
        dhi = clear["dhi"].to_numpy(dtype=np.float64)
    else:
        kc = clear_sky_index(scenario)
        ghi = ghi_clear * kc
        split: Any = pvlib.irradiance.erbs(ghi, zenith, mid.dayofyear.to_numpy())
        dni = np.nan_to_num(np.asarray(split["dni"], dtype=np.float64))
        dhi = np.nan_to_num(np.asarray(split["dhi"], dtype=np.float64))
    temp_air = _air_temperature(scenario, mid, kc)
    return Sky(ghi, dni, dhi, temp_air, np.full(n_t, 2.0), zenith, azimuth, dni_extra, kc)


def clear_sky_index(scenario: Scenario) -> NDArray[np.float64]:
    """The seeded cloud process: ratio of actual to clear-sky global irradiance, per slot."""
    rng = rng_for(scenario.seed, STREAM_SKY, scenario.first_slot)
    states = list(_STATES)
    out = np.empty(scenario.n_slots)
    previous: str | None = None
    for d in range(scenario.days):
        day = scenario.start + timedelta(days=d)
        # Summer (day of year ~172) is clearer than winter in western/central Europe.
        summer = 0.5 + 0.5 * math.cos(2 * math.pi * (day.timetuple().tm_yday - 172) / 365.25)
        odds = np.array([0.2 + 0.3 * summer, 0.35, 0.45 - 0.3 * summer])
        if previous is not None and rng.random() < _PERSISTENCE:
            state = previous
        else:
            state = states[int(rng.choice(3, p=odds / odds.sum()))]
        previous = state
        mean, spread = _STATES[state]
        eps = rng.standard_normal(SLOTS_PER_DAY)
        wiggle = np.empty(SLOTS_PER_DAY)
        acc = 0.0
        for k in range(SLOTS_PER_DAY):  # AR(1), correlation over about an hour
            acc = 0.75 * acc + math.sqrt(1 - 0.75**2) * float(eps[k])
            wiggle[k] = acc
        out[d * SLOTS_PER_DAY : (d + 1) * SLOTS_PER_DAY] = np.clip(
            mean + spread * wiggle, 0.05, 1.1
        )
    return out


def _air_temperature(
    scenario: Scenario, mid: pd.DatetimeIndex, kc: NDArray[np.float64]
) -> NDArray[np.float64]:
    """A seasonal and diurnal air temperature (°C): only the PV cell temperature uses it."""
    doy = mid.dayofyear.to_numpy()
    solar_hour = (mid.hour + mid.minute / 60).to_numpy() + scenario.location.longitude / 15
    seasonal = 11.0 - 9.0 * np.cos(2 * np.pi * (doy - 15) / 365.25)
    diurnal = (2.0 + 4.0 * kc) * np.cos(2 * np.pi * (solar_hour - 15.0) / 24)
    return np.asarray(seasonal + diurnal, dtype=np.float64)


# ───────────────────────────── TMY files ─────────────────────────────


def tmy_path(name: str) -> Path:
    """A TMY file: a path, or the name of a file in pvlib's data directory."""
    given = Path(name)
    if given.is_file():
        return given
    bundled = Path(pvlib.__file__).parent / "data" / name
    if bundled.is_file():
        return bundled
    raise WeatherError(
        f"TMY file {name!r} is neither a path nor a file in pvlib's data directory "
        f"({bundled.parent}); bundled TMY3 files include 723170TYA.CSV and 703165TY.csv"
    )


@lru_cache(maxsize=4)
def _read_tmy(path: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    data, meta = pvlib.iotools.read_tmy3(path, map_variables=True)
    return data, dict(meta)


def tmy_location(name: str) -> Location:
    """The location a TMY file was recorded at, to use as the scenario's location."""
    _, meta = _read_tmy(str(tmy_path(name)))
    offset = int(meta["TZ"])
    # POSIX Etc zones count the other way: UTC-5 is Etc/GMT+5.
    tz = "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"
    return Location(
        name=str(meta["Name"]).strip('"'),
        latitude=float(meta["latitude"]),
        longitude=float(meta["longitude"]),
        tz=tz,
        altitude_m=float(meta["altitude"]),
        country="US",
    )


_MONTH_START = np.array([0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334])


def _tmy_sky(
    scenario: Scenario,
    mid: pd.DatetimeIndex,
    zenith: NDArray[np.float64],
    azimuth: NDArray[np.float64],
    dni_extra: NDArray[np.float64],
) -> Sky:
    name = scenario.sky.removeprefix("tmy:")
    data, meta = _read_tmy(str(tmy_path(name)))
    loc = scenario.location
    if abs(loc.latitude - meta["latitude"]) > 1 or abs(loc.longitude - meta["longitude"]) > 1:
        raise WeatherError(
            f"TMY file {name!r} was recorded at {meta['latitude']}, {meta['longitude']}, more "
            f"than a degree from the scenario's {loc.latitude}, {loc.longitude}; use "
            f"meter_sim.tmy_location({name!r}) as the scenario's location"
        )
    # TMY3 stamps are hour-ending in local standard time: the record at 13:00 covers 12-13h.
    starts = data.index - pd.Timedelta(hours=1)
    table = np.zeros((365, 24, 4))
    doy = _MONTH_START[starts.month.to_numpy() - 1] + starts.day.to_numpy() - 1
    keep = doy < 365  # a leap-day record, if any, is dropped
    columns = ["ghi", "dni", "dhi", "temp_air"]
    values = data[columns].to_numpy(dtype=np.float64)
    table[doy[keep], starts.hour.to_numpy()[keep]] = values[keep]
    wind = np.zeros((365, 24))
    wind[doy[keep], starts.hour.to_numpy()[keep]] = data["wind_speed"].to_numpy()[keep]
    local = mid.tz_convert(f"Etc/GMT{-int(meta['TZ']):+d}" if int(meta["TZ"]) else "UTC")
    month = local.month.to_numpy()
    day = np.where((month == 2) & (local.day.to_numpy() == 29), 28, local.day.to_numpy())
    slot_doy = _MONTH_START[month - 1] + day - 1
    hour = local.hour.to_numpy()
    rows = table[slot_doy, hour]
    up = zenith < 90.0
    ghi = np.where(up, rows[:, 0], 0.0)
    dni = np.where(up, rows[:, 1], 0.0)
    dhi = np.where(up, rows[:, 2], 0.0)
    return Sky(
        ghi=ghi,
        dni=dni,
        dhi=dhi,
        temp_air=rows[:, 3],
        wind_speed=wind[slot_doy, hour],
        zenith=zenith,
        azimuth=azimuth,
        dni_extra=dni_extra,
        clear_sky_index=np.full(len(mid), np.nan),
    )
