"""Forecasts of PV production, consumption and net position, per household and slot.

Pure forecasting logic, the accuracy metrics and the one interface weather comes through:

- :mod:`ledger.forecast.checks`: input validation, the slot constants and the 72-hour limit;
- :mod:`ledger.forecast.baselines`: persistence and seasonal-naive;
- :mod:`ledger.forecast.load`: household load from its own metered history (mlforecast);
- :mod:`ledger.forecast.metrics`: MAE, RMSE, skill, accuracy per horizon;
- :mod:`ledger.forecast.weather`: :class:`WeatherSource` and :class:`WeatherForecast`;
- :mod:`ledger.forecast.errors`: :class:`ForecastError`, rooted at ``LedgerError``.

PV needs a PV model, which lives with the simulator: :mod:`meter_sim.forecast` turns a weather
forecast into PV and nets it with the load (docs/forecasts.md). Importing this package loads
neither mlforecast nor scikit-learn: the load model imports them when it first fits, or
earlier through :func:`load_model_libraries`.
"""

from __future__ import annotations

from ledger.forecast.baselines import persistence, seasonal_naive
from ledger.forecast.checks import (
    MAX_HORIZON_SLOTS,
    SLOTS_PER_DAY,
    check_history,
    check_horizon,
    check_slot,
)
from ledger.forecast.errors import ForecastError, ForecastTypeError
from ledger.forecast.load import LoadForecaster, forecast_load, load_model_libraries
from ledger.forecast.metrics import HORIZONS, accuracy_by_horizon, mae, rmse, skill
from ledger.forecast.weather import WeatherForecast, WeatherSource

__all__ = [
    "HORIZONS",
    "MAX_HORIZON_SLOTS",
    "SLOTS_PER_DAY",
    "ForecastError",
    "ForecastTypeError",
    "LoadForecaster",
    "WeatherForecast",
    "WeatherSource",
    "accuracy_by_horizon",
    "check_history",
    "check_horizon",
    "check_slot",
    "forecast_load",
    "load_model_libraries",
    "mae",
    "persistence",
    "rmse",
    "seasonal_naive",
    "skill",
]
