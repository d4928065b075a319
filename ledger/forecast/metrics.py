"""Forecast accuracy as pure functions: MAE, RMSE, skill, and a table per horizon.

``skill = 1 - MAE_model / MAE_baseline``: 0 is no better than the baseline, 1 is perfect,
negative is worse. A baseline that is exact (MAE 0) leaves the skill undefined (``None``).

:func:`accuracy_by_horizon` takes forecasts laid out as (issues, horizon): row ``k`` is the
forecast issued at the ``k``-th issue time, column ``j`` the slot ``j + 1`` slots after it.
Targets that were not observed (outside the evaluated period) are NaN in ``actual`` and are
left out of every figure, for the model and the baselines alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ledger.forecast.checks import SLOTS_PER_DAY
from ledger.forecast.errors import ForecastError, ForecastTypeError

#: The horizons the reports show, by name: 1 h, 6 h, 24 h (day-ahead), 48 h and 72 h ahead.
HORIZONS: Mapping[str, int] = {"1h": 4, "6h": 24, "24h": 96, "48h": 192, "72h": 288}


def _pair(forecast: Any, actual: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    try:
        f = np.asarray(forecast, dtype=np.float64)
        a = np.asarray(actual, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ForecastTypeError(f"forecast and actual must be arrays of numbers: {exc}") from exc
    if f.shape != a.shape:
        raise ForecastError(f"forecast is shaped {f.shape} but actual {a.shape}; they must match")
    if f.size == 0:
        raise ForecastError("forecast and actual are empty: an error needs at least one value")
    if np.isnan(f).any() or np.isnan(a).any():
        raise ForecastError("forecast and actual must not hold NaN (drop unobserved targets)")
    return f, a


def mae(forecast: Any, actual: Any) -> float:
    """Mean absolute error, in the unit of the values (Wh)."""
    f, a = _pair(forecast, actual)
    return float(np.mean(np.abs(f - a)))


def rmse(forecast: Any, actual: Any) -> float:
    """Root mean squared error, in the unit of the values (Wh)."""
    f, a = _pair(forecast, actual)
    return float(math.sqrt(float(np.mean((f - a) ** 2))))


def skill(mae_model: float, mae_baseline: float) -> float | None:
    """``1 - mae_model / mae_baseline``; ``None`` when the baseline is exact (MAE 0)."""
    for name, value in (("mae_model", mae_model), ("mae_baseline", mae_baseline)):
        if not math.isfinite(value) or value < 0:
            raise ForecastError(f"{name} must be a finite error >= 0, got {value}")
    if mae_baseline == 0:
        return None
    return 1.0 - mae_model / mae_baseline


def _figures(
    model: NDArray[np.float64],
    actual: NDArray[np.float64],
    persistence: NDArray[np.float64],
    seasonal: NDArray[np.float64],
    horizon_slots: int | None,
) -> dict[str, Any]:
    seen = ~np.isnan(actual)
    n = int(seen.sum())
    out: dict[str, Any] = {"horizon_slots": horizon_slots, "n": n}
    if n == 0:
        out.update(
            mae_Wh=None,
            rmse_Wh=None,
            mae_persistence_Wh=None,
            mae_seasonal_naive_Wh=None,
            skill_vs_persistence=None,
            skill_vs_seasonal_naive=None,
        )
        return out
    m, a = model[seen], actual[seen]
    model_mae = mae(m, a)
    p_mae = mae(persistence[seen], a)
    s_mae = mae(seasonal[seen], a)
    s_vs_p, s_vs_s = skill(model_mae, p_mae), skill(model_mae, s_mae)
    out.update(
        mae_Wh=round(model_mae, 1),
        rmse_Wh=round(rmse(m, a), 1),
        mae_persistence_Wh=round(p_mae, 1),
        mae_seasonal_naive_Wh=round(s_mae, 1),
        skill_vs_persistence=None if s_vs_p is None else round(s_vs_p, 4),
        skill_vs_seasonal_naive=None if s_vs_s is None else round(s_vs_s, 4),
    )
    return out


def accuracy_by_horizon(
    forecast: Any,
    actual: Any,
    persistence: Any,
    seasonal_naive: Any,
    horizons: Mapping[str, int] = HORIZONS,
) -> dict[str, dict[str, Any]]:
    """MAE, RMSE and skill against both baselines at each named horizon, and day-ahead.

    All four arrays are (issues, horizon) floats; ``actual`` is NaN where the target was not
    observed. Each horizon ``name -> h`` scores column ``h - 1`` (the slot exactly ``h`` slots
    after issue); ``"day_ahead"`` pools every horizon from 1 to 96 slots. A horizon beyond the
    arrays, or with no observed target, has ``n`` 0 and ``None`` figures.
    """
    arrays = []
    for name, values in (
        ("forecast", forecast),
        ("actual", actual),
        ("persistence", persistence),
        ("seasonal_naive", seasonal_naive),
    ):
        try:
            array = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ForecastTypeError(f"{name} must be an array of numbers: {exc}") from exc
        if array.ndim != 2:
            raise ForecastError(f"{name} must be 2-D (issues, horizon), got {array.ndim}-D")
        arrays.append(array)
    f, a, p, s = arrays
    if not f.shape == a.shape == p.shape == s.shape:
        raise ForecastError(
            f"forecast {f.shape}, actual {a.shape}, persistence {p.shape} and seasonal_naive "
            f"{s.shape} must have the same shape (issues, horizon)"
        )
    if np.isnan(f).any() or np.isnan(p).any() or np.isnan(s).any():
        raise ForecastError("forecasts must not hold NaN (only actual marks unobserved targets)")
    out: dict[str, dict[str, Any]] = {}
    for name, h in horizons.items():
        if isinstance(h, bool) or not isinstance(h, int) or h < 1:
            raise ForecastError(f"horizon {name!r} must be a positive number of slots, got {h!r}")
        if h > f.shape[1]:
            out[name] = _figures(f[:, :0], a[:, :0], p[:, :0], s[:, :0], h)
            continue
        col = slice(h - 1, h)
        out[name] = _figures(f[:, col], a[:, col], p[:, col], s[:, col], h)
    day = slice(0, min(SLOTS_PER_DAY, f.shape[1]))
    out["day_ahead"] = _figures(f[:, day], a[:, day], p[:, day], s[:, day], None)
    return out
