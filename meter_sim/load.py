"""Household load: the BDEW H0 standard load profile (demandlib), made individual per household.

The H0 profile is computed once per calendar year and country (it is the same curve for every
household), in local wall-clock time with the country's national holidays treated as Sundays,
as the BDEW method prescribes. Each household then gets, from its own seeded stream:

- its own yearly energy (the scenario's ``annual_Wh``);
- a time shift of up to an hour either way (early risers, late dinners);
- a share of flat base load (fridges, standby) blended into the curve;
- a factor per day (some days at home, some away), normalised over the calendar year so the
  yearly energy stays that of the scenario;
- auto-correlated noise within the day (appliances switching), normalised per simulated day so
  it moves energy within the day without adding any.

All of this is float arithmetic on arrays shaped (households, slots); :mod:`meter_sim.flows`
rounds the result to integer Wh.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any

import holidays as holidays_lib
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.signal import lfilter

from meter_sim.errors import ScenarioError
from meter_sim.scenario import SLOTS_PER_DAY, Scenario

#: Stream ids for numpy SeedSequence: one per random process, so that changing one process
#: (or the number of households) never changes another's draws.
STREAM_SHAPE = 1
STREAM_DAILY = 2
STREAM_NOISE = 3

MAX_SHIFT_SLOTS = 4
"""A household's load curve is shifted by up to this many slots (1 h) either way."""
DAILY_SIGMA = 0.12
NOISE_SIGMA = 0.35
NOISE_PHI = 0.85
"""AR(1) coefficient of the within-day noise at 15 minutes (correlation over about 1.5 h)."""


def rng_for(seed: int, *stream: int) -> np.random.Generator:
    """A numpy generator for one random stream of a scenario (seed + stream ids)."""
    return np.random.default_rng(np.random.SeedSequence([seed, *stream]))


def slot_starts(scenario: Scenario) -> pd.DatetimeIndex:
    """The UTC start of each simulated slot."""
    return pd.date_range(scenario.start_utc, periods=scenario.n_slots, freq="15min")


@lru_cache(maxsize=16)
def h0_year(year: int, country: str) -> NDArray[np.float64]:
    """BDEW H0 (dynamised) for ``year``: the share of the yearly energy in each local 15-min slot.

    Indexed by local wall-clock slot from January 1st 00:00 (35,040 or 35,136 values), sums to 1.
    """
    try:
        national = dict(holidays_lib.country_holidays(country, years=year))
    except NotImplementedError as exc:
        raise ScenarioError(
            f"no national holidays known for country {country!r}; use an ISO 3166 alpha-2 code "
            "that the holidays package supports (FR, CH, DE, US, ...)"
        ) from exc
    # demandlib 0.2.2 calls warnings.simplefilter("error") while it builds the profiles,
    # which would turn every later warning of the process into an exception: keep it local.
    with warnings.catch_warnings():
        from demandlib.bdew import ElecSlp

        slp = ElecSlp(year, holidays=national)
        profile = slp.get_scaled_profiles({"h0_dyn": 1.0})["h0_dyn"].to_numpy(dtype=np.float64)
    # The dynamisation polynomial leaves the sum at 1.0001: normalise to exactly one year.
    normalised: NDArray[np.float64] = np.asarray(profile / profile.sum(), dtype=np.float64)
    normalised.setflags(write=False)
    return normalised


def load_Wh(scenario: Scenario) -> NDArray[np.float64]:
    """Each household's consumption per slot in Wh (floats), shaped (households, slots)."""
    times = slot_starts(scenario)
    local = times.tz_convert(scenario.location.tz).tz_localize(None)
    n_h = len(scenario.households)
    country = scenario.location.country
    margin = pd.Timedelta(minutes=15 * (MAX_SHIFT_SLOTS + 1))
    years = list(range((local[0] - margin).year, (local[-1] + margin).year + 1))
    yearly = [h0_year(y, country) for y in years]
    curve = np.concatenate(yearly)
    flat = np.concatenate([np.full(len(p), 1.0 / len(p)) for p in yearly])
    origin = pd.Timestamp(years[0], 1, 1)
    pos = ((local - origin) // pd.Timedelta(minutes=15)).to_numpy(dtype=np.int64)

    shifts = np.empty(n_h, dtype=np.int64)
    base_share = np.empty(n_h)
    for i in range(n_h):
        rng = rng_for(scenario.seed, STREAM_SHAPE, i)
        shifts[i] = rng.integers(-MAX_SHIFT_SLOTS, MAX_SHIFT_SLOTS + 1)
        base_share[i] = rng.uniform(0.0, 0.3)
    idx = pos[None, :] - shifts[:, None]
    annual = np.array([h.annual_Wh for h in scenario.households], dtype=np.float64)
    share = base_share[:, None]
    base = ((1.0 - share) * curve[idx] + share * flat[idx]) * annual[:, None]

    daily = _daily_factors(scenario, local, years, yearly)
    noise = _noise(scenario, base)
    out: NDArray[np.float64] = base * daily * noise
    return out


def _daily_factors(
    scenario: Scenario,
    local: pd.DatetimeIndex,
    years: list[int],
    yearly: list[NDArray[np.float64]],
) -> NDArray[np.float64]:
    """Per household and slot, the factor of the slot's local day (mean one over each year)."""
    n_h = len(scenario.households)
    slot_year = local.year.to_numpy()
    slot_doy = local.dayofyear.to_numpy() - 1
    out = np.empty((n_h, len(local)))
    for y, profile in zip(years, yearly, strict=True):
        in_year = slot_year == y
        if not in_year.any():
            continue
        day_energy = profile[: len(profile) // SLOTS_PER_DAY * SLOTS_PER_DAY]
        day_energy = day_energy.reshape(-1, SLOTS_PER_DAY).sum(axis=1)
        for i in range(n_h):
            rng = rng_for(scenario.seed, STREAM_DAILY, i, y)
            f = rng.lognormal(0.0, DAILY_SIGMA, size=len(day_energy))
            f /= float(np.dot(f, day_energy))  # energy-weighted mean exactly 1 over the year
            out[i, in_year] = f[slot_doy[in_year]]
    return out


def _noise(scenario: Scenario, base: NDArray[np.float64]) -> NDArray[np.float64]:
    """Mean-one log-normal AR(1) noise that keeps each simulated day's energy."""
    n_h, n_t = base.shape
    eps = np.empty((n_h, n_t))
    for i in range(n_h):
        eps[i] = rng_for(scenario.seed, STREAM_NOISE, i, scenario.first_slot).standard_normal(n_t)
    ar: Any = lfilter([np.sqrt(1.0 - NOISE_PHI**2)], [1.0, -NOISE_PHI], eps, axis=1)
    factor = np.exp(NOISE_SIGMA * np.asarray(ar) - NOISE_SIGMA**2 / 2)
    days = n_t // SLOTS_PER_DAY
    weighted = (base * factor).reshape(n_h, days, SLOTS_PER_DAY).sum(axis=2)
    plain = base.reshape(n_h, days, SLOTS_PER_DAY).sum(axis=2)
    scale = np.divide(plain, weighted, out=np.ones_like(plain), where=weighted > 0)
    out: NDArray[np.float64] = factor * np.repeat(scale, SLOTS_PER_DAY, axis=1)
    return out
