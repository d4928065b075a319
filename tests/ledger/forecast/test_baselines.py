"""Persistence and seasonal-naive, and the checks every forecast input goes through."""

from __future__ import annotations

import numpy as np
import pytest

from ledger.forecast import (
    MAX_HORIZON_SLOTS,
    ForecastError,
    ForecastTypeError,
    check_history,
    check_horizon,
    persistence,
    seasonal_naive,
)


def test_persistence_holds_the_issue_slots_value() -> None:
    history = np.array([[1, 2, 3], [7, 8, 9]])
    assert persistence(history, 2).tolist() == [[3.0, 3.0], [9.0, 9.0]]


def test_seasonal_naive_takes_the_same_slot_a_season_back_and_never_reads_ahead() -> None:
    history = np.arange(6).reshape(1, 6)  # slots 0..5, issued at slot 5
    # season 2: slot 6 <- 4, 7 <- 5, 8 <- 4 (two seasons back: slot 6 is not metered), 9 <- 5
    assert seasonal_naive(history, 4, season_slots=2).tolist() == [[4.0, 5.0, 4.0, 5.0]]
    day = np.arange(200).reshape(1, 200)
    out = seasonal_naive(day, 97)
    assert out[0, 0] == 200 - 96 and out[0, 95] == 199 and out[0, 96] == 200 - 96


@pytest.mark.parametrize(
    ("horizon", "error", "message"),
    [
        (0, ForecastError, "between 1 and 288"),
        (-4, ForecastError, "between 1 and 288"),
        (MAX_HORIZON_SLOTS + 1, ForecastError, r"\(15 minutes to 72 hours\), got 289"),
        (10_000, ForecastError, "got 10000"),
        (4.0, ForecastTypeError, "got float"),
        ("4", ForecastTypeError, "got str"),
        (True, ForecastTypeError, "got bool"),
    ],
)
def test_a_horizon_out_of_range_or_of_the_wrong_type_is_refused(
    horizon: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        check_horizon(horizon)


@pytest.mark.parametrize(
    ("history", "error", "message"),
    [
        (np.zeros((0, 5)), ForecastError, "is empty"),
        (np.zeros((3, 0)), ForecastError, "is empty"),
        ([], ForecastError, "must be 2-D"),
        (np.array([[1.0, np.nan]]), ForecastError, "NaN or infinite values.*slot index 1"),
        (np.array([[1.0, np.inf]]), ForecastError, "NaN or infinite"),
        ("1,2,3", ForecastTypeError, "got str"),
        (None, ForecastTypeError, "got NoneType"),
        (np.array([["a", "b"]]), ForecastTypeError, "integer or float Wh"),
        (np.array([[True, False]]), ForecastTypeError, "integer or float Wh"),
        (np.zeros(4), ForecastError, "got 1 dimension"),
    ],
)
def test_a_history_that_cannot_be_forecast_from_is_refused(
    history: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        check_history("history_Wh", history)
    with pytest.raises(error):
        persistence(history, 4)


def test_seasonal_naive_needs_a_season_of_history() -> None:
    with pytest.raises(ForecastError, match="needs at least 96"):
        seasonal_naive(np.ones((1, 50)), 4)
