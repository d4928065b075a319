"""The one interface a weather forecast comes through: :class:`WeatherSource`.

A PV forecast needs, for each slot ahead, the global horizontal irradiance and the air
temperature and wind speed (for the cells' temperature). Whoever provides them (a national
weather service's files, a commercial API, the simulator's own weather with an error) is a
:class:`WeatherSource`: one method, given the issue slot and a horizon, returns a
:class:`WeatherForecast`. Nothing in Voisin fetches weather over a network: a live deployment
plugs in a source that reads what it is given (a file dropped by a job, a queue) behind this
Protocol, and the simulator's source is :class:`meter_sim.forecast.SimulatedWeather`.

A source must only use what is known at the end of the issue slot: a forecast issued then,
never the weather that came after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from ledger.forecast.checks import check_horizon, check_slot
from ledger.forecast.errors import ForecastError


@dataclass(frozen=True)
class WeatherForecast:
    """Forecast weather for the slots ``issue_slot + 1 .. issue_slot + horizon``.

    Each array has one value per slot, the mean over the slot: ``ghi_W_m2`` global horizontal
    irradiance (W/m², >= 0), ``temp_air_C`` air temperature (°C), ``wind_speed_m_s`` wind
    speed at 10 m (m/s, >= 0).
    """

    issue_slot: int
    ghi_W_m2: NDArray[np.float64]
    temp_air_C: NDArray[np.float64]
    wind_speed_m_s: NDArray[np.float64]

    def __post_init__(self) -> None:
        check_slot("issue_slot", self.issue_slot)
        n = len(self.ghi_W_m2)
        check_horizon(n)
        for name in ("ghi_W_m2", "temp_air_C", "wind_speed_m_s"):
            values = np.asarray(getattr(self, name), dtype=np.float64)
            if values.shape != (n,):
                raise ForecastError(
                    f"weather {name} has shape {values.shape}; every series must have one "
                    f"value per slot ahead ({n})"
                )
            if not np.isfinite(values).all():
                raise ForecastError(f"weather {name} holds NaN or infinite values")
            object.__setattr__(self, name, values)
        if (self.ghi_W_m2 < 0).any() or (self.wind_speed_m_s < 0).any():
            raise ForecastError("weather ghi_W_m2 and wind_speed_m_s must be >= 0")

    @property
    def horizon_slots(self) -> int:
        return len(self.ghi_W_m2)

    @property
    def first_slot(self) -> int:
        """The first slot forecast: the one after the issue slot."""
        return self.issue_slot + 1


@runtime_checkable
class WeatherSource(Protocol):
    """Where weather forecasts come from (see the module docstring)."""

    def forecast(self, issue_slot: int, horizon_slots: int) -> WeatherForecast:
        """The forecast known at the end of ``issue_slot`` for the next ``horizon_slots``."""
        ...
