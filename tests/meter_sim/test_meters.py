"""Meters: cumulative registers, readings in the contract's format, determinism."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from ledger.readings.eip712 import domain_separator, recover_signer
from meter_sim import default_scenario, registers, sign_readings, simulate
from meter_sim.meters import signed_slots

DOMAIN = domain_separator(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")


def test_readings_are_the_registers_at_the_end_of_each_slot_signed_by_the_meter() -> None:
    sc = default_scenario(4, days=1, start=date(2026, 5, 4), seed=6)
    flows = simulate(sc)
    readings = sign_readings(sc, flows, DOMAIN)
    assert len(readings) == 4 * 96
    imports, exports = registers(sc, flows)
    assert np.all(np.diff(imports, axis=1) >= 0) and np.all(np.diff(exports, axis=1) >= 0)
    for k, signed in enumerate(readings):
        t, h = divmod(k, 4)  # slot by slot, every meter in each
        ident = sc.identities[h]
        rd = signed.reading
        assert rd.meter == ident.meter
        assert rd.slot == sc.first_slot + t
        assert rd.import_Wh == ident.import_baseline_Wh + int(flows.import_Wh[h, : t + 1].sum())
        assert rd.export_Wh == ident.export_baseline_Wh + int(flows.export_Wh[h, : t + 1].sum())
        assert recover_signer(signed, DOMAIN) == ident.meter
    # The first reading is for the slot starting at local midnight (22:00 UTC in May).
    assert readings[0].reading.slot * 900 == int(sc.start_utc.timestamp())


def test_same_seed_gives_identical_readings_and_signatures_another_seed_others() -> None:
    def run(seed: int) -> list[bytes]:
        sc = default_scenario(5, days=1, start=date(2026, 8, 3), seed=seed)
        return [
            repr(s.reading).encode() + s.signature for s in sign_readings(sc, simulate(sc), DOMAIN)
        ]

    first, second, other = run(21), run(21), run(22)
    assert first == second
    assert len(first) == len(other) == 5 * 96
    assert not set(first) & set(other)


def test_same_seed_gives_identical_flows_another_seed_other_flows() -> None:
    a = simulate(default_scenario(6, days=2, seed=4))
    b = simulate(default_scenario(6, days=2, seed=4))
    c = simulate(default_scenario(6, days=2, seed=5))
    for name in ("load_Wh", "pv_Wh", "import_Wh", "export_Wh", "charge_Wh"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert not np.array_equal(a.load_Wh, c.load_Wh)


def test_signing_over_worker_processes_gives_the_same_readings() -> None:
    sc = default_scenario(3, days=1, seed=7)
    flows = simulate(sc)
    one = sign_readings(sc, flows, DOMAIN)
    assert sign_readings(sc, flows, DOMAIN, processes=2) == one


def test_signing_ahead_in_the_background_gives_the_same_readings_slot_by_slot() -> None:
    sc = default_scenario(3, days=1, seed=7)
    flows = simulate(sc)
    one = sign_readings(sc, flows, DOMAIN)
    n_h, n_t = flows.shape
    for per_job in (1, 8, 200):
        slots = list(signed_slots(sc, flows, DOMAIN, slots_per_job=per_job))
        assert len(slots) == n_t
        assert [r for slot in slots for r in slot] == one, per_job
        assert all(len(slot) == n_h for slot in slots)


def test_signing_ahead_stops_cleanly_when_the_caller_stops_early() -> None:
    sc = default_scenario(2, days=1, seed=7)
    flows = simulate(sc)
    ahead = signed_slots(sc, flows, DOMAIN, slots_per_job=4)
    first = next(ahead)
    assert first == sign_readings(sc, flows, DOMAIN)[:2]
    ahead.close()  # shuts the worker down, dropping the jobs still queued
    with pytest.raises(ValueError, match="slots_per_job"):
        next(signed_slots(sc, flows, DOMAIN, slots_per_job=0))
