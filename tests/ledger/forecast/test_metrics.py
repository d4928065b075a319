"""The accuracy metrics on cases computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ledger.errors import LedgerError
from ledger.forecast import (
    ForecastError,
    ForecastTypeError,
    accuracy_by_horizon,
    mae,
    rmse,
    skill,
)


def test_mae_and_rmse_of_a_hand_computed_case() -> None:
    # errors 1, -2, 3, 0: |e| mean 6/4, squares 1 + 4 + 9 + 0 = 14
    forecast, actual = [11, 8, 13, 5], [10, 10, 10, 5]
    assert mae(forecast, actual) == 1.5
    assert rmse(forecast, actual) == math.sqrt(14 / 4)


def test_skill_is_one_minus_the_ratio_of_errors() -> None:
    assert skill(75.0, 100.0) == 0.25
    assert skill(0.0, 100.0) == 1.0
    assert skill(150.0, 100.0) == -0.5
    assert skill(3.0, 0.0) is None  # an exact baseline leaves it undefined


def test_skill_refuses_negative_or_nan_errors() -> None:
    with pytest.raises(ForecastError, match="mae_baseline must be a finite error >= 0"):
        skill(1.0, float("nan"))
    with pytest.raises(ForecastError, match="mae_model must be a finite error >= 0, got -1"):
        skill(-1.0, 2.0)


def test_accuracy_by_horizon_scores_each_column_and_pools_the_day() -> None:
    # Two issues, three slots ahead; the last target of the second issue was not observed.
    actual = np.array([[10.0, 20.0, 30.0], [10.0, 20.0, np.nan]])
    model = actual + np.array([[1.0, -2.0, 0.0], [-1.0, 2.0, 0.0]])
    model[1, 2] = 99.0
    last = np.array([[12.0, 12.0, 12.0], [14.0, 14.0, 14.0]])
    daily = actual + 4.0
    daily[1, 2] = 0.0
    table = accuracy_by_horizon(model, actual, last, daily, {"one": 1, "three": 3, "far": 9})
    one = table["one"]
    assert one["n"] == 2 and one["horizon_slots"] == 1
    assert one["mae_Wh"] == 1.0 and one["rmse_Wh"] == 1.0
    assert one["mae_persistence_Wh"] == 3.0  # |12 - 10|, |14 - 10|
    assert one["mae_seasonal_naive_Wh"] == 4.0
    assert one["skill_vs_persistence"] == round(1 - 1 / 3, 4)
    assert one["skill_vs_seasonal_naive"] == 0.75
    three = table["three"]
    assert three["n"] == 1 and three["mae_Wh"] == 0.0  # the unobserved target is left out
    assert three["skill_vs_persistence"] == 1.0
    assert table["far"] == {
        "horizon_slots": 9,
        "n": 0,
        "mae_Wh": None,
        "rmse_Wh": None,
        "mae_persistence_Wh": None,
        "mae_seasonal_naive_Wh": None,
        "skill_vs_persistence": None,
        "skill_vs_seasonal_naive": None,
    }
    pooled = table["day_ahead"]
    # errors 1, 2, 0, 1, 2 over the five observed targets
    assert pooled["n"] == 5 and pooled["mae_Wh"] == 1.2
    assert pooled["horizon_slots"] is None


def test_metrics_refuse_bad_input_with_a_typed_error() -> None:
    with pytest.raises(ForecastError, match=r"forecast is shaped \(2,\) but actual \(3,\)"):
        mae([1, 2], [1, 2, 3])
    with pytest.raises(ForecastError, match="empty"):
        rmse([], [])
    with pytest.raises(ForecastError, match="NaN"):
        mae([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(ForecastTypeError, match="arrays of numbers"):
        mae(["a", "b"], [1, 2])
    with pytest.raises(ForecastError, match="same shape"):
        accuracy_by_horizon(np.zeros((2, 3)), np.zeros((2, 2)), np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ForecastError, match="must be 2-D"):
        accuracy_by_horizon(np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3))
    err = ForecastError("x")
    assert isinstance(err, LedgerError) and isinstance(err, ValueError)
    assert isinstance(ForecastTypeError("x"), TypeError)
