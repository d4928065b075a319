"""Scenarios as data: built-in neighbourhoods, keys from the seed, files, validation."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from eth_account import Account

from meter_sim import (
    LYON,
    PV,
    Battery,
    HouseholdSpec,
    Location,
    Scenario,
    ScenarioError,
    default_scenario,
    load_scenario,
    quartierstrom_scenario,
    scenario_from_dict,
)


def test_default_neighbourhood_is_about_forty_percent_prosumers_in_lyon() -> None:
    sc = default_scenario(households=30, days=2, start=date(2026, 7, 1), seed=5)
    assert len(sc.households) == 30
    assert sum(h.prosumer for h in sc.households) == 12
    assert sc.location == LYON and sc.location.tz == "Europe/Paris"
    assert any(h.battery is not None for h in sc.households)
    assert all(h.pv is not None for h in sc.households if h.battery is not None)
    assert len({h.annual_Wh for h in sc.households}) == 30  # different sizes
    assert sc.n_slots == 192
    assert len(default_scenario(households=50, prosumer_share=0.2).households) == 50
    assert sum(h.prosumer for h in default_scenario(50, prosumer_share=0.2).households) == 10


def test_quartierstrom_has_37_households_27_with_pv_in_walenstadt() -> None:
    sc = quartierstrom_scenario()
    assert len(sc.households) == 37
    assert sum(h.prosumer for h in sc.households) == 27
    assert sc.location.name == "Walenstadt"
    assert sc.location.tz == "Europe/Zurich" and sc.location.country == "CH"


def test_the_period_starts_at_local_midnight_and_slots_are_utc_quarter_hours() -> None:
    sc = default_scenario(3, days=1, start=date(2026, 5, 4))
    assert sc.start_utc == datetime(2026, 5, 3, 22, 0, tzinfo=UTC)  # CEST is UTC+2
    assert sc.first_slot == int(sc.start_utc.timestamp()) // 900
    assert list(sc.slots) == list(range(sc.first_slot, sc.first_slot + 96))


def test_keys_come_from_the_seed_and_differ_between_seeds_roles_and_scenarios() -> None:
    a = default_scenario(5, seed=1).identities
    b = default_scenario(5, seed=1).identities
    c = default_scenario(5, seed=2).identities
    q = quartierstrom_scenario(seed=1).identities
    assert a == b
    assert {i.meter for i in a}.isdisjoint({i.meter for i in c})
    assert {i.meter for i in a}.isdisjoint({i.meter for i in q})
    assert len({i.meter for i in a} | {i.account for i in a}) == 10
    for ident in a:
        assert Account.from_key(ident.meter_key).address == ident.meter
        assert Account.from_key(ident.account_key).address == ident.account


def test_register_baselines_are_realistic_and_seeded() -> None:
    sc = default_scenario(20, seed=3)
    for spec, ident in zip(sc.households, sc.identities, strict=True):
        assert 0 < ident.import_baseline_Wh < 12 * spec.annual_Wh
        if spec.pv is None:
            assert ident.export_baseline_Wh == 0
        else:
            assert ident.export_baseline_Wh > 0
    assert [i.import_baseline_Wh for i in sc.identities] != [
        i.import_baseline_Wh for i in default_scenario(20, seed=4).identities
    ]


def test_a_scenario_written_to_json_reads_back_equal(tmp_path: Path) -> None:
    sc = default_scenario(8, days=3, start=date(2026, 3, 2), seed=9)
    path = tmp_path / "street.json"
    path.write_text(json.dumps(sc.to_dict()))
    again = load_scenario(path)
    assert again == sc
    assert again.identities == sc.identities


def test_a_toml_file_lists_households_or_asks_for_a_generated_street(tmp_path: Path) -> None:
    listed = tmp_path / "two.toml"
    listed.write_text(
        """
name = "two"
seed = 4
start = "2026-06-01"
days = 2
location = { name = "Grenoble", latitude = 45.19, longitude = 5.72, tz = "Europe/Paris" }

[[households]]
name = "sun"
annual_kWh = 4200
pv = { kWp = 6.5, tilt_deg = 30, azimuth_deg = 180 }
battery = { capacity_Wh = 10000, power_W = 5000, round_trip_efficiency = 0.9 }

[[households]]
name = "shade"
annual_Wh = 2500000
"""
    )
    sc = load_scenario(listed)
    assert sc.location.name == "Grenoble" and sc.days == 2 and sc.seed == 4
    assert sc.households == (
        HouseholdSpec("sun", 4_200_000, PV(6_500, 30, 180), Battery(10_000, 5_000, 0.9)),
        HouseholdSpec("shade", 2_500_000),
    )
    generated = tmp_path / "street.toml"
    generated.write_text('name = "street"\nseed = 2\nhouseholds = 10\nprosumer_share = 0.5\n')
    street = load_scenario(generated)
    assert len(street.households) == 10 and sum(h.prosumer for h in street.households) == 5


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"households": [{"name": "a", "annual_Wh": 0}]}, "a.annual_Wh must be between"),
        ({"households": [{"name": "a", "annual_Wh": 1.5}]}, "must be an integer"),
        ({"days": 0, "households": 3}, "days must be between"),
        ({"sky": "foggy", "households": 3}, "sky must be"),
        ({"location": {"name": "x", "latitude": 1, "longitude": 2, "tz": "Mars/Olympus"}}, "tz"),
        (
            {"households": [{"name": "a", "annual_Wh": 1}, {"name": "a", "annual_Wh": 2}]},
            "names must be unique",
        ),
        (
            {
                "households": [
                    {
                        "name": "a",
                        "annual_Wh": 1,
                        "pv": {"peak_W": 1000},
                        "battery": {"capacity_Wh": 100, "power_W": 100, "round_trip_efficiency": 2},
                    }
                ]
            },
            "round_trip_efficiency must be in",
        ),
        ({"households": [{"name": "a"}]}, "not valid"),
    ],
)
def test_invalid_scenario_data_says_what_is_allowed(data: dict[str, object], words: str) -> None:
    with pytest.raises(ScenarioError, match=words):
        scenario_from_dict(data)


def test_other_file_types_and_empty_neighbourhoods_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"\.json or \.toml"):
        load_scenario(tmp_path / "x.yaml")
    with pytest.raises(ScenarioError, match="at least one household"):
        Scenario("empty", ())
    with pytest.raises(ScenarioError, match="latitude"):
        Location("nowhere", 95.0, 0.0, "UTC")
