"""The feeder check on pandapower's Kerber suburban cable network: the documented mapping, an
overloading scenario (many prosumers on one branch at noon) and a quiet one."""

from __future__ import annotations

import pytest

from ledger.audit.feeder import (
    DEFAULT_NETWORK,
    HOUSE_CONNECTIONS,
    NETWORKS,
    FeederError,
    branch_mapping,
    default_mapping,
    load_network,
    run_feeder,
)
from tests.ledger.audit.conftest import SLOT, Market

HOUSEHOLDS = list(range(1, 31))
#: Four slots around noon and one at night.
NOON = range(SLOT + 48, SLOT + 52)
NIGHT = SLOT + 4


def test_the_default_mapping_interleaves_the_branches_nearest_the_transformer_first() -> None:
    net = load_network(DEFAULT_NETWORK)
    mapping = default_mapping(HOUSEHOLDS, net)
    names = [str(net.bus.at[int(net.load.bus.iat[mapping[h]]), "name"]) for h in HOUSEHOLDS]
    assert names[:10] == [f"loadbus_{b}_1" for b in range(1, 11)]
    assert names[10:20] == [f"loadbus_{b}_2" for b in range(1, 11)]
    assert len(set(mapping.values())) == 30
    # More households than house connections wrap around.
    many = default_mapping(list(range(1, 150)), net)
    assert many[147] == many[1]
    assert len(net.load) == 146


def test_branch_mapping_packs_households_on_one_branch() -> None:
    net = load_network(DEFAULT_NETWORK)
    mapping = branch_mapping(HOUSEHOLDS, net, 9)
    names = {str(net.bus.at[int(net.load.bus.iat[row]), "name"]) for row in mapping.values()}
    assert all(name.startswith("loadbus_9_") for name in names) and len(names) == 30
    with pytest.raises(FeederError, match="no branch 42"):
        branch_mapping(HOUSEHOLDS, net, 42)


def test_many_prosumers_on_one_branch_at_noon_overload_it() -> None:
    net = load_network(DEFAULT_NETWORK)
    # 30 prosumers, each exporting 10 kW (2,500 Wh a slot) at noon; 400 W of load at night.
    metered = {slot: {h: (0, 2_500) for h in HOUSEHOLDS} for slot in NOON}
    metered[NIGHT] = {h: (100, 0) for h in HOUSEHOLDS}
    result = run_feeder(metered, HOUSEHOLDS, mapping=branch_mapping(HOUSEHOLDS, net, 9))
    lines = [f for f in result.findings if f.evidence.get("line")]
    assert {f.slot for f in lines} == set(NOON)
    assert all(f.check == "feeder" and f.evidence["loading_percent"] > 100 for f in lines)
    assert all("_9_" in f.evidence["line"] for f in lines)
    assert {f.slot for f in result.findings} == set(NOON)
    noon = [result.slots.index(s) for s in NOON]
    night = result.slots.index(NIGHT)
    assert all((result.max_line_loading_percent[i] or 0) > 100 for i in noon)
    assert (result.max_line_loading_percent[night] or 0) < 100
    assert (result.vm_max_pu[noon[0]] or 0) > (result.vm_max_pu[night] or 0)


def test_the_same_neighbourhood_spread_over_the_feeder_at_night_is_quiet() -> None:
    metered = {slot: {h: (150, 0) for h in HOUSEHOLDS} for slot in (NIGHT, NIGHT + 1)}
    metered[NOON[0]] = {h: (0, 300) for h in HOUSEHOLDS}
    result = run_feeder(metered, HOUSEHOLDS)
    assert result.findings == []
    assert result.slots == sorted(metered)
    assert all((v or 0) >= 0.9 for v in result.vm_min_pu)
    assert all((v or 2) <= 1.1 for v in result.vm_max_pu)
    assert all(0 < (v or 0) < 100 for v in result.max_line_loading_percent)


def test_a_slots_power_flow_does_not_depend_on_the_slots_before_it() -> None:
    """Slots after the first reuse pandapower's model: their results must be their own."""
    busy = {h: (0, 2_500) for h in HOUSEHOLDS}
    quiet = {h: (200, 0) for h in HOUSEHOLDS}
    together = run_feeder({SLOT: busy, SLOT + 1: quiet}, HOUSEHOLDS)
    alone = run_feeder({SLOT + 1: quiet}, HOUSEHOLDS)
    assert together.vm_min_pu[1] == pytest.approx(alone.vm_min_pu[0], abs=1e-5)
    assert together.vm_max_pu[1] == pytest.approx(alone.vm_max_pu[0], abs=1e-5)
    assert together.max_line_loading_percent[1] == pytest.approx(
        alone.max_line_loading_percent[0], abs=1e-3
    )
    assert together.trafo_loading_percent[0] != pytest.approx(together.trafo_loading_percent[1])


def test_no_metered_slot_means_no_power_flow_and_no_finding() -> None:
    result = run_feeder({}, HOUSEHOLDS)
    assert (result.slots, result.findings, result.mapping) == ([], [], {})


def test_bad_feeder_arguments_are_refused() -> None:
    with pytest.raises(FeederError, match="unknown feeder network 'grid'"):
        run_feeder({}, HOUSEHOLDS, network="grid")
    with pytest.raises(FeederError, match="house connection 500"):
        run_feeder({SLOT: {1: (1, 0)}}, [1], mapping={1: 500})


def test_the_audit_flags_an_overloaded_branch_from_committed_readings(market: Market) -> None:
    """End to end: signed readings on chain, the audit's feeder check over them."""
    for _ in range(20):
        market.home(prosumer=True)
    homes = [h.id for h in market.homes]
    net = load_network(DEFAULT_NETWORK)
    # Everyone exports 12 kW (3,000 Wh) in the noon slot; a quiet slot before it.
    market.meter_slot(SLOT, {h: (50, 0) for h in homes})
    market.meter_slot(SLOT + 1, {h: (0, 3_000) for h in homes})
    packed = market.audit(feeder=True, mapping=branch_mapping(homes, net, 9))
    assert {(f.check, f.slot) for f in packed.findings} >= {("feeder", SLOT + 1)}
    assert all(f.check == "feeder" and f.slot == SLOT + 1 for f in packed.findings), [
        f.as_text() for f in packed.findings
    ]
    assert packed.as_dict()["feeder"]["slots"] == [SLOT, SLOT + 1]
    spread = market.audit(feeder=True)
    assert spread.findings == []
    assert spread.as_dict()["feeder"]["mapping"][str(homes[0])] == "loadbus_1_1"


def test_the_house_connections_are_the_networks_own() -> None:
    assert set(HOUSE_CONNECTIONS) == set(NETWORKS)
    for name in NETWORKS:
        assert len(load_network(name).load) == HOUSE_CONNECTIONS[name], name
