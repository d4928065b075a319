"""Flows computed ahead in a child process (``meter_sim.flows.simulate_ahead``), as ``voisin
simulate`` asks for them before it imports the ledger."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import numpy as np
import pytest

import meter_sim.flows
from meter_sim.errors import SimulationError, WeatherError
from meter_sim.flows import Flows, simulate, simulate_ahead, window
from meter_sim.scenario import Scenario, default_scenario

FIRST, SLOTS = 46, 8
#: Where the child writes its process id (see _noting_window_of).
PID_FILE_ENV = "VOISIN_TEST_FLOWS_PID_FILE"


def scenario(seed: int = 3) -> Scenario:
    return default_scenario(4, days=1, start=date(2026, 6, 21), seed=seed, prosumer_share=0.5)


def _noting_window_of(scenario: Scenario, first_slot: int, slots: int | None) -> Flows:
    """``_window_of``, also noting the process that ran it (module level: the pool pickles
    it by name)."""
    Path(os.environ[PID_FILE_ENV]).write_text(str(os.getpid()))
    return window(simulate(scenario), first_slot, slots)


def _weather_fails(scenario: Scenario, first_slot: int, slots: int | None) -> Flows:
    raise WeatherError("no weather for this place")


def _child_dies(scenario: Scenario, first_slot: int, slots: int | None) -> Flows:
    os._exit(5)


def assert_same_flows(a: Flows, b: Flows) -> None:
    assert a.first_slot == b.first_slot
    for field in ("load_Wh", "pv_Wh", "charge_Wh", "discharge_Wh", "import_Wh", "export_Wh"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field


def test_flows_ahead_come_from_a_child_and_equal_the_flows_computed_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "pid"
    monkeypatch.setenv(PID_FILE_ENV, str(pid_file))
    monkeypatch.setattr(meter_sim.flows, "_window_of", _noting_window_of)
    ahead = simulate_ahead(scenario(), FIRST, SLOTS)
    flows = ahead.result()
    assert int(pid_file.read_text()) != os.getpid()
    assert flows.shape == (4, SLOTS)
    assert_same_flows(flows, window(simulate(scenario()), FIRST, SLOTS))
    assert ahead.result() is flows  # asked again: the same answer


def test_a_window_that_does_not_fit_is_refused_before_any_child_starts() -> None:
    with pytest.raises(SimulationError, match="does not fit"):
        simulate_ahead(scenario(), 90, 10)
    with pytest.raises(SimulationError, match="does not fit"):
        simulate_ahead(scenario(), -1, None)


def test_the_childs_error_is_raised_by_result_and_a_dead_child_is_replaced_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(meter_sim.flows, "_window_of", _weather_fails)
    with pytest.raises(WeatherError, match="no weather"):
        simulate_ahead(scenario(), FIRST, SLOTS).result()
    monkeypatch.setattr(meter_sim.flows, "_window_of", _child_dies)
    ahead = simulate_ahead(scenario(), FIRST, SLOTS)
    # The fallback computes here, through the module's (patched) function: undo the patch.
    monkeypatch.undo()
    assert_same_flows(ahead.result(), window(simulate(scenario()), FIRST, SLOTS))


def test_a_run_refuses_flows_ahead_of_another_scenario_or_window(tmp_path: Path) -> None:
    from meter_sim.run import run_simulation

    ahead = simulate_ahead(scenario(), FIRST, SLOTS)
    for other, first, slots in ((scenario(seed=4), FIRST, SLOTS), (scenario(), FIRST, 4)):
        with pytest.raises(SimulationError, match="another scenario or window"):
            run_simulation(
                other, data_dir=tmp_path / "d", first_slot=first, slots=slots, flows_ahead=ahead
            )
    assert not (tmp_path / "d").exists()
    ahead.result()


def test_the_package_exports_each_name_from_its_module_without_loading_the_others() -> None:
    """``meter_sim`` resolves its names on first use (PEP 562): every name it lists resolves
    to its module's object, and the scenarios and errors come without pandas or the ledger."""
    import importlib
    import subprocess
    import sys

    import meter_sim

    assert set(meter_sim.__all__) == set(meter_sim._EXPORTS)
    for name, module in meter_sim._EXPORTS.items():
        assert getattr(meter_sim, name) is getattr(importlib.import_module(module), name), name
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        meter_sim.nothing  # noqa: B018
    light = subprocess.run(
        [sys.executable, "-c", "import sys; from meter_sim import default_scenario, "
         "SimulationError, MeterSimError; print(sorted({'pandas', 'web3', 'scipy'} & "
         "set(sys.modules)))"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert light.stdout.strip() == "[]", light.stderr
