"""The chaos run (scripts/chaos), short: 6 households, 8 slots, every chaos event.

The slow test runs the script as CI does and checks its JSON summary: each of the four events
happened, every fault kind was injected and refused as it should be, every valid reading is on
chain once and the audit is clean. The quick tests pin down the script's own bookkeeping: what
the API should answer to each envelope, and that a short run still schedules every event.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ledger.readings.eip712 import Reading, SignedReading, domain_separator
from meter_sim import Envelope, Fault, FaultRates, default_scenario, envelopes, sign_readings
from meter_sim.flows import simulate
from meter_sim.run import window
from tests.conftest import ANVIL_BIN, ROOT

SCRIPT = ROOT / "scripts" / "chaos.py"
#: A seed whose 6 households trade at noon and whose 48 readings draw every fault kind.
CI_SEED = 6
DOMAIN = domain_separator(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")


def _chaos() -> ModuleType:
    spec = importlib.util.spec_from_file_location("voisin_chaos_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


chaos = _chaos()


def _postgres_installed() -> bool:
    return any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))


# ───────────────────────────── The script's bookkeeping ─────────────────────────────


def test_a_short_run_still_schedules_every_chaos_event_in_its_own_round() -> None:
    events = chaos.rounds_for_events(11)  # 8 slots plus 3 slots of grace for late readings
    assert [(name, phase) for name, _, phase in events] == [
        ("kill_api", "readings"),
        ("stop_anvil", "settle"),
        ("restart_postgres", "readings"),
        ("kill_api", "settle"),
    ]
    rounds = [r for _, r, _ in events]
    assert rounds == sorted(set(rounds))
    assert rounds[0] > 0 and rounds[-1] < 11


def test_too_few_rounds_for_the_events_are_refused() -> None:
    with pytest.raises(SystemExit, match="too few"):
        chaos.rounds_for_events(4)


def _sent(slot: int, send_slot: int, fault: Fault | None, template: Envelope) -> Envelope:
    """An envelope of the same meter for ``slot`` (the signature does not matter here)."""
    rd = template.signed.reading
    reading = Reading(rd.meter, slot, rd.import_Wh, rd.export_Wh)
    signed = SignedReading(reading, template.signed.v, template.signed.r, template.signed.s)
    return Envelope(signed, 0, slot, send_slot, fault)


def test_a_late_reading_is_expected_accepted_unless_a_later_slot_overtook_it() -> None:
    scenario = default_scenario(1, 1, date(2026, 6, 21), 1)
    flows = window(simulate(scenario), 40, 4)
    base = envelopes(scenario, sign_readings(scenario, flows, DOMAIN), DOMAIN)[0]
    s = base.slot
    sent = [
        _sent(s, s, None, base),
        # Slot s+1 arrives late but before s+2: nothing overtook it.
        _sent(s + 1, s + 2, Fault.LATE, base),
        _sent(s + 2, s + 2, None, base),
        _sent(s + 2, s + 2, Fault.DUPLICATE, base),
        # Slot s+3 is dropped, s+4 is on time, then the late s+3 comes: stale.
        _sent(s + 4, s + 4, None, base),
        _sent(s + 3, s + 5, Fault.LATE, base),
        _sent(s, s + 5, Fault.REPLAY, base),
        _sent(s + 5, s + 5, Fault.TAMPERED, base),
        _sent(s + 5, s + 5, Fault.CLOCK_SKEW, base),
        _sent(s + 5, s + 5, Fault.WRONG_KEY, base),
    ]
    assert chaos.expected_outcomes(sent) == [
        ("accepted", None),
        ("accepted", None),
        ("accepted", None),
        ("already_delivered", "duplicate"),
        ("accepted", None),
        ("rejected", "stale_slot"),
        ("already_delivered", "duplicate"),
        ("rejected", "bad_signature"),
        ("rejected", "future_slot"),
        ("rejected", "bad_signature"),
    ]


def test_the_ci_seed_draws_every_fault_kind() -> None:
    scenario = default_scenario(6, 1, date(2026, 6, 21), CI_SEED)
    flows = window(simulate(scenario), chaos.NOON_SLOT - 4, 8)
    rates = dataclasses.replace(FaultRates.uniform(0.05), max_late_slots=3)
    signed = sign_readings(scenario, flows, DOMAIN)
    kinds = {e.fault for e in envelopes(scenario, signed, DOMAIN, rates)}
    assert kinds >= set(Fault)
    assert int(flows.export_Wh.sum()) > 0 and int(flows.import_Wh.sum()) > 0


# ───────────────────────────── The run ─────────────────────────────


@pytest.mark.slow
@pytest.mark.anvil
@pytest.mark.postgres
def test_the_short_chaos_run_loses_nothing_and_refuses_exactly_the_faults(
    tmp_path: Path,
) -> None:
    if not ANVIL_BIN.exists() or not _postgres_installed():
        if os.environ.get("CI"):
            pytest.fail("the chaos run needs anvil (scripts/install) and PostgreSQL's binaries")
        pytest.skip("the chaos run needs anvil and PostgreSQL's binaries")
    out = tmp_path / "chaos.json"
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--households",
            "6",
            "--slots",
            "8",
            "--seed",
            str(CI_SEED),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    summary: dict[str, Any] = json.loads(out.read_text())
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert summary["ok"] is True and summary["problems"] == []

    # Every chaos event happened, in order, without an error.
    events = summary["events"]
    assert [e["event"] for e in events] == [
        "kill_api",
        "stop_anvil",
        "restart_postgres",
        "kill_api",
    ]
    assert all("error" not in e for e in events)
    # The first kill and the database restart land while readings are sent (the intake's
    # path), the node's stop and the second kill while a slot is settled (the chain's path).
    assert [e["during"] for e in events] == ["readings", "settle", "readings", "settle"]
    assert events[0]["killed_pid"] != events[3]["killed_pid"]
    anvil = events[1]
    assert anvil["down_s"] == 20 and anvil["head_after"] >= anvil["head_before"] > 0

    # Every fault kind injected; every one meant to be refused was refused, with its code.
    faults = summary["faults"]
    assert set(faults) == {f.value for f in Fault} | {"none"}
    for kind, row in faults.items():
        assert row["mismatches"] == 0, (kind, row)
        assert row["refused_total"] == row["expected_refused"], (kind, row)
    assert set(faults["tampered"]["refused"]) == {"bad_signature"}
    assert set(faults["wrong_key"]["refused"]) == {"bad_signature"}
    assert set(faults["clock_skew"]["refused"]) == {"future_slot"}
    assert set(faults["duplicate"]["refused"]) == {"duplicate"}
    assert set(faults["replay"]["refused"]) == {"duplicate"}
    assert faults["dropped"]["not_sent"] == faults["dropped"]["injected"]
    assert faults["none"]["accepted"] == faults["none"]["injected"]
    for kind in ("tampered", "wrong_key", "clock_skew", "duplicate", "replay"):
        assert faults[kind]["accepted"] == 0

    # Every valid reading on chain once, nothing else; the mirror agrees; the audit is clean.
    chain = summary["chain"]
    valid = faults["none"]["accepted"] + faults["late"]["accepted"]
    assert chain["valid_readings"] == valid
    assert chain["readings_on_chain"] == valid == chain["readings_in_mirror"]
    assert chain["missing"] == chain["extra"] == chain["doubled"] == 0
    assert chain["wrong_registers"] == chain["mirror_differences"] == 0
    assert summary["audit"]["findings"] == 0 and summary["audit"]["exit"] == 0
    assert summary["audit"]["summary"]["readings"] == valid
    assert summary["market"]["fills"] == chain["fills_on_chain"] > 0
    assert summary["market"]["backlog_at_end"] == {"readings": 0, "orders": 0}
    # The outages were seen (503s) and nothing answered a 500.
    statuses = summary["http_statuses"]
    assert "500" not in statuses
