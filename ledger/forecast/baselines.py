"""The reference forecasts every model is measured against: persistence and seasonal-naive.

Both read a history (households, slots) that ends with the issue slot and return
(households, horizon) floats for the slots after it:

- **persistence**: the issue slot's value, held for the whole horizon;
- **seasonal-naive**: the value of the same slot one season (a day, 96 slots) earlier; beyond a
  day ahead, the latest season already metered at issue time (``ceil(h / season)`` seasons
  back), so that it never reads past the issue slot.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ledger.forecast.checks import SLOTS_PER_DAY, check_history, check_horizon
from ledger.forecast.errors import ForecastError


def persistence(history_Wh: Any, horizon_slots: int) -> NDArray[np.float64]:
    """The last metered value of each household, for each of the next ``horizon_slots``."""
    history = check_history("history_Wh", history_Wh)
    h = check_horizon(horizon_slots)
    return np.repeat(history[:, -1:], h, axis=1)


def seasonal_naive(
    history_Wh: Any, horizon_slots: int, season_slots: int = SLOTS_PER_DAY
) -> NDArray[np.float64]:
    """Each slot's value ``ceil(h / season)`` seasons earlier, h = 1 .. ``horizon_slots``."""
    if isinstance(season_slots, bool) or not isinstance(season_slots, int) or season_slots < 1:
        raise ForecastError(f"season_slots must be a positive integer, got {season_slots!r}")
    history = check_history("history_Wh", history_Wh, min_slots=season_slots)
    h = check_horizon(horizon_slots)
    n = history.shape[1]
    steps = np.arange(1, h + 1)
    back = season_slots * ((steps + season_slots - 1) // season_slots)
    index = n - 1 + steps - back  # <= n - 1: the issue slot at the latest
    if index.min() < 0:
        raise ForecastError(
            f"history_Wh has {n} slots; a seasonal-naive forecast {h} slots ahead with a season "
            f"of {season_slots} needs at least {int(back.max() - steps.max() + 1)}"
        )
    out: NDArray[np.float64] = history[:, index]
    return out
