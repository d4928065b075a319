"""Home batteries run for self-consumption, in integer Wh.

Each slot, a battery first absorbs the household's PV surplus and then covers its deficit,
within its power limit (``power_W`` over 15 minutes) and its capacity. The round-trip loss is
taken when charging: ``c`` Wh drawn from the house store ``c * efficiency`` Wh, and a stored Wh
comes back as one Wh. The state of charge is kept in integer mWh so the whole dispatch is exact
integer arithmetic, vectorised over households and stepped over slots.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from meter_sim.scenario import Battery

_PPM = 1_000_000


def dispatch(
    net_Wh: NDArray[np.int64], batteries: list[Battery | None]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Charge and discharge per slot for ``net_Wh`` = PV - load (households, slots).

    Returns ``(charge_Wh, discharge_Wh, state_of_charge_mWh)``, all (households, slots) int64;
    the state of charge is the one at the end of each slot. Households without a battery get
    zeros.
    """
    n_h, n_t = net_Wh.shape
    charge = np.zeros((n_h, n_t), dtype=np.int64)
    discharge = np.zeros((n_h, n_t), dtype=np.int64)
    soc = np.zeros((n_h, n_t), dtype=np.int64)
    rows = [i for i, b in enumerate(batteries) if b is not None]
    if not rows:
        return charge, discharge, soc
    fitted = [b for b in batteries if b is not None]
    capacity_mWh = np.array([b.capacity_Wh * 1000 for b in fitted], dtype=np.int64)
    step_Wh = np.array([b.power_W // 4 for b in fitted], dtype=np.int64)  # W x 0.25 h
    eff_ppm = np.array([round(b.round_trip_efficiency * _PPM) for b in fitted], dtype=np.int64)
    level = np.array([b.initial_Wh * 1000 for b in fitted], dtype=np.int64)
    net = net_Wh[rows]
    for t in range(n_t):
        surplus = np.maximum(net[:, t], 0)
        deficit = np.maximum(-net[:, t], 0)
        # Wh that can still be drawn before the store is full: room_mWh / (eff * 1 Wh/1000 mWh).
        room_Wh = (capacity_mWh - level) * 1000 // eff_ppm
        c = np.minimum(np.minimum(surplus, step_Wh), room_Wh)
        level = level + c * eff_ppm // 1000
        d = np.minimum(np.minimum(deficit, step_Wh), level // 1000)
        level = level - d * 1000
        charge[rows, t] = c
        discharge[rows, t] = d
        soc[rows, t] = level
    return charge, discharge, soc
