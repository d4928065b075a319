"""The day-ahead market in a run end to end (``voisin simulate --market day-ahead``): the
forwards cleared from the households' forecasts reach the chain before their slot's readings,
are delivered as far as the metered energy allows, the deviations trade in the real-time
market, the audit stays clean and the report's ``day_ahead`` entry adds up; the real-time
market's report is the one it was; a run stopped after clearing ahead resumes to the same
report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import meter_sim.day_ahead as day_ahead_module
from api.cli import main
from ledger.chain.backends import open_chain
from ledger.contract.deploy import open_ledger
from ledger.market.day_ahead import clear_day_ahead
from ledger.types import Event
from meter_sim.day_ahead import household_forecaster
from meter_sim.forecast import Forecast, HouseholdForecaster
from meter_sim.report import RUN_RESOURCES
from meter_sim.run import RunResult, RunState, SimulationError, run_simulation
from tests.meter_sim.test_agents_mix import DEFAULT_FIGURES, scenario

#: Six slots from 11:00 local time on a June day (the default agents' reference window).
FIRST, SLOTS = 44, 6
DAY_AHEAD_FIELDS = {
    "positions", "cleared_Wh", "reserved_ueur", "settled_positions", "delivered_Wh",
    "shortfall_Wh", "refund_ueur", "real_time_Wh", "delivered_share", "gas_clearing",
    "gas_settling", "gas_per_position",
}  # fmt: skip


def events_of(result: RunResult) -> list[Event]:
    with open_chain("embedded", result.data_dir) as chain:
        client, deployment = open_ledger(chain)
        return client.events(deployment.block_number, int(chain.w3.eth.block_number))


def gas_of(result: RunResult, names: set[str]) -> int:
    """The gas of the run's transactions that emitted an event named in ``names``."""
    with open_chain("embedded", result.data_dir) as chain:
        client, deployment = open_ledger(chain)
        events = client.events(deployment.block_number, int(chain.w3.eth.block_number))
        txs = {e.tx_hash for e in events if e.name in names}
        return sum(int(chain.w3.eth.get_transaction_receipt(tx)["gasUsed"]) for tx in txs)  # type: ignore[arg-type]


def check_day_ahead_report(report: dict[str, Any], events: list[Event]) -> dict[str, Any]:
    """The report's ``day_ahead`` entry against the chain's events; returns it."""
    assert report["audit_ok"] is True, report["audit_findings"]
    assert report["market"] == "day-ahead"
    da: dict[str, Any] = report["day_ahead"]
    assert da.keys() == DAY_AHEAD_FIELDS
    cleared = [e.args for e in events if e.name == "ForwardCleared"]
    settled = [e.args for e in events if e.name == "ForwardSettled"]
    forward_fills = [
        e.args
        for e in events
        if e.name == "FillSettled" and e.args["offerId"] == 0 and e.args["bidId"] == 0
    ]
    assert da["positions"] == da["settled_positions"] == len(cleared) == len(settled) > 0
    assert da["cleared_Wh"] == sum(a["energyWh"] for a in cleared)
    assert da["delivered_Wh"] == sum(a["deliveredWh"] for a in settled)
    assert da["delivered_Wh"] == sum(a["energyWh"] for a in forward_fills)
    assert da["shortfall_Wh"] == sum(a["shortfallWh"] for a in settled)
    assert da["delivered_Wh"] + da["shortfall_Wh"] == da["cleared_Wh"]
    assert da["reserved_ueur"] == sum(a["reservedUeur"] for a in cleared)
    # What was not paid for delivered energy and its fee went back to the buyers.
    paid = sum(a["costUeur"] + a["feeUeur"] for a in settled)
    assert da["refund_ueur"] == da["reserved_ueur"] - paid
    assert da["real_time_Wh"] + da["delivered_Wh"] == report["local_traded_Wh"]
    assert da["gas_per_position"] == (da["gas_clearing"] + da["gas_settling"]) // len(cleared)
    # Every forward reached the chain before the first reading of its slot.
    first_reading = {}
    for e in events:
        if e.name == "ReadingCommitted":
            first_reading.setdefault(e.args["slot"], e.block_number)
    for e in events:
        if e.name == "ForwardCleared":
            assert e.block_number < first_reading[e.args["slot"]]
    assert report["load_energy_Wh"] == (
        report["self_consumed_Wh"] + report["local_traded_Wh"] + report["grid_import_Wh"]
    )
    return da


@pytest.fixture(scope="module")
def day_ahead(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    data = tmp_path_factory.mktemp("day-ahead") / "data"
    return run_simulation(
        scenario(), "pay-as-clear", "embedded", data, first_slot=FIRST, slots=SLOTS,
        market="day-ahead",
    )  # fmt: skip


def test_a_day_ahead_run_delivers_its_forwards_with_a_clean_audit(day_ahead: RunResult) -> None:
    report = day_ahead.report
    da = check_day_ahead_report(report, events_of(day_ahead))
    assert da["delivered_Wh"] > 0 and da["real_time_Wh"] > 0
    # Forward gas counts in the run's total, beside readings, settlement and seals.
    assert report["gas_used"] == (
        report["gas_readings"] + report["gas_settlement"] + report["gas_seals"]
        + da["gas_clearing"] + da["gas_settling"]
    )  # fmt: skip
    assert da["gas_clearing"] == gas_of(day_ahead, {"ForwardCleared"})
    assert da["gas_settling"] == gas_of(day_ahead, {"ForwardSettled"})


def test_the_forwards_are_the_day_ahead_clearing_of_the_forecasts(day_ahead: RunResult) -> None:
    """The positions on chain are what the pure clearing gives for the forecasts issued at the
    end of the slot before the window (the buyers' funds do not bind in this run)."""
    flows = day_ahead.flows
    ids = day_ahead.household_ids
    net = household_forecaster(scenario(), flows).forecast(flows.first_slot - 1, SLOTS).net_Wh
    forecasts = {
        flows.first_slot + k: {hid: int(net[h, k]) for h, hid in enumerate(ids)}
        for k in range(SLOTS)
    }
    expected = clear_day_ahead(forecasts, day_ahead.tariffs, "pay-as-clear")
    on_chain = [
        (e.args["slot"], e.args["seller"], e.args["buyer"], e.args["energyWh"],
         e.args["priceUeurPerKWh"])
        for e in events_of(day_ahead)
        if e.name == "ForwardCleared"
    ]  # fmt: skip
    assert on_chain == [
        (s.slot, f.seller, f.buyer, f.energy_Wh, f.price_ueur_per_kWh)
        for s in expected.slots
        for f in s.forwards
    ]


def test_the_day_ahead_run_meters_the_same_energy_as_the_real_time_one(
    day_ahead: RunResult, tmp_path: Path
) -> None:
    real_time = run_simulation(
        scenario(), "pay-as-clear", "embedded", tmp_path / "d", first_slot=FIRST, slots=SLOTS,
        market="real-time",
    )  # fmt: skip
    report = real_time.report
    # The real-time market's report is the one it was, with its market named (the gas of its
    # transactions is the contract's, pinned in test_agents_mix).
    assert {k: report[k] for k in DEFAULT_FIGURES if k != "gas_used"} == {
        k: v for k, v in DEFAULT_FIGURES.items() if k != "gas_used"
    }
    assert report["market"] == "real-time" and "day_ahead" not in report
    # The same flows, so the same energy to trade and comparable figures.
    same = ("pv_energy_Wh", "load_energy_Wh", "readings", "battery_charge_Wh", "slots")
    assert {k: day_ahead.report[k] for k in same} == {k: report[k] for k in same}
    for key in ("self_sufficiency", "local_share_of_surplus", "community_savings_ueur"):
        assert key in day_ahead.report


@pytest.fixture
def forecasts_half_again_too_big(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every household forecast scaled by 1.5: positions exceed what is metered."""
    original = HouseholdForecaster.forecast

    def scaled(self: HouseholdForecaster, issue_slot: int, horizon_slots: int = 96) -> Forecast:
        fc = original(self, issue_slot, horizon_slots)
        return Forecast(fc.issue_slot, fc.pv_Wh, fc.load_Wh, (fc.net_Wh * 3) // 2)

    monkeypatch.setattr(HouseholdForecaster, "forecast", scaled)
    yield


@pytest.mark.usefixtures("forecasts_half_again_too_big")
def test_positions_larger_than_the_metered_energy_settle_with_shortfalls(
    tmp_path: Path,
) -> None:
    result = run_simulation(
        scenario(), "pay-as-offer", "embedded", tmp_path / "d", first_slot=FIRST, slots=SLOTS,
        market="day-ahead", commit_ppm=1_000_000,
    )  # fmt: skip
    da = check_day_ahead_report(result.report, events_of(result))
    assert da["shortfall_Wh"] > 0 and da["refund_ueur"] > 0
    assert da["delivered_share"] is not None and da["delivered_share"] < 1
    # No forward delivers more than either party metered in its slot.
    flows = result.flows
    row = {hid: h for h, hid in enumerate(result.household_ids)}
    sold = np.zeros(flows.shape, dtype=np.int64)
    bought = np.zeros(flows.shape, dtype=np.int64)
    for e in events_of(result):
        if e.name == "FillSettled":
            t = e.args["slot"] - flows.first_slot
            sold[row[e.args["seller"]], t] += e.args["energyWh"]
            bought[row[e.args["buyer"]], t] += e.args["energyWh"]
    assert (sold <= flows.export_Wh).all() and (bought <= flows.import_Wh).all()


def test_a_run_stopped_after_clearing_ahead_resumes_to_the_same_report(
    day_ahead: RunResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped once its forwards are on chain but before any reading: the resumed run clears
    the day again from the same forecasts and funds, the chain keeps the batches it holds, and
    the report is the same."""
    original = day_ahead_module.DayAheadMarket.clear_day
    funds: list[dict[int, int]] = []

    def clear_then_stop(self: day_ahead_module.DayAheadMarket, day_start: int) -> int:
        funds.append(self.funds(day_start))
        original(self, day_start)
        # The buyers' funds for the day count what its positions on chain hold in escrow.
        funds.append(self.funds(day_start))
        raise KeyboardInterrupt

    monkeypatch.setattr(day_ahead_module.DayAheadMarket, "clear_day", clear_then_stop)
    options: dict[str, Any] = {"first_slot": FIRST, "slots": SLOTS, "market": "day-ahead"}
    with pytest.raises(KeyboardInterrupt):
        run_simulation(scenario(), "pay-as-clear", "embedded", tmp_path / "d", **options)
    monkeypatch.setattr(day_ahead_module.DayAheadMarket, "clear_day", original)
    before, after = funds
    assert before == after and sum(before.values()) > 0
    # Another market is another run.
    with pytest.raises(SimulationError, match="holds another run"):
        run_simulation(
            scenario(), "pay-as-clear", "embedded", tmp_path / "d", first_slot=FIRST,
            slots=SLOTS, resume=True,
        )  # fmt: skip
    resumed = run_simulation(
        scenario(), "pay-as-clear", "embedded", tmp_path / "d", resume=True, **options
    )
    assert RunState.read(tmp_path / "d") is not None
    stored = RunState.read(tmp_path / "d")
    assert stored is not None and (stored.market, stored.commit_ppm) == ("day-ahead", 800_000)

    def figures(r: RunResult) -> dict[str, Any]:
        return {k: v for k, v in r.report.items() if k not in RUN_RESOURCES}

    assert figures(resumed) == figures(day_ahead)


def test_voisin_simulate_runs_the_day_ahead_market(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["simulate", "--households", "4", "--start", "2026-06-21", "--seed", "1"]
    args += ["--first-slot", "48", "--slots", "3", "--out", str(out), "--market", "day-ahead"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["market"] == "day-ahead" and report["audit_ok"] is True
    da = report["day_ahead"]
    assert da["delivered_Wh"] + da["shortfall_Wh"] == da["cleared_Wh"]
    assert "day-ahead: " in printed and "positions" in printed
    assert json.loads((out / "run.json").read_text())["options"]["market"] == "day-ahead"
    page = (out / "report.html").read_text()
    assert "<h2>Day-ahead market</h2>" in page and "energy cleared ahead" in page


def test_an_unknown_market_is_refused_with_the_markets_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SimulationError, match="unknown market 'weekly'; choose one of real-time"):
        run_simulation(scenario(), data_dir=tmp_path / "d", market="weekly")
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--market", "weekly"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'weekly'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["simulate", "--market", "day-ahead", "--via", "api", "--out", str(tmp_path / "o")])
    assert "runs only with --via direct" in capsys.readouterr().err
