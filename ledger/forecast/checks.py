"""Validation of forecast inputs: the horizon, the issue slot and metered histories.

A history is a 2-D array shaped (households, slots), in Wh, ending with the slot the forecast
is issued at (its last column is the issue slot: the forecast is made when that slot has been
metered). Everything a forecast reads goes through :func:`check_history` first, so that an
empty history, a NaN or a value of the wrong type fails with a :class:`ForecastError` that
says what is allowed, before any model sees it.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from ledger.forecast.errors import ForecastError, ForecastTypeError

SLOTS_PER_DAY: Final = 96
"""15-minute slots in a (UTC) day: the daily season of every model here."""
SLOTS_PER_WEEK: Final = 7 * SLOTS_PER_DAY
MIN_HORIZON_SLOTS: Final = 1
MAX_HORIZON_SLOTS: Final = 3 * SLOTS_PER_DAY
"""72 hours: the longest forecast Voisin makes (the weather forecasts behind PV do not reach
much further with any skill)."""


def check_horizon(horizon_slots: object) -> int:
    """``horizon_slots`` as an int in [1, 288] (15 minutes to 72 hours), else an error."""
    if isinstance(horizon_slots, bool) or not isinstance(horizon_slots, int | np.integer):
        raise ForecastTypeError(
            f"horizon_slots must be an integer number of 15-minute slots, "
            f"got {type(horizon_slots).__name__}"
        )
    h = int(horizon_slots)
    if not MIN_HORIZON_SLOTS <= h <= MAX_HORIZON_SLOTS:
        raise ForecastError(
            f"horizon_slots must be between {MIN_HORIZON_SLOTS} and {MAX_HORIZON_SLOTS} "
            f"(15 minutes to 72 hours), got {h}"
        )
    return h


def check_slot(name: str, slot: object) -> int:
    """A slot number (unix seconds // 900) as an int > 0, else an error."""
    if isinstance(slot, bool) or not isinstance(slot, int | np.integer):
        raise ForecastTypeError(f"{name} must be an integer slot, got {type(slot).__name__}")
    if int(slot) <= 0:
        raise ForecastError(f"{name} must be a slot after 1970-01-01 (> 0), got {int(slot)}")
    return int(slot)


def check_history(name: str, values: Any, min_slots: int = 1) -> NDArray[np.float64]:
    """``values`` (households, slots) as a float64 array, after checking it can be forecast from.

    Accepts any 2-D array-like of real numbers (integer Wh as metered, or floats); refuses
    other types, booleans, fewer than ``min_slots`` slots, no household, NaN and infinities.
    """
    if isinstance(values, str | bytes) or values is None:
        raise ForecastTypeError(
            f"{name} must be a 2-D array of Wh (households, slots), got {type(values).__name__}"
        )
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise ForecastTypeError(
            f"{name} must be a 2-D array of Wh (households, slots): {exc}"
        ) from exc
    if array.dtype == np.bool_ or not (
        np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
    ):
        raise ForecastTypeError(
            f"{name} must hold integer or float Wh, got values of type {array.dtype}"
        )
    if array.ndim != 2:
        raise ForecastError(
            f"{name} must be 2-D (households, slots), got {array.ndim} dimension(s)"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ForecastError(
            f"{name} is empty ({array.shape[0]} households, {array.shape[1]} slots): a forecast "
            "needs at least one household and one metered slot"
        )
    if array.shape[1] < min_slots:
        raise ForecastError(
            f"{name} has {array.shape[1]} slots; this forecast needs at least {min_slots} "
            f"({min_slots / SLOTS_PER_DAY:g} days)"
        )
    out = np.asarray(array, dtype=np.float64)
    if not np.isfinite(out).all():
        bad = np.argwhere(~np.isfinite(out))[0]
        raise ForecastError(
            f"{name} holds NaN or infinite values (first at household {bad[0]}, slot index "
            f"{bad[1]}); only finite Wh can be forecast from"
        )
    return out
