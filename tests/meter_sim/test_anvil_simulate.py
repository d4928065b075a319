"""A run on ``--chain anvil`` reports what the embedded chain reports for the same run: the
same fills, energy, money and gas, but for the seals' gas (their calldata is a digest over
block numbers and transaction hashes, which differ between the chains)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from ledger.chain.anvil import ANVIL_BIN, STATE_FILE
from meter_sim import default_scenario
from meter_sim.report import RUN_RESOURCES
from meter_sim.run import run_simulation

#: What may differ: the run's time and resources, the chain's name, and the gas of the seals.
CHAIN_SPECIFIC = RUN_RESOURCES | {"chain", "gas_used", "gas_seals", "gas_per_household_slot"}


@pytest.mark.skipif(not ANVIL_BIN.is_file(), reason="anvil is not installed (run scripts/install)")
def test_anvil_reports_the_embedded_chains_figures(tmp_path: Path) -> None:
    scenario = default_scenario(3, days=1, start=date(2026, 6, 21), seed=1)
    window = {"first_slot": 46, "slots": 8}
    embedded = run_simulation(scenario, data_dir=tmp_path / "embedded", **window).report
    # As voisin simulate --chain anvil runs it: a chain of the run's own, the seeded operator.
    anvil = run_simulation(
        scenario,
        chain_spec="anvil",
        data_dir=tmp_path / "anvil",
        operator_key=scenario.operator_key,
        **window,
    ).report
    assert (embedded["chain"], anvil["chain"]) == ("embedded", "anvil")
    assert anvil["audit_ok"] is True and anvil["fills"] > 0
    assert {k: v for k, v in anvil.items() if k not in CHAIN_SPECIFIC} == {
        k: v for k, v in embedded.items() if k not in CHAIN_SPECIFIC
    }
    # A seal's 32 bytes of calldata cost 4 gas per zero byte and 16 per other byte.
    seals = anvil["gas_seals"] - embedded["gas_seals"]
    assert seals % 12 == 0 and abs(seals) <= 12 * 32 * 8
    assert anvil["gas_used"] - embedded["gas_used"] == seals
    # The anvil run keeps its chain in the data dir (written when the node stopped).
    assert (tmp_path / "anvil" / STATE_FILE).is_file()
