"""A neighbourhood run end to end on the embedded chain (``meter_sim.run``, ``voisin simulate``):
every report field is recomputed from the chain's events and the simulator's flows."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from api.cli import main
from ledger.chain.backends import open_chain
from ledger.contract.deploy import open_ledger
from ledger.types import Event
from meter_sim import Flows, default_scenario
from meter_sim.report import RUN_RESOURCES, Money, audit
from meter_sim.run import RunResult, SimulationError, run_simulation
from meter_sim.scenario import Scenario

MECHANISMS = ("pay-as-clear", "midpoint", "pay-as-offer")
#: Eight slots from 11:30 local time on a June day: PV surplus to trade.
FIRST, SLOTS = 46, 8
REPORT_FIELDS = {
    "households", "prosumers", "days", "slots", "readings", "fills", "pv_energy_Wh",
    "load_energy_Wh", "self_consumed_Wh", "local_traded_Wh", "grid_import_Wh", "grid_export_Wh",
    "self_sufficiency", "local_share_of_surplus", "community_savings_ueur",
    "mean_clearing_price_ueur_per_kWh", "gas_used", "gas_readings", "gas_settlement",
    "gas_seals", "gas_per_settled_fill", "audit_ok",
    "audit_findings", "wall_s", "battery_charge_Wh", "battery_discharge_Wh",
}  # fmt: skip
INTEGER_FIELDS = {f for f in REPORT_FIELDS if f.endswith(("_Wh", "_ueur"))} | {
    "gas_used",
    "gas_readings",
    "gas_settlement",
    "gas_seals",
    "households",
    "prosumers",
    "slots",
    "readings",
    "fills",
}


def scenario() -> Scenario:
    return default_scenario(
        6, days=1, start=date(2026, 6, 21), seed=3, prosumer_share=0.5, battery_share=0.7
    )


@pytest.fixture(scope="module", params=MECHANISMS)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    data = tmp_path_factory.mktemp("run") / "data"
    return run_simulation(
        scenario(), request.param, "embedded", data, first_slot=FIRST, slots=SLOTS
    )


def chain_events(result: RunResult) -> tuple[list[Event], dict[str, int], Any, dict[str, int]]:
    """The run's contract events, the gas of each of its per-slot transactions, the tariffs,
    and every household account's token balance."""
    with open_chain("embedded", result.data_dir) as chain:
        client, deployment = open_ledger(chain)
        assert deployment.address == result.contract
        events = client.events(deployment.block_number, int(chain.w3.eth.block_number))
        gas = {
            e.tx_hash: int(chain.w3.eth.get_transaction_receipt(e.tx_hash)["gasUsed"])  # type: ignore[arg-type]
            for e in events
            if e.name in ("ReadingCommitted", "BatchSettled", "SlotSealed")
        }
        balances = {i.account: client.balance_of(i.account) for i in scenario().identities}
        return events, gas, client.tariffs(), balances


def test_every_report_field_matches_the_chain_and_the_flows(run: RunResult) -> None:
    r, flows, ids = run.report, run.flows, run.household_ids
    events, gas, tariffs, balances = chain_events(run)
    assert r.keys() >= REPORT_FIELDS
    for name in INTEGER_FIELDS:
        assert type(r[name]) is int, name
    sc = scenario()
    assert (r["households"], r["slots"], r["prosumers"]) == (6, SLOTS, 3)
    assert r["days"] == pytest.approx(SLOTS / 96)
    assert r["first_slot"] == sc.first_slot + FIRST == flows.first_slot
    assert r["mechanism"] == run.report["mechanism"] and r["audit_ok"] is True
    assert r["audit_findings"] == []

    # Readings: one per meter and slot, each recording exactly the simulated import/export.
    readings = [e.args for e in events if e.name == "ReadingCommitted"]
    assert r["readings"] == len(readings) == 6 * SLOTS
    row = {hid: h for h, hid in enumerate(ids)}
    for a in readings:
        h, t = row[a["household"]], a["slot"] - flows.first_slot
        assert (a["importDeltaWh"], a["exportDeltaWh"]) == (
            int(flows.import_Wh[h, t]),
            int(flows.export_Wh[h, t]),
        )

    # Fills: count, energy, price, fees, gas.
    fills = [e.args for e in events if e.name == "FillSettled"]
    assert fills and all(f["bidId"] != 0 for f in fills)
    traded = sum(f["energyWh"] for f in fills)
    assert r["fills"] == len(fills)
    assert r["local_traded_Wh"] == traded > 0
    assert r["mean_clearing_price_ueur_per_kWh"] == (
        sum(f["energyWh"] * f["priceUeurPerKWh"] for f in fills) // traded
    )
    assert r["fees_ueur"] == sum(f["feeUeur"] for f in fills)
    settle_gas = sum(g for tx, g in gas.items() if any(
        e.tx_hash == tx and e.name == "BatchSettled" for e in events))  # fmt: skip
    seal_gas = sum(g for tx, g in gas.items() if any(
        e.tx_hash == tx and e.name == "SlotSealed" for e in events))  # fmt: skip
    read_gas = sum(gas.values()) - settle_gas - seal_gas
    assert seal_gas > 0 and len([e for e in events if e.name == "SlotSealed"]) == SLOTS
    assert (r["gas_settlement"], r["gas_readings"], r["gas_seals"]) == (
        settle_gas,
        read_gas,
        seal_gas,
    )
    assert r["gas_used"] == sum(gas.values())
    assert r["gas_per_settled_fill"] == settle_gas // len(fills)
    assert r["gas_per_household_slot"] == sum(gas.values()) // (6 * SLOTS)
    assert r["gas_per_reading"] == read_gas // (6 * SLOTS)
    # The data dir's files (at least the chain and the database), the run's memory.
    assert type(r["disk_bytes"]) is int and r["disk_bytes"] > 100_000
    assert type(r["peak_rss_bytes"]) is int and r["peak_rss_bytes"] > 50 * 2**20
    # Within one local month: one month, the run's own figures.
    [month] = r["monthly"]
    assert month["month"] == "2026-06" and month["slots"] == SLOTS
    assert month["whole_month"] is False and month["local_traded_Wh"] == r["local_traded_Wh"]
    assert month["self_sufficiency"] == r["self_sufficiency"]
    if r["mechanism"] == "pay-as-offer":
        # Every default offer asks feed-in + 0.02 EUR/kWh: pay-as-offer pays exactly that.
        assert {f["priceUeurPerKWh"] for f in fills} == {tariffs.feed_in_ueur_per_kWh + 20_000}
    if r["mechanism"] == "pay-as-clear":
        per_slot: dict[int, set[int]] = defaultdict(set)
        for f in fills:
            per_slot[f["slot"]].add(f["priceUeurPerKWh"])
        assert all(len(prices) == 1 for prices in per_slot.values())

    # Energy: the totals from the flows, and both equations exact.
    assert r["pv_energy_Wh"] == int(flows.pv_Wh.sum()) > 0
    assert r["load_energy_Wh"] == int(flows.load_Wh.sum())
    assert r["battery_charge_Wh"] == int(flows.charge_Wh.sum()) > 0  # batteries take part
    assert r["battery_discharge_Wh"] == int(flows.discharge_Wh.sum())
    assert r["grid_import_Wh"] == int(flows.import_Wh.sum()) - traded
    assert r["grid_export_Wh"] == int(flows.export_Wh.sum()) - traded
    assert r["load_energy_Wh"] == (
        r["self_consumed_Wh"] + r["local_traded_Wh"] + r["grid_import_Wh"]
    )
    assert r["pv_energy_Wh"] == (
        r["self_consumed_Wh"]
        + r["local_traded_Wh"]
        + r["grid_export_Wh"]
        + r["battery_charge_Wh"]
        - r["battery_discharge_Wh"]
    )
    assert r["self_sufficiency"] == round(
        (r["load_energy_Wh"] - r["grid_import_Wh"]) / r["load_energy_Wh"], 4
    )
    assert r["local_share_of_surplus"] == round(traded / int(flows.export_Wh.sum()), 4)

    # Savings: grid-only cost minus actual net cost, per household and slot, from the events.
    retail, feed_in = tariffs.retail_ueur_per_kWh, tariffs.feed_in_ueur_per_kWh
    bought: dict[tuple[int, int], int] = defaultdict(int)
    sold: dict[tuple[int, int], int] = defaultdict(int)
    net_local: dict[tuple[int, int], int] = defaultdict(int)
    for f in fills:
        bought[f["buyer"], f["slot"]] += f["energyWh"]
        sold[f["seller"], f["slot"]] += f["energyWh"]
        net_local[f["buyer"], f["slot"]] += f["costUeur"] + f["feeUeur"]
        net_local[f["seller"], f["slot"]] -= f["costUeur"]
    savings = 0
    for a in readings:
        key = (a["household"], a["slot"])
        imp, exp = a["importDeltaWh"], a["exportDeltaWh"]
        grid_only = imp * retail // 1000 - exp * feed_in // 1000
        actual = (
            net_local[key]
            + (imp - bought[key]) * retail // 1000
            - (exp - sold[key]) * feed_in // 1000
        )
        savings += grid_only - actual
    assert r["community_savings_ueur"] == savings > 0

    # Money: every household's balance is its top-up minus what it paid plus what it earned.
    topped = {e.args["account"]: e.args["amountUeur"] for e in events if e.name == "ToppedUp"}
    account = {hid: i.account for hid, i in zip(ids, scenario().identities, strict=True)}
    expected = dict(topped)
    for f in fills:
        expected[account[f["buyer"]]] -= f["costUeur"] + f["feeUeur"]
        expected[account[f["seller"]]] += f["costUeur"]
    assert balances == expected
    assert sum(balances.values()) + r["fees_ueur"] == sum(topped.values())


def test_the_statements_are_let_go_before_the_audit_reads_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long run's end must not hold every household's statement while the audit reads the
    whole run again: no statement the run built is alive when the audit starts."""
    import gc

    import meter_sim.run as run_module
    from ledger.market.statements import Statement

    built: set[int] = set()
    alive_at_audit: list[int] = []
    load = run_module.load_statements
    audit_run = run_module.add_ledger_audit

    def load_and_watch(*args: Any, **kwargs: Any) -> Any:
        statements = load(*args, **kwargs)
        built.update(id(s) for s in statements)
        return statements

    def audit_and_count(*args: Any, **kwargs: Any) -> None:
        gc.collect()
        alive = [o for o in gc.get_objects() if isinstance(o, Statement) and id(o) in built]
        alive_at_audit.append(len(alive))
        del alive
        audit_run(*args, **kwargs)

    monkeypatch.setattr(run_module, "load_statements", load_and_watch)
    monkeypatch.setattr(run_module, "add_ledger_audit", audit_and_count)
    small = replace(scenario(), households=scenario().households[:3])
    result = run_simulation(small, data_dir=tmp_path / "d", first_slot=FIRST, slots=2)
    assert len(built) == 3
    assert alive_at_audit == [0]
    # What the report and the result need of them was kept.
    assert len(result.savings_ueur) == 3
    assert len(result.report["household_figures"]) == 3
    assert result.report["audit_ok"], result.report["audit_findings"]


def test_a_run_refuses_a_data_dir_that_already_holds_it(tmp_path: Path) -> None:
    small = replace(scenario(), households=scenario().households[:2])
    run_simulation(small, data_dir=tmp_path / "d", first_slot=FIRST, slots=1)
    with pytest.raises(SimulationError, match="fresh data dir"):
        run_simulation(small, data_dir=tmp_path / "d", first_slot=FIRST, slots=1)
    with pytest.raises(SimulationError, match="unknown mechanism"):
        run_simulation(small, "lowest-bid", data_dir=tmp_path / "e")
    with pytest.raises(SimulationError, match="does not fit"):
        run_simulation(small, data_dir=tmp_path / "f", first_slot=95, slots=2)


def test_the_audit_reports_broken_conservation(run: RunResult) -> None:
    """The audit is not a rubber stamp: tampered inputs give findings."""
    from ledger.market.statements import Statement, TradeLine

    flows: Flows = run.flows
    ok_money = Money(top_ups_ueur=100, balances_ueur=90, fees_ueur=10, supply_growth_ueur=100)
    fill = TradeLine(flows.first_slot, run.household_ids[0], run.household_ids[1], 5, 1, 0, 0)
    empty: list[Statement] = []
    findings = audit(flows, run.household_ids, [fill], empty, ok_money, readings=3)
    text = "\n".join(findings)
    assert "readings: 3 committed" in text
    assert "sold 0 Wh, bought 0 Wh, fills carry 5 Wh" in text
    assert "statements: 0 for 6 households" in text
    assert "money" not in text
    short = replace(ok_money, balances_ueur=91)
    assert any(f.startswith("money: balances 91") for f in audit(flows, (), [], [], short, 0))


def test_voisin_simulate_writes_a_valid_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["simulate", "--households", "4", "--start", "2026-06-21", "--seed", "1"]
    args += ["--first-slot", "48", "--slots", "3", "--out", str(out)]
    args += ["--json", str(tmp_path / "copy.json")]
    assert main(args) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert f"report: {(out / 'report.json').resolve()}" in printed
    assert json.loads((tmp_path / "copy.json").read_text()) == report
    assert report.keys() >= REPORT_FIELDS
    assert (report["households"], report["slots"], report["readings"]) == (4, 3, 12)
    assert report["audit_ok"] is True and report["fills"] > 0
    assert report["load_energy_Wh"] == (
        report["self_consumed_Wh"] + report["local_traded_Wh"] + report["grid_import_Wh"]
    )
    assert (out / "data" / "chain").is_dir()
    # The run's data dir is kept; reusing it is refused.
    assert main([*args[:-2], "--data-dir", str(out / "data")]) == 2
    assert "already holds a chain" in capsys.readouterr().err


def test_voisin_simulate_refuses_an_unknown_mechanism(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--mechanism", "lowest-bid"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_a_period_that_is_not_over_is_refused_before_anything_runs(tmp_path: Path) -> None:
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from meter_sim import default_scenario
    from meter_sim.flows import check_window_is_over
    from meter_sim.run import SimulationError, run_simulation

    # A scenario's day runs from local midnight: "today" is the date where its households live
    # (late in the UTC evening it is already tomorrow in Lyon, and today there is over).
    today = datetime.now(ZoneInfo(default_scenario(1).location.tz)).date()
    for start in (today, today + timedelta(days=30)):
        scenario = default_scenario(3, days=1, start=start, seed=1)
        with pytest.raises(SimulationError, match="not over yet"):
            run_simulation(scenario, data_dir=tmp_path / "data")
    assert not (tmp_path / "data").exists()
    # A window of a day that is over passes, and the last slot that ended is the limit.
    yesterday = default_scenario(3, days=1, start=today - timedelta(days=2), seed=1)
    check_window_is_over(yesterday, 0, None)
    last_end = (yesterday.slots[-1] + 1) * 900
    check_window_is_over(yesterday, 0, None, now_s=last_end)
    with pytest.raises(SimulationError):
        check_window_is_over(yesterday, 0, None, now_s=last_end - 1)


def test_the_same_seed_gives_the_same_report_but_for_time_disk_and_memory(tmp_path: Path) -> None:
    reports = []
    for name in ("first", "second"):
        result = run_simulation(
            scenario(), "pay-as-clear", "embedded", tmp_path / name, first_slot=44, slots=4
        )
        reports.append({k: v for k, v in result.report.items() if k not in RUN_RESOURCES})
    assert reports[0] == reports[1]
    assert reports[0]["fills"] > 0
    # The data dir keeps the seeded operator: it reopens (as voisin audit does) without a key.
    with open_chain("embedded", tmp_path / "first") as chain:
        assert chain.operator.address == Account.from_key(scenario().operator_key).address
