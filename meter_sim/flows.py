"""Per-slot energy flows of every household, in integer Wh: the simulator's bookkeeping.

:func:`simulate` runs the float models (:mod:`meter_sim.load`, :mod:`meter_sim.pv`), rounds
them to integer Wh, dispatches the batteries (:mod:`meter_sim.battery`) and nets what is left
per slot into grid import and export. From then on everything is integer, and per household
and slot ``pv + import = load + export + charge - discharge`` holds exactly.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from ledger.types import SLOT_SECONDS
from meter_sim.battery import dispatch
from meter_sim.errors import SimulationError
from meter_sim.forked import in_forked_child
from meter_sim.scenario import Scenario

if TYPE_CHECKING:
    from meter_sim.pv import Sky

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
    # Imported here: the load and PV models bring pandas, pvlib and scipy, which a process
    # that has its flows computed elsewhere (simulate_ahead) never needs.
    from meter_sim.load import load_Wh
    from meter_sim.pv import pv_Wh

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


def check_window(total: int, first_slot: int, slots: int | None) -> int:
    """The number of slots of the window ``first_slot``, ``slots`` of a period of ``total``
    slots; raises :class:`SimulationError` if it does not fit."""
    count = total - first_slot if slots is None else slots
    if not 0 <= first_slot < total or not 1 <= count <= total - first_slot:
        raise SimulationError(
            f"the window of {count} slots from slot {first_slot} does not fit the "
            f"scenario's {total} slots"
        )
    return count


def check_window_is_over(
    scenario: Scenario, first_slot: int, slots: int | None, now_s: float | None = None
) -> None:
    """Raise :class:`SimulationError` unless every slot of the window has ended.

    A meter signs a slot's reading when the slot ends, and the contract refuses a reading
    ahead of the chain's clock (``FutureReading``): a window reaching past now would fail on
    chain halfway through the run, after its set-up.
    """
    count = check_window(scenario.n_slots, first_slot, slots)
    last = scenario.first_slot + first_slot + count - 1
    now_slot = int(time.time() if now_s is None else now_s) // SLOT_SECONDS
    if last >= now_slot:
        zone = ZoneInfo(scenario.location.tz)
        ends = datetime.fromtimestamp((last + 1) * SLOT_SECONDS, UTC).astimezone(zone)
        raise SimulationError(
            f"the simulated period ends at {ends:%Y-%m-%d %H:%M %Z}, which is not over yet: "
            "meters sign a slot's reading when it ends and the ledger refuses readings ahead "
            "of its clock; choose days that are over (--start, --days)"
        )


def window(flows: Flows, first_slot: int = 0, slots: int | None = None) -> Flows:
    """The flows of slots ``first_slot .. first_slot + slots - 1`` (indices into the period)."""
    count = check_window(flows.shape[1], first_slot, slots)
    cut = slice(first_slot, first_slot + count)
    return dataclasses.replace(
        flows,
        first_slot=flows.first_slot + first_slot,
        load_Wh=flows.load_Wh[:, cut],
        pv_Wh=flows.pv_Wh[:, cut],
        charge_Wh=flows.charge_Wh[:, cut],
        discharge_Wh=flows.discharge_Wh[:, cut],
        import_Wh=flows.import_Wh[:, cut],
        export_Wh=flows.export_Wh[:, cut],
        battery_mWh=flows.battery_mWh[:, cut],
    )


@dataclass(frozen=True)
class FlowsAhead:
    """A window of a scenario's flows, being computed in a child process
    (:func:`simulate_ahead`); ``started`` is when it was asked for (``time.perf_counter``)."""

    scenario: Scenario
    first_slot: int
    slots: int | None
    started: float
    job: Future[Flows]

    def result(self) -> Flows:
        """The flows, once computed; computed here if the child died. The child's errors
        (a bad window, an unknown weather source) are raised here."""
        try:
            return self.job.result()
        except BrokenProcessPool:
            return _window_of(self.scenario, self.first_slot, self.slots)


def simulate_ahead(scenario: Scenario, first_slot: int = 0, slots: int | None = None) -> FlowsAhead:
    """Start computing ``window(simulate(scenario), first_slot, slots)`` in a forked child.

    ``voisin simulate`` asks for its flows before it imports the ledger: the load and PV
    models (with pandas, pvlib and scipy) then run on the second core while this process
    imports web3 and py-evm and sets the chain up, and it only waits for them when the
    households are topped up.
    """
    started = time.perf_counter()
    check_window(scenario.n_slots, first_slot, slots)  # a bad window fails here, not later
    job = in_forked_child(_window_of, scenario, first_slot, slots)
    return FlowsAhead(scenario, first_slot, slots, started, job)


def _window_of(scenario: Scenario, first_slot: int, slots: int | None) -> Flows:
    return window(simulate(scenario), first_slot, slots)
