"""Per-slot energy flows of every household, in integer Wh: the simulator's bookkeeping.

:func:`simulate` runs the float models (:mod:`meter_sim.load`, :mod:`meter_sim.pv`), rounds
them to integer Wh, dispatches the batteries (:mod:`meter_sim.battery`) and nets what is left
per slot into grid import and export. From then on everything is integer, and per household
and slot ``pv + import = load + export + charge - discharge`` holds exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from meter_sim.battery import dispatch
from meter_sim.load import load_Wh
from meter_sim.pv import Sky, pv_Wh
from meter_sim.scenario import Scenario

Wh = NDArray[np.int64]


@dataclass(frozen=True)
class Flows:
    """Energy per household and slot, int64 Wh arrays shaped (households, slots).

    ``import_Wh`` and ``export_Wh`` are what the meter adds to its registers in the slot; only
    one of them is non-zero in a slot (the meter nets the slot). ``battery_mWh`` is each
    battery's charge at the end of the slot (0 without a battery).
    """

    first_slot: int
    load_Wh: Wh
    pv_Wh: Wh
    charge_Wh: Wh
    discharge_Wh: Wh
    import_Wh: Wh
    export_Wh: Wh
    battery_mWh: Wh

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.load_Wh.shape[0]), int(self.load_Wh.shape[1]))

    @property
    def slots(self) -> NDArray[np.int64]:
        return np.arange(self.first_slot, self.first_slot + self.shape[1], dtype=np.int64)

    def balance_error_Wh(self) -> Wh:
        """``pv + import - (load + export + charge - discharge)``: zero by construction."""
        supply = self.pv_Wh + self.import_Wh + self.discharge_Wh
        return supply - (self.load_Wh + self.export_Wh + self.charge_Wh)


def round_keeping_totals(values: NDArray[np.float64]) -> Wh:
    """Round each row to integers whose running sums stay within 0.5 of the float running sums.

    Plain rounding of 96 slots a day would drift by up to 48 Wh a day; rounding the cumulative
    sum and differencing keeps every prefix (hence any day or year) exact to half a Wh.
    """
    cumulative = np.rint(np.cumsum(np.maximum(values, 0.0), axis=1)).astype(np.int64)
    start = np.zeros((values.shape[0], 1), dtype=np.int64)
    out: Wh = np.diff(cumulative, axis=1, prepend=start)
    return out


def simulate(scenario: Scenario, sky: Sky | None = None) -> Flows:
    """The scenario's flows for every household and slot."""
    load = round_keeping_totals(load_Wh(scenario))
    pv = round_keeping_totals(pv_Wh(scenario, sky))
    net = pv - load
    charge, discharge, level = dispatch(net, [h.battery for h in scenario.households])
    residual = net - charge + discharge
    return Flows(
        first_slot=scenario.first_slot,
        load_Wh=load,
        pv_Wh=pv,
        charge_Wh=charge,
        discharge_Wh=discharge,
        import_Wh=np.maximum(-residual, 0),
        export_Wh=np.maximum(residual, 0),
        battery_mWh=level,
    )
