"""Agents in a run end to end (``voisin simulate --agents``): the mix settles with a clean audit
and a price that moves from slot to slot; the default agents give the figures they gave before
strategies existed."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from api.cli import main
from ledger.market.strategies import Adaptive
from meter_sim import default_scenario
from meter_sim.run import SimulationError, agent_settings, run_simulation
from meter_sim.scenario import Scenario


def scenario() -> Scenario:
    return default_scenario(
        6, days=1, start=date(2026, 6, 21), seed=3, prosumer_share=0.5, battery_share=0.7
    )


#: The figures of this scenario's slots 44 to 49 (pay-as-clear), measured on the code before
#: pricing strategies existed: ``--agents default`` must keep them. ``gas_used`` follows the
#: contract's bytecode (its function dispatch grew with the day-ahead functions).
DEFAULT_FIGURES = {
    "fills": 9,
    "local_traded_Wh": 569,
    "grid_import_Wh": 1649,
    "grid_export_Wh": 0,
    "community_savings_ueur": 102420,
    "mean_clearing_price_ueur_per_kWh": 130000,
    "local_traded_ueur": 73970,
    "fees_ueur": 17070,
    "gas_used": 2183634,
    "self_sufficiency": 0.6633,
    "local_share_of_surplus": 1.0,
    "audit_ok": True,
}


def test_the_default_agents_give_the_figures_they_gave_before_strategies(tmp_path: Path) -> None:
    result = run_simulation(
        scenario(), "pay-as-clear", "embedded", tmp_path / "d", first_slot=44, slots=6
    )
    report = result.report
    assert {k: report[k] for k in DEFAULT_FIGURES} == DEFAULT_FIGURES
    assert report["agents"] == {"default": 6}
    # Every household posts the same limits: one price in every slot.
    spread = report["clearing_price_spread_ueur_per_kWh"]
    assert spread["min"] == spread["max"] == 130_000 and spread["std"] == 0.0


def test_a_mixed_neighbourhood_settles_with_a_clean_audit_and_prices_that_move(
    tmp_path: Path,
) -> None:
    result = run_simulation(
        scenario(),
        "pay-as-clear",
        "embedded",
        tmp_path / "d",
        first_slot=40,
        slots=10,
        agents="mixed",
    )
    report = result.report
    assert report["audit_ok"] is True, report["audit_findings"]
    assert report["fills"] > 0
    # 3 PV households, 2 of them with a battery; the 4 others: 40 % drawn, 30 % adaptive and
    # 30 % forecast-aware by the largest remainder.
    assert report["agents"] == {"adaptive": 1, "battery": 2, "drawn": 2, "forecast": 1}
    spread = report["clearing_price_spread_ueur_per_kWh"]
    assert spread["slots"] > 1 and spread["min"] < spread["max"] and spread["std"] > 0
    assert report["load_energy_Wh"] == (
        report["self_consumed_Wh"] + report["local_traded_Wh"] + report["grid_import_Wh"]
    )


def test_the_agents_are_the_same_for_the_same_seed(tmp_path: Path) -> None:
    from meter_sim.flows import simulate, window

    s = scenario()
    flows = window(simulate(s), 40, 8)
    ids = list(range(1, 7))
    one = agent_settings(s, flows, ids, "mixed")
    assert one == agent_settings(s, flows, ids, "mixed")
    assert any(isinstance(a.strategy, Adaptive) for a in one.values())
    assert all(a.strategy is None for a in agent_settings(s, flows, ids, "default").values())


def test_unknown_agents_are_refused_with_the_modes_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SimulationError, match="unknown agents 'smart'; choose one of default"):
        run_simulation(scenario(), data_dir=tmp_path / "d", agents="smart")
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--agents", "smart"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'smart'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["simulate", "--agents", "mixed", "--via", "api", "--out", str(tmp_path / "o")])
    assert "runs only with --via direct" in capsys.readouterr().err


def test_voisin_simulate_records_the_agents_of_a_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["simulate", "--households", "4", "--start", "2026-06-21", "--seed", "1"]
    args += ["--first-slot", "48", "--slots", "2", "--out", str(out), "--agents", "forecast"]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert sum(report["agents"].values()) == 4 and "default" not in report["agents"]
    assert report["audit_ok"] is True
    assert json.loads((out / "run.json").read_text())["options"]["agents"] == "forecast"
