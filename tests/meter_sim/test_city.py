"""A city of neighbourhoods (``voisin simulate --neighbourhoods K``): each neighbourhood its own
market on one chain, the city's report the sum of theirs, and nothing of one market valid in
another."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from api.cli import main
from ledger.chain.backends import open_chain
from ledger.contract.compile import load_artifact
from ledger.errors import InvalidSignature, UnknownMeter
from ledger.readings.eip712 import Reading, sign_reading
from meter_sim.city import city_networks, city_report, city_scenarios, neighbourhood_name


def test_the_neighbourhoods_differ_by_seed_and_are_the_same_for_a_seed() -> None:
    city = city_scenarios(4, 20, 1, date(2026, 6, 21), seed=3)
    assert (
        [s.name for s in city]
        == ["n01", "n02", "n03", "n04"]
        == [neighbourhood_name(k) for k in range(4)]
    )
    assert all(len(s.households) == 20 for s in city)
    meters = [m for s in city for m in (i.meter for i in s.identities)]
    assert len(set(meters)) == 80  # every household of the city is its own
    shares = {
        (sum(h.prosumer for h in s.households), sum(h.battery is not None for h in s.households))
        for s in city
    }
    assert len(shares) > 1  # seeded variety
    again = city_scenarios(4, 20, 1, date(2026, 6, 21), seed=3)
    assert [s.identities for s in again] == [s.identities for s in city]
    assert city_scenarios(4, 20, 1, date(2026, 6, 21), seed=4)[0].identities != city[0].identities
    with pytest.raises(ValueError):
        city_scenarios(0, 20, 1, date(2026, 6, 21), seed=3)


def test_each_neighbourhood_gets_a_feeder_that_fits_it() -> None:
    for households, allowed in [
        (100, {"kerber_vorstadtnetz_kabel_1", "kerber_vorstadtnetz_kabel_2"}),
        (30, {"kerber_dorfnetz", "kerber_vorstadtnetz_kabel_1", "kerber_vorstadtnetz_kabel_2"}),
        (400, {"kerber_vorstadtnetz_kabel_1", "kerber_vorstadtnetz_kabel_2"}),
    ]:
        drawn = city_networks(40, households, seed=1)
        assert set(drawn) == allowed, (households, set(drawn))
        assert city_networks(40, households, seed=1) == drawn  # the same city for a seed
    small = city_networks(40, 6, seed=2)
    assert "kerber_landnetz_kabel_1" in small and len(set(small)) >= 4
    assert city_networks(40, 6, seed=3) != small


def _report(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "households": 2, "prosumers": 1, "days": 1, "slots": 96, "first_slot": 10,
        "period_local": {"start": "a", "end": "b", "tz": "Europe/Paris"}, "readings": 192,
        "fills": 10, "pv_energy_Wh": 1000, "load_energy_Wh": 800, "self_consumed_Wh": 300,
        "local_traded_Wh": 200, "grid_import_Wh": 300, "grid_export_Wh": 500,
        "battery_charge_Wh": 0, "battery_discharge_Wh": 0, "self_sufficiency": 0.625,
        "local_share_of_surplus": 0.2857, "community_savings_ueur": 5, "fees_ueur": 1,
        "local_traded_ueur": 26, "grid_import_cost_ueur": 70, "grid_export_revenue_ueur": 30,
        "mean_clearing_price_ueur_per_kWh": 130_000, "gas_used": 1_000_000,
        "gas_readings": 600_000, "gas_settlement": 300_000, "gas_seals": 100_000,
        "gas_per_household_slot": 5208, "gas_per_reading": 3125, "gas_per_settled_fill": 30000,
        "audit_ok": True, "audit_findings": [], "wall_s": 1.0,
        "household_figures": [{"household": 1}, {"household": 2}],
        "monthly": [{"month": "2026-06", "first_slot": 10, "slots": 96, "whole_month": False,
                     "pv_energy_Wh": 1000, "load_energy_Wh": 800, "self_consumed_Wh": 300,
                     "local_traded_Wh": 200, "grid_import_Wh": 300, "grid_export_Wh": 500,
                     "battery_charge_Wh": 0, "battery_discharge_Wh": 0,
                     "self_sufficiency": 0.625, "local_share_of_surplus": 0.2857}],
        "scenario": "n01", "mechanism": "pay-as-clear", "market": "real-time",
        "chain": "embedded", "contract": "0xA", "agents": {"default": 2},
        "clearing_price_spread_ueur_per_kWh": {
            "slots": 5, "min": 120_000, "max": 140_000, "std": 1.0
        },
        "forecast": {}, "disk_bytes": 100, "peak_rss_bytes": 7,
    }  # fmt: skip
    return base | changes


def test_the_city_sums_its_neighbourhoods_and_computes_its_ratios_again() -> None:
    a = _report()
    b = _report(
        households=4, load_energy_Wh=1_200, grid_import_Wh=900, local_traded_Wh=600,
        grid_export_Wh=0, mean_clearing_price_ueur_per_kWh=100_000, fills=0,
        gas_settlement=0, audit_ok=False, audit_findings=["money: 1 µ€ missing"],
        clearing_price_spread_ueur_per_kWh={"slots": 0, "min": None, "max": None, "std": None},
        agents={"default": 3, "adaptive": 1},
    )  # fmt: skip
    city = city_report([a, b], ["n01", "n02"], wall_s=12.345, peak_rss=99)
    assert city["households"] == 6 and city["readings"] == 384 and city["fills"] == 10
    assert city["load_energy_Wh"] == 2_000 and city["gas_used"] == 2_000_000
    assert city["self_sufficiency"] == round((2_000 - 1_200) / 2_000, 4)
    assert city["local_share_of_surplus"] == round(800 / (800 + 500), 4)
    # The neighbourhoods' prices weighted by what each traded locally.
    assert city["mean_clearing_price_ueur_per_kWh"] == (130_000 * 200 + 100_000 * 600) // 800
    assert city["gas_per_household_slot"] == 2_000_000 // 384
    assert city["gas_per_settled_fill"] == 300_000 // 10
    assert not city["audit_ok"] and city["audit_findings"] == ["n02: money: 1 µ€ missing"]
    assert city["agents"] == {"default": 5, "adaptive": 1}
    assert city["clearing_price_spread_ueur_per_kWh"] == {
        "slots": 5, "min": 120_000, "max": 140_000, "std": None
    }  # fmt: skip
    assert city["monthly"][0]["load_energy_Wh"] == 1_600  # b's month is a's copy
    assert [h["neighbourhood"] for h in city["household_figures"]] == ["n01"] * 2 + ["n02"] * 2
    assert [n["name"] for n in city["neighbourhoods"]] == ["n01", "n02"]
    assert city["neighbourhoods"][1]["households"] == 4
    assert city["contract"] is None and city["scenario"] == "city"
    assert city["wall_s"] == 12.35 and city["peak_rss_bytes"] == 99
    with pytest.raises(ValueError, match="slots"):
        city_report([a, _report(slots=95)], ["n01", "n02"], wall_s=1, peak_rss=1)
    with pytest.raises(ValueError):
        city_report([a], ["n01", "n02"], wall_s=1, peak_rss=1)


def test_options_a_city_cannot_take_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for extra, said in [
        (["--scenario", "quartierstrom"], "--scenario must be 'default'"),
        (["--via", "api"], "--via direct"),
        (["--market", "day-ahead"], "real-time market"),
    ]:
        out = tmp_path / "x"
        assert main(["simulate", "--neighbourhoods", "2", "--out", str(out), *extra]) == 2
        assert said in capsys.readouterr().err
        assert not (out / "neighbourhoods").exists()


def test_a_city_of_two_runs_on_one_chain_each_market_its_own(tmp_path: Path) -> None:
    out = tmp_path / "city"
    code = main(
        [
            "simulate", "--neighbourhoods", "2", "--households", "3", "--first-slot", "44",
            "--slots", "8", "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    city = json.loads((out / "report.json").read_text())
    parts = [
        json.loads((out / "neighbourhoods" / n / "report.json").read_text()) for n in ("n01", "n02")
    ]
    assert [n["name"] for n in city["neighbourhoods"]] == ["n01", "n02"]
    assert [{k: v for k, v in n.items() if k != "name"} for n in city["neighbourhoods"]] == parts
    for field in ("households", "readings", "fills", "local_traded_Wh", "gas_used", "fees_ueur"):
        assert city[field] == sum(p[field] for p in parts), field
    assert city["readings"] == 2 * 3 * 8 and city["audit_ok"]
    assert all(p["audit_ok"] for p in parts) and city["fills"] > 0
    assert (out / "neighbourhoods" / "n02" / "report.html").exists()
    # Each neighbourhood's feeder, as drawn for its size; its data where a served city has it.
    networks = city_networks(2, 3, seed=1)
    assert [p["feeder_network"] for p in parts] == networks
    assert sorted(q.name for q in (out / "data" / "markets").iterdir()) == ["n01", "n02"]

    # Two contracts on one chain: nothing of one market is valid in the other.
    first, second = (p["contract"] for p in parts)
    assert first != second
    scenarios = city_scenarios(2, 3, 1, date(2026, 6, 21), seed=1)
    with open_chain("embedded", out / "data", scenarios[0].operator_key) as chain:
        from ledger.contract.client import VoisinClient

        abi = load_artifact("Voisin")["abi"]
        one, two = (VoisinClient(chain.w3, a, abi) for a in (first, second))
        meter = scenarios[0].identities[0]
        assert one.meter_state(meter.meter).household != 0
        assert two.meter_state(meter.meter).household == 0  # unknown in the other market
        slot = parts[0]["first_slot"] + 8
        reading = sign_reading(
            meter.meter_key,
            Reading(meter.meter, slot, meter.import_baseline_Wh + 10**6, meter.export_baseline_Wh),
            one.domain_separator(),
        )
        with pytest.raises(UnknownMeter):
            two.commit_readings(chain.operator, [reading])
        # The other market's own meter, signing in the first market's domain: refused there.
        theirs = scenarios[1].identities[0]
        forged = sign_reading(
            theirs.meter_key,
            Reading(
                theirs.meter, slot, theirs.import_baseline_Wh + 10**6, theirs.export_baseline_Wh
            ),
            one.domain_separator(),
        )
        with pytest.raises(InvalidSignature):
            two.commit_readings(chain.operator, [forged])
