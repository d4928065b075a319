"""Household load forecasts from each household's own metered history, with mlforecast.

**The model.** One global linear regression (least squares, driven by Nixtla's mlforecast)
over every household of the neighbourhood, on each household's own consumption only: the
same slot 1, 2, ... 7 days earlier. Every feature is at least a day old,
so one fit forecasts a whole day from what was metered before it; beyond a day the forecast
feeds itself (mlforecast's recursive predict). The weights are learnt: on a street of the
default scenario they come out close to a mean of the last week, with more weight on the same
weekday, which is what makes it beat yesterday's value (seasonal-naive).

**Refit daily, update every slot.** :class:`LoadForecaster` fits once per UTC day ``d``, on
the last :data:`FIT_DAYS` days metered before slot ``96 d`` and predicts a profile for the
four days from there (every slot of day ``d`` may issue a forecast reaching 72 hours). A
forecast issued at slot ``i`` of that day takes the profile's slots ``i + 1 .. i + h`` and
adds the latest residual, ``y(i) - profile(i)``, times ``beta(k)`` at ``k`` slots ahead, where
``beta(k)`` is the regression of the in-sample residual ``k`` slots later on the residual now,
estimated at the fit (pooled over households, clipped to [0, 1]): short horizons follow what
the household is doing now, long ones return to its profile. The update is a few array
operations, which is what makes a forecast for a thousand households per slot cheap.

A forecast reads ``history_Wh`` and nothing else; the history passed ends with the issue slot,
so it cannot read its own future. Forecasts are floats >= 0; callers round them to integer Wh
(:func:`ledger.forecast.net.to_Wh`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from ledger.forecast.checks import (
    MAX_HORIZON_SLOTS,
    SLOTS_PER_DAY,
    check_history,
    check_horizon,
    check_slot,
)
from ledger.forecast.errors import ForecastError

FIT_DAYS: Final = 14
"""Days of history each daily fit reads (the older ones are not looked at)."""
LAG_DAYS: Final = 7
"""The features: the same slot 1, 2, ... 7 days earlier."""
PROFILE_DAYS: Final = 4
MIN_HISTORY_DAYS: Final = 8
"""A fit needs the 7-day features of at least one day of training rows."""
MIN_HISTORY_SLOTS: Final = MIN_HISTORY_DAYS * SLOTS_PER_DAY
PROFILE_SLOTS: Final = PROFILE_DAYS * SLOTS_PER_DAY
"""A day's profile covers every slot a forecast issued during that day can reach (96 + 288)."""


@dataclass(frozen=True)
class DailyFit:
    """One day's fit: the profile of each household from slot ``96 * day`` on, and the
    residual decay ``beta`` (index ``k - 1`` for ``k`` slots ahead)."""

    day: int
    digest: bytes
    profile_Wh: NDArray[np.float64]
    last_fitted_Wh: NDArray[np.float64]
    beta: NDArray[np.float64]


def load_model_libraries() -> None:
    """Import mlforecast and scikit-learn, which every fit uses: a quarter of a second and
    about 80 MiB, once per process. Left to the first fit, they would delay the first forecast
    that refits by that quarter of a second; a forecaster that fits every day loads them when
    it is built."""
    import mlforecast.forecast  # noqa: F401
    import sklearn.linear_model  # type: ignore[import-untyped]  # noqa: F401


def fit_day(window_Wh: NDArray[np.float64], day: int, digest: bytes | None = None) -> DailyFit:
    """Fit on ``window_Wh`` (households, whole days of slots), whose last slot is
    ``96 * day - 1``, and predict the profile of the :data:`PROFILE_DAYS` days from there.

    Every feature is the same slot some days earlier, so the model sees each (household, slot
    of the day) pair as a daily series: the lags are 1 .. 7 steps of a day, and a 4-day profile
    is 4 recursive steps of mlforecast's predict for all of them at once (instead of 384 steps
    of a 15-minute series; the model and its rows are the same).
    """
    from mlforecast import MLForecast
    from sklearn.linear_model import Ridge

    n_h, n_t = window_Wh.shape
    days = n_t // SLOTS_PER_DAY
    if days * SLOTS_PER_DAY != n_t or days <= LAG_DAYS:
        raise ForecastError(f"a daily fit needs whole days, more than {LAG_DAYS}, got {n_t} slots")
    by_slot = window_Wh.reshape(n_h, days, SLOTS_PER_DAY).transpose(0, 2, 1)  # (h, slot, day)
    frame = _frame(by_slot.reshape(n_h * SLOTS_PER_DAY, days), day - days)
    model = MLForecast(
        # Least squares through its normal equations: Ridge with a penalty far below the
        # features' scale (Wh squared, over thousands of rows) and the Cholesky solver gives
        # LinearRegression's weights to 4 decimals in a fifth of its time (an SVD).
        models={"load": Ridge(alpha=1e-6, solver="cholesky")},
        freq=1,
        lags=list(range(1, LAG_DAYS + 1)),
    )
    # The frame is built here, sorted, without gaps or NaN (check_history refused them):
    # mlforecast's own validation of it would only repeat that, at a third of the fit's time.
    model.fit(frame, static_features=[], fitted=True, validate_data=False, cache_train_df=False)
    predicted = _by_series_and_day(model.predict(h=PROFILE_DAYS))
    profile = _in_time_order(predicted["load"].to_numpy(dtype=np.float64), n_h, PROFILE_DAYS)
    fitted = _by_series_and_day(model.forecast_fitted_values())
    rows = len(fitted) // (n_h * SLOTS_PER_DAY)
    in_sample = _in_time_order(fitted["load"].to_numpy(dtype=np.float64), n_h, rows)
    actual = _in_time_order(fitted["y"].to_numpy(dtype=np.float64), n_h, rows)
    return DailyFit(
        day=day,
        digest=_digest(window_Wh) if digest is None else digest,
        profile_Wh=np.maximum(profile, 0.0),
        last_fitted_Wh=in_sample[:, -1],
        beta=_residual_decay(actual - in_sample),
    )


def _by_series_and_day(frame: Any) -> Any:
    """``frame`` ordered by series, then day (sorted only if mlforecast's order is another)."""
    ids = frame["unique_id"].to_numpy()
    days = frame["ds"].to_numpy()
    same = ids[1:] == ids[:-1]
    if (ids[1:] >= ids[:-1]).all() and (days[1:][same] > days[:-1][same]).all():
        return frame
    return frame.sort_values(["unique_id", "ds"], kind="stable")


def _in_time_order(values: NDArray[np.float64], n_h: int, days: int) -> NDArray[np.float64]:
    """Values ordered by (household, slot of the day, day) back to (household, slot)."""
    by_day = values.reshape(n_h, SLOTS_PER_DAY, days).transpose(0, 2, 1)
    out: NDArray[np.float64] = by_day.reshape(n_h, days * SLOTS_PER_DAY)
    return out


def _frame(series: NDArray[np.float64], first_day: int) -> Any:
    import pandas as pd

    n_s, n_d = series.shape
    return pd.DataFrame(
        {
            "unique_id": np.repeat(np.arange(n_s, dtype=np.int64), n_d),
            "ds": np.tile(np.arange(first_day, first_day + n_d, dtype=np.int64), n_s),
            "y": series.ravel(),
        }
    )


def _residual_decay(residual: NDArray[np.float64]) -> NDArray[np.float64]:
    """``beta(k)``: least squares of ``e(t + k)`` on ``e(t)``, pooled over households, for
    k = 1 .. 288, clipped to [0, 1] (0 where the residuals are too short to tell).

    The sums ``sum_t e(t) e(t + k)`` of every lag at once come from the residuals' power
    spectrum (zero-padded, so no lag wraps around): a pass of FFTs instead of 288 products.
    """
    rows = residual.shape[1]
    spectrum = np.fft.rfft(residual, n=2 * rows, axis=1)
    lagged = np.fft.irfft((spectrum * spectrum.conj()).real.sum(axis=0), n=2 * rows)[:rows]
    # sum over t < rows - k of e(t)^2: the energy of the residuals that have a partner k later
    energy = np.cumsum((residual * residual).sum(axis=0))
    out = np.zeros(MAX_HORIZON_SLOTS)
    k = np.arange(1, min(MAX_HORIZON_SLOTS, rows - 1) + 1)
    denominator = energy[rows - k - 1]
    out[k - 1] = np.divide(lagged[k], denominator, out=np.zeros(len(k)), where=denominator > 0)
    clipped: NDArray[np.float64] = np.clip(out, 0.0, 1.0)
    return clipped


def _digest(window_Wh: NDArray[np.float64]) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    h.update(np.asarray(window_Wh.shape, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(window_Wh).tobytes())
    return h.digest()


class LoadForecaster:
    """Load forecasts for a set of households, refit once a UTC day (see the module docstring).

    It keeps the latest fits (by day and by the exact history they were fitted on), so that
    calling :meth:`forecast` every slot refits only when a new day starts.
    """

    def __init__(self, keep_fits: int = 2) -> None:
        self._fits: dict[tuple[int, bytes], DailyFit] = {}
        self._keep = keep_fits
        self.fits_made = 0

    def forecast(self, history_Wh: Any, issue_slot: int, horizon_slots: int) -> NDArray[np.float64]:
        """Each household's load (Wh, floats >= 0) for ``issue_slot + 1 ..`` ``+ horizon_slots``.

        ``history_Wh`` (households, slots) is the metered load up to and including
        ``issue_slot``; it must reach at least :data:`MIN_HISTORY_DAYS` days back from the
        start of the issue's UTC day.
        """
        history = check_history("history_Wh", history_Wh)
        issue = check_slot("issue_slot", issue_slot)
        h = check_horizon(horizon_slots)
        day = (issue + 1) // SLOTS_PER_DAY
        into_day = issue + 1 - day * SLOTS_PER_DAY  # slots of the day already metered
        known = history.shape[1] - into_day
        if known < MIN_HISTORY_SLOTS:
            raise ForecastError(
                f"history_Wh has {history.shape[1]} slots, {known} of them before the issue "
                f"slot's UTC day; a load forecast needs at least {MIN_HISTORY_SLOTS} "
                f"({MIN_HISTORY_DAYS} days) before it"
            )
        days = min(known, FIT_DAYS * SLOTS_PER_DAY) // SLOTS_PER_DAY
        window = history[:, known - days * SLOTS_PER_DAY : known]
        fit = self._fit(window, day)
        base = fit.profile_Wh[:, into_day : into_day + h]
        modelled_now = fit.profile_Wh[:, into_day - 1] if into_day else fit.last_fitted_Wh
        residual = history[:, -1] - modelled_now
        out: NDArray[np.float64] = np.maximum(base + residual[:, None] * fit.beta[None, :h], 0.0)
        return out

    def _fit(self, window: NDArray[np.float64], day: int) -> DailyFit:
        key = (day, _digest(window))
        fit = self._fits.get(key)
        if fit is None:
            fit = fit_day(window, day, key[1])
            self.fits_made += 1
            self._fits[key] = fit
            while len(self._fits) > self._keep:
                del self._fits[next(iter(self._fits))]
        return fit


def forecast_load(history_Wh: Any, issue_slot: int, horizon_slots: int) -> NDArray[np.float64]:
    """One load forecast, fitted afresh (:class:`LoadForecaster` keeps fits across slots)."""
    return LoadForecaster().forecast(history_Wh, issue_slot, horizon_slots)
