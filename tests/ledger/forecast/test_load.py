"""The household load model: deterministic, blind to its own future, refit once a day,
better than seasonal-naive on a daily pattern with noise, and clear about bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from numpy.typing import NDArray

from ledger.forecast import ForecastError, ForecastTypeError, LoadForecaster, seasonal_naive
from ledger.forecast.load import MIN_HISTORY_SLOTS

DAY = 96
FIRST_SLOT = 20_000 * DAY  # a UTC midnight


def households(days: int = 12, n: int = 4, seed: int = 7) -> NDArray[np.int64]:
    """A daily shape per household, a day-to-day factor and AR(1) noise, in integer Wh."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * DAY)
    shape = 60 + 50 * np.sin(2 * np.pi * (t % DAY) / DAY - 1.0) ** 2
    level = rng.uniform(0.5, 2.0, size=(n, 1))
    daily = np.repeat(rng.lognormal(0.0, 0.1, size=(n, days)), DAY, axis=1)
    noise = np.empty((n, days * DAY))
    acc = np.zeros(n)
    for k in range(days * DAY):
        acc = 0.8 * acc + 0.6 * rng.standard_normal(n)
        noise[:, k] = acc
    out: NDArray[np.int64] = np.rint(level * shape * daily * np.exp(0.3 * noise)).astype(np.int64)
    return out


def test_the_same_history_gives_bitwise_the_same_forecast() -> None:
    y = households()
    issue = 10 * DAY + 30
    a = LoadForecaster().forecast(y[:, : issue + 1], FIRST_SLOT + issue, 288)
    b = LoadForecaster().forecast(y[:, : issue + 1], FIRST_SLOT + issue, 288)
    assert a.shape == (4, 288) and a.dtype == np.float64
    assert a.tobytes() == b.tobytes()
    assert (a >= 0).all()


def test_a_forecast_never_reads_past_its_issue_slot() -> None:
    y = households()
    rng = np.random.default_rng(1)
    for issue in (9 * DAY - 1, 9 * DAY + 40, 11 * DAY - 2):
        changed = y.copy()
        changed[:, issue + 1 :] = rng.integers(0, 10_000, size=changed[:, issue + 1 :].shape)
        # Fresh forecasters: nothing cached from one call helps the other.
        a = LoadForecaster().forecast(y[:, : issue + 1], FIRST_SLOT + issue, 96)
        b = LoadForecaster().forecast(changed[:, : issue + 1], FIRST_SLOT + issue, 96)
        assert a.tobytes() == b.tobytes()
    # And the values up to the issue slot do matter.
    issue = 10 * DAY
    earlier = y.copy()
    earlier[:, issue] += 500
    a = LoadForecaster().forecast(y[:, : issue + 1], FIRST_SLOT + issue, 8)
    b = LoadForecaster().forecast(earlier[:, : issue + 1], FIRST_SLOT + issue, 8)
    assert (b > a).all()


def test_it_refits_once_a_day_and_updates_every_slot() -> None:
    y = households()
    model = LoadForecaster()
    for issue in range(9 * DAY - 1, 11 * DAY, 3):
        model.forecast(y[:, : issue + 1], FIRST_SLOT + issue, 4)
    # Issued from the last slot of day 8 (its forecast starts day 9) to the last slot of day
    # 10: fits for days 9, 10 and 11.
    assert model.fits_made == 3


def test_it_beats_seasonal_naive_a_day_ahead() -> None:
    y = households(days=16, n=6)
    model = LoadForecaster()
    ours, naive = [], []
    for issue in range(10 * DAY - 1, 15 * DAY - 1, 12):
        history = y[:, : issue + 1]
        actual = y[:, issue + 1 : issue + 1 + DAY]
        ours.append(np.abs(model.forecast(history, FIRST_SLOT + issue, DAY) - actual).mean())
        naive.append(np.abs(seasonal_naive(history, DAY) - actual).mean())
    assert np.mean(ours) < 0.8 * np.mean(naive)


def test_bad_input_is_refused_with_a_forecast_error() -> None:
    y = households()
    model = LoadForecaster()
    with pytest.raises(ForecastError, match=f"needs at least {MIN_HISTORY_SLOTS}"):
        model.forecast(y[:, : 5 * DAY], FIRST_SLOT + 5 * DAY - 1, 4)
    with pytest.raises(ForecastError, match="is empty"):
        model.forecast(np.zeros((0, 0)), FIRST_SLOT, 4)
    with pytest.raises(ForecastError, match="between 1 and 288"):
        model.forecast(y, FIRST_SLOT + y.shape[1] - 1, -1)
    with pytest.raises(ForecastError, match="got 289"):
        model.forecast(y, FIRST_SLOT + y.shape[1] - 1, 289)
    nan = y.astype(float)
    nan[2, 100] = np.nan
    with pytest.raises(ForecastError, match="household 2, slot index 100"):
        model.forecast(nan, FIRST_SLOT + y.shape[1] - 1, 4)
    with pytest.raises(ForecastTypeError, match="issue_slot must be an integer slot"):
        model.forecast(y, "now", 4)  # type: ignore[arg-type]
    with pytest.raises(ForecastTypeError, match="horizon_slots must be an integer"):
        model.forecast(y, FIRST_SLOT + y.shape[1] - 1, 1.5)  # type: ignore[arg-type]
    with pytest.raises(ForecastTypeError):
        model.forecast([["a"] * 10], FIRST_SLOT, 4)


def test_the_model_libraries_load_on_demand_and_not_with_the_package() -> None:
    """Importing the package loads neither library (a run without forecasts keeps them out);
    load_model_libraries loads both, as a forecaster built to fit every day does at set-up."""
    code = (
        "import sys; import ledger.forecast as f; "
        "before = [m in sys.modules for m in ('mlforecast', 'sklearn')]; "
        "f.load_model_libraries(); "
        "print(before, [m in sys.modules for m in ('mlforecast', 'sklearn')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[False, False] [True, True]"
